"""Where a training dataset comes from: the ``data.kind`` registry.

Each kind is one function that takes the resolved ``data`` config, makes sure the files exist (generating
them on first use when the kind can), and returns ``DataFiles``: the training JSON, an optional validation
JSON and the folder image paths are relative to. Built in: ``synthetic`` (procedural scenes, generated
under ``data.root``), ``instruct_mix`` (the miniature's text instruction mix, ``lvlm.data.instruct_mix``)
and ``llava_json`` (files the user points at). Higher layers register more kinds —
``lvlm.construction`` adds ``constructed`` (FOVIT / NoFOVIT / FOIT / NoFOIT built by build_data.py) —
so adding a kind is one function here or there plus one config file under ``conf/data/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lvlm.data.instruct_mix import ensure_instruct_mix
from lvlm.data.synthetic import ensure_synthetic_dataset
from lvlm.registry import Registry


@dataclass(frozen=True)
class DataFiles:
    """The files one training dataset is read from."""

    train_json: Path
    val_json: Path | None
    image_root: Path


DataKind = Callable[[Mapping[str, Any]], DataFiles]
DATA_KINDS: Registry[DataKind] = Registry("data kind")


@DATA_KINDS.register("synthetic")
def synthetic_files(cfg: Mapping[str, Any]) -> DataFiles:
    """Procedural scenes, generated on first use (``data.synthetic.*`` settings)."""
    syn = cfg["synthetic"]
    root = ensure_synthetic_dataset(
        Path(cfg["root"]), int(syn["num_scenes"]), int(syn["seed"]), int(syn["image_size"]),
        int(syn["max_turns"]), float(syn["val_fraction"]),
    )  # fmt: skip
    return DataFiles(root / "train.json", root / "val.json", root)


@DATA_KINDS.register("instruct_mix")
def instruct_mix_files(cfg: Mapping[str, Any]) -> DataFiles:
    """The miniature's text instruction mix, generated on first use (``data.mix.*``, docs/miniature.md)."""
    root = ensure_instruct_mix(cfg)
    return DataFiles(root / "train.json", root / "val.json", root)


@DATA_KINDS.register("llava_json")
def llava_json_files(cfg: Mapping[str, Any]) -> DataFiles:
    """LLaVA-format JSON the user points at (``train_json``, optional ``val_json``, ``image_root``)."""
    val = cfg.get("val_json")
    return DataFiles(Path(cfg["train_json"]), Path(val) if val else None, Path(cfg["image_root"]))


def resolve_data_files(cfg: Mapping[str, Any]) -> DataFiles:
    """The files of the dataset a ``data`` config names; builds them when the kind can."""
    return DATA_KINDS.get(str(cfg["kind"]))(cfg)
