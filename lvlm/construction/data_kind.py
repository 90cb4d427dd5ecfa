"""The ``constructed`` training-data kind: FOVIT / NoFOVIT / FOIT / NoFOIT as the DataModule reads them.

Registers ``data.kind=constructed`` in ``lvlm.data.sources.DATA_KINDS``: the dataset named by
``data.dataset`` is read from ``data.root``, and built there first (all four at once, offline with the
synthetic backend unless ``data.build_overrides`` says otherwise) when it has no ``train.json`` yet. The
training entry point imports this module so the kind is known; see docs/construction.md.

``check_data_for_model`` is the real-vs-tiny data guard (docs/model.md, "Data guard"): a real model preset
(any preset without ``tiny: true``) never trains on synthetic stand-in data — a constructed dataset built
by the ``synthetic`` backend, one not built yet that would be built by it, or ``data=synthetic`` scenes —
unless ``data.allow_synthetic`` is set. Training calls it before any weights are loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lvlm.construction.pipeline.build import as_build_config, ensure_dataset
from lvlm.data.sources import DATA_KINDS, DataFiles
from lvlm.errors import ConfigError

SYNTHETIC_BACKEND = "synthetic"
REAL_BUILD = "python build_data.py construction=openai construction.images_dir=/path/to/coco/val2014"


@DATA_KINDS.register("constructed")
def constructed_files(cfg: Mapping[str, Any]) -> DataFiles:
    """The files of a constructed dataset, building it on first use."""
    root = ensure_dataset(str(cfg["dataset"]), dict(cfg))
    return DataFiles(root / "train.json", None, root)


def card_backend(directory: Path) -> str | None:
    """The construction backend a built dataset's ``card.json`` records (``None`` if it has no card)."""
    card = directory / "card.json"
    if not card.is_file():
        return None
    facts = json.loads(card.read_text(encoding="utf-8"))
    built = facts.get("built_with") or {}
    return str(built.get("backend") or (facts.get("generator") or {}).get("backend") or "unknown")


def check_data_for_model(data: Mapping[str, Any], model: Mapping[str, Any]) -> None:
    """Stop (one ``ConfigError`` line) before a real model preset trains on synthetic stand-in data."""
    if model.get("tiny") or data.get("allow_synthetic"):
        return
    name, preset = data.get("name", data.get("kind")), model.get("name", "?")
    escape = "or +data.allow_synthetic=true for a deliberate smoke run"
    if data.get("kind") == SYNTHETIC_BACKEND:
        raise ConfigError(
            f"model={preset} is a real preset but data={name} is procedurally drawn scenes; fix: train on "
            f"real data, e.g. data=fovit built with `{REAL_BUILD}`, {escape}"
        )
    if data.get("kind") != "constructed":
        return
    directory = Path(str(data["root"])) / str(data["dataset"])
    backend = card_backend(directory) if (directory / "train.json").is_file() else None
    if backend is None:
        planned = str(as_build_config(dict(data)).construction.backend)
        if planned != SYNTHETIC_BACKEND:
            return  # built on first use with a real backend (data.build_overrides)
        raise ConfigError(
            f"{directory}: dataset {name} is not built, and building it on first use would use the offline "
            f"synthetic backend, not real images, for model={preset}; fix: build the real dataset first "
            f"with `{REAL_BUILD} paths.data_dir={directory.parent}`, {escape}"
        )
    if backend == SYNTHETIC_BACKEND:
        raise ConfigError(
            f"{directory / 'card.json'}: dataset {name} was built by the synthetic backend (an offline "
            f"stand-in), not from real images, for model={preset}; fix: rebuild it with "
            f"`{REAL_BUILD} paths.data_dir={directory.parent} overwrite=true`, {escape}"
        )
