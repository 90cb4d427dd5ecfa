"""The ``constructed`` training-data kind: FOVIT / NoFOVIT / FOIT / NoFOIT as the DataModule reads them.

Registers ``data.kind=constructed`` in ``lvlm.data.sources.DATA_KINDS``: the dataset named by
``data.dataset`` is read from ``data.root``, and built there first (all four at once, offline with the
synthetic backend unless ``data.build_overrides`` says otherwise) when it has no ``train.json`` yet. The
training entry point imports this module so the kind is known; see docs/construction.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lvlm.construction.pipeline.build import ensure_dataset
from lvlm.data.sources import DATA_KINDS, DataFiles


@DATA_KINDS.register("constructed")
def constructed_files(cfg: Mapping[str, Any]) -> DataFiles:
    """The files of a constructed dataset, building it on first use."""
    root = ensure_dataset(str(cfg["dataset"]), dict(cfg))
    return DataFiles(root / "train.json", None, root)
