"""The project's checkpoint format, owned in one place: save, read, rebuild, ``init_from``.

Lightning checkpoints would hold every weight (7B of them for the real model). The project keeps only the
trainable parameters; the frozen ones are rebuilt from the model config stored in the checkpoint
(pretrained weights, or the seeded random init of tiny presets), and a fingerprint of them is stored so a
mismatch is caught on load. The ``lvlm`` entry of a checkpoint holds::

    {"frozen_fingerprint": str, "trainable": [state-dict keys], "base": {"model": {...}, "seed": int,
     "template": str}}

Writers (the LightningModule's checkpoint hooks) call ``trainable_state`` and ``checkpoint_metadata``;
readers call ``read_checkpoint`` (one-line errors for missing, empty, truncated or foreign files),
``load_lvlm_checkpoint`` (rebuild the trained LVLM) and ``init_from`` (start a run from another run's
trainable weights, e.g. the stage-1 projector). See docs/model.md.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lvlm.errors import LvlmError
from lvlm.models.presets import BuiltModel, build_model
from lvlm.utils.seeding import seed_all

log = logging.getLogger("lvlm.checkpoint")
MODEL_PREFIX = "model."


class CheckpointError(LvlmError):
    """A checkpoint file is missing, unreadable or does not fit the model."""


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint read from disk: its trainable tensors and the project's metadata."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    info: dict[str, Any]
    raw: dict[str, Any]

    @property
    def base(self) -> dict[str, Any]:
        return dict(self.info.get("base") or {})


def frozen_fingerprint(model: nn.Module, trainable: Iterable[str]) -> str:
    """sha256 over names, shapes and a cheap checksum of every frozen parameter."""
    keep = set(trainable)
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        if name in keep:
            continue
        data = param.detach().float()
        digest.update(
            f"{name}:{tuple(param.shape)}:{data.sum().item():.6e}:{data.abs().sum().item():.6e}".encode()
        )
    return digest.hexdigest()[:16]


def trainable_state(state: Mapping[str, torch.Tensor], trainable: set[str]) -> dict[str, torch.Tensor]:
    """Keep only the entries of a state dict whose key is a trainable parameter."""
    return {key: value for key, value in state.items() if key in trainable}


def checkpoint_metadata(fingerprint: str, trainable: Iterable[str], base: Mapping[str, Any]) -> dict:
    """The ``lvlm`` entry written into every checkpoint."""
    return {"frozen_fingerprint": fingerprint, "trainable": sorted(trainable), "base": dict(base)}


def check_frozen(expected: str | None, actual: str, path: str = "checkpoint") -> None:
    if expected is not None and expected != actual:
        raise CheckpointError(
            f"{path}: frozen weights differ from the checkpoint's base model "
            f"(fingerprint {actual} != {expected}); "
            "fix: use the same model config and seed the checkpoint was trained with"
        )


def read_checkpoint(path: str | Path, what: str = "checkpoint", *, mmap: bool = False) -> CheckpointFile:
    """Load a checkpoint file, turning every way it can be broken into one clear line.

    ``mmap=True`` maps the tensors instead of reading them (for checks that only need the metadata).
    """
    path = Path(path)
    fix = "pass a .ckpt file written by train.py (e.g. <run dir>/checkpoints/last.ckpt)"
    if not path.exists():
        raise CheckpointError(f"{path}: {what} not found; fix: {fix}")
    if path.is_dir():
        raise CheckpointError(f"{path}: {what} is a directory, not a file; fix: {fix}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: {what} is empty (0 bytes); fix: {fix}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"{path}: {what} is truncated or not a torch file ({reason}); fix: {fix}"
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("state_dict"), dict):
        raise CheckpointError(
            f"{path}: {what} has no state_dict, so it is not a training checkpoint; fix: {fix}"
        )
    info = raw.get("lvlm")
    if not isinstance(info, dict) or "model" not in (info.get("base") or {}):
        raise CheckpointError(f"{path}: not an lvlm checkpoint (no base model config); fix: {fix}")
    return CheckpointFile(path, raw["state_dict"], info, raw)


# Model-config keys that change how a run computes, not which weights it has: a resumed run may differ in
# these (memory and speed switches, dtype at any depth; learning rates and preset labels at the top).
RUNTIME_ONLY_KEYS = frozenset({"dtype", "device", "gradient_checkpointing", "compile", "attn_implementation"})
RUNTIME_ONLY_TOP_KEYS = frozenset({"recipe", "name", "tiny"})


def _weights_config(cfg: Any, top: bool = True) -> Any:
    if isinstance(cfg, Mapping):
        skip = RUNTIME_ONLY_KEYS | (RUNTIME_ONLY_TOP_KEYS if top else frozenset())
        return {k: _weights_config(v, top=False) for k, v in cfg.items() if k not in skip}
    return cfg


def _first_difference(a: Any, b: Any, prefix: str) -> tuple[str, Any, Any] | None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            found = _first_difference(a.get(key), b.get(key), f"{prefix}.{key}")
            if found:
                return found
        return None
    return None if a == b else (prefix, a, b)


def check_resume_setup(
    ckpt: CheckpointFile, model_cfg: Mapping[str, Any], stage_train: Mapping[str, bool]
) -> None:
    """``ckpt_path`` must come from a run of the same model config and stage; say which differs.

    Compares the checkpoint's ``base.model`` with ``model_cfg`` (keys in ``RUNTIME_ONLY_KEYS`` may
    differ) and the parts (vision / projector / llm) its tensors belong to with the parts ``stage_train``
    trains — both known before any model is built.
    """
    diff = _first_difference(
        _weights_config(ckpt.base.get("model")), _weights_config(dict(model_cfg)), "model"
    )
    if diff:
        key, theirs, ours = diff
        raise CheckpointError(
            f"{ckpt.path}: ckpt_path is a checkpoint of another model config ({key}: {_short(theirs)} "
            f"there, {_short(ours)} here); fix: resume with the model config it was trained with, or start "
            f"a new run from its weights with init_from={ckpt.path}"
        )
    theirs = sorted({_part(key) for key in ckpt.info.get("trainable") or ckpt.state_dict})
    ours = sorted(part for part, trained in stage_train.items() if trained)
    if theirs and theirs != ours:
        raise CheckpointError(
            f"{ckpt.path}: ckpt_path is a checkpoint of another stage (it trains {', '.join(theirs)}; this "
            f"run trains {', '.join(ours) or 'nothing'}); fix: resume with the stage it was trained with, or "
            f"start this stage from its weights with init_from={ckpt.path}"
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def load_lvlm_checkpoint(path: str | Path) -> BuiltModel:
    """Rebuild the LVLM a checkpoint was trained from and load its trainable weights.

    The returned model's ``template`` is the one it was trained with.
    """
    ckpt = read_checkpoint(path)
    base = ckpt.base
    seed_all(int(base.get("seed", 0)))
    built = build_model(base["model"])
    trained = {key.removeprefix(MODEL_PREFIX): value for key, value in ckpt.state_dict.items()}
    own = built.model.state_dict()
    misfits = sorted(k for k, v in trained.items() if k not in own or own[k].shape != v.shape)
    if misfits:
        raise CheckpointError(
            f"{ckpt.path}: {len(misfits)} tensors do not fit the rebuilt model (first: {misfits[0]}); "
            "fix: evaluate it with the lvlm version and model config it was trained with"
        )
    built.model.load_state_dict(trained, strict=False)
    check_frozen(
        ckpt.info.get("frozen_fingerprint"), frozen_fingerprint(built.model, trained), str(ckpt.path)
    )
    built.template = str(base.get("template") or built.template)
    return built


def init_from(module: nn.Module, path: str | Path, trainable: set[str]) -> dict[str, int]:
    """Load another run's trainable weights into ``module`` (keys as in ``module.state_dict()``).

    Every tensor this run trains that the checkpoint holds is loaded, and nothing else: frozen weights
    are rebuilt from the model config whenever a checkpoint is read back, so loading a checkpoint's
    tensors into them would train a model nobody can rebuild. Errors (one line each): a tensor this run
    trains held under the same name with another shape; a part (vision / projector / llm) the checkpoint
    has tensors for but without every tensor this run trains there (a missing tensor, or tensors named
    for another model, e.g. LoRA adapters vs full weights); none of the tensors this run trains.
    Returns counts: loaded, not_trained_here (in the checkpoint, frozen in this run), unknown (names
    this model does not have), in_checkpoint.
    """
    ckpt = read_checkpoint(path, what="init_from checkpoint")
    own = module.state_dict()
    wrong_shape = sorted(
        key
        for key, value in ckpt.state_dict.items()
        if key in trainable and key in own and own[key].shape != value.shape
    )
    if wrong_shape:
        key = wrong_shape[0]
        raise CheckpointError(
            f"{ckpt.path}: init_from tensor '{key}' has shape {tuple(ckpt.state_dict[key].shape)} but this "
            f"model's is {tuple(own[key].shape)} ({len(wrong_shape)} mismatched); "
            "fix: start from a checkpoint of the same model preset"
        )
    matched = {key: value for key, value in ckpt.state_dict.items() if key in own and key in trainable}
    missing = _missing_in_covered_parts(set(ckpt.state_dict), trainable)
    if missing:
        raise CheckpointError(
            f"{ckpt.path}: init_from lacks '{missing[0]}', which this stage trains ({len(missing)} missing "
            "in the parts the checkpoint covers); fix: start from a checkpoint of the same model preset"
        )
    if not matched:
        raise CheckpointError(
            f"{ckpt.path}: init_from holds none of the {len(trainable)} tensors this stage trains; "
            "fix: start from a checkpoint of the same model preset (e.g. the stage-1 projector run)"
        )
    module.load_state_dict(matched, strict=False)
    frozen = sum(1 for key in ckpt.state_dict if key in own and key not in trainable)
    counts = {
        "loaded": len(matched),
        "not_trained_here": frozen,
        "unknown": len(ckpt.state_dict) - len(matched) - frozen,
        "in_checkpoint": len(ckpt.state_dict),
    }
    log.info(
        "init_from %s: loaded %d of the %d tensors this stage trains (%d in the checkpoint; %d left out as "
        "frozen here, %d unknown to this model)", ckpt.path, counts["loaded"], len(trainable),
        counts["in_checkpoint"], frozen, counts["unknown"],
    )  # fmt: skip
    return counts


def _part(key: str) -> str:
    """``model.projector.proj.weight`` → ``projector``."""
    return key.removeprefix(MODEL_PREFIX).split(".", 1)[0]


def _missing_in_covered_parts(loaded: set[str], trainable: set[str]) -> list[str]:
    """Trainable tensors absent from the checkpoint, in the parts (vision/projector/llm) it does cover."""
    covered = {_part(key) for key in loaded}
    return sorted(key for key in trainable if _part(key) in covered and key not in loaded)
