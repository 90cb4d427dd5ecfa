"""Loading a task split from the dataset hub with ``datasets.load_dataset``.

``load_hub_split`` fetches ``(path, name, split, revision)``; any failure (no network, offline mode,
unknown repository, script-based repository) becomes ``HubUnavailable`` so the caller can fall through to
the next source in ``source: auto`` or report it in ``source: hub``. ``read_hub_records`` turns the
split into ``RawRecord`` items keyed by column; a ``ClassLabel`` label column is read as its class names
(so label mappings in the config use names such as ``entailment``), other values as strings (``-1`` for
SNLI's unlabeled pairs). A configured column missing from the split is a fatal ``DataError``.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterator
from typing import Any

from lvlm.errors import DataError, LvlmError
from lvlm.eval.sources.common import RawRecord
from lvlm.eval.tasks.definitions import HubSource


class HubUnavailable(LvlmError):
    """The hub split could not be loaded (network, offline mode, missing repository)."""


_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@functools.lru_cache(maxsize=1)
def hub_reachable(host: str = "huggingface.co", timeout_s: float = 3.0) -> bool:
    """False when offline mode is set or the hub host does not answer a TCP connect within ``timeout_s``.

    Checked once per process so an offline machine falls through to the next source in seconds instead
    of waiting out the hub client's retries for every task.
    """
    if any(os.environ.get(var, "").lower() in ("1", "true", "yes") for var in _OFFLINE_VARS):
        return False
    if os.environ.get("HF_ENDPOINT"):
        return True  # a mirror: let the datasets client decide
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def load_hub_split(source: HubSource) -> Any:
    """Return the ``datasets.Dataset`` of the configured split or raise ``HubUnavailable``."""
    import datasets

    if not hub_reachable():
        raise HubUnavailable(f"hub:{source.ident}: the hub is not reachable (offline mode or no network)")

    kwargs: dict[str, Any] = {"split": source.split}
    if source.revision:
        kwargs["revision"] = source.revision
    try:
        return datasets.load_dataset(source.path, source.name, **kwargs)
    except Exception as err:  # every failure mode of the hub means "not available here"
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise HubUnavailable(
            f"hub:{source.ident}: could not load ({type(err).__name__}: {first_line}); fix: allow hub access "
            "(unset HF_DATASETS_OFFLINE) or use eval.source=local with eval.data_dir"
        ) from err


def _label_names(dataset: Any, column: str) -> list[str] | None:
    feature = getattr(dataset, "features", {}).get(column)
    names = getattr(feature, "names", None)
    return list(names) if names else None


def _label_value(value: object, names: list[str] | None) -> object:
    if names is not None and isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    return None if value is None else str(value)


def read_hub_records(dataset: Any, source: HubSource) -> Iterator[RawRecord]:
    """Yield one ``RawRecord`` per row of ``dataset`` (row index = position in the split)."""
    needed = [*dict.fromkeys([*source.columns.values(), source.label.column])]
    available = list(dataset.column_names)
    missing = [column for column in needed if column not in available]
    if missing:
        raise DataError(
            f"hub:{source.ident}",
            f"no column {missing} among the split's columns {available}",
            "fix the task's hub.columns / hub.label_column",
        )
    names = _label_names(dataset, source.label.column)
    for index, row in enumerate(dataset):
        values = {column: row[column] for column in needed}
        values[source.label.column] = _label_value(row[source.label.column], names)
        yield RawRecord(index=index, where=f"row {index}", values=values)
