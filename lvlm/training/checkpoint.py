"""Trainable-only checkpoints.

Lightning checkpoints would hold every weight (7B of them for the real model). Only the trainable
parameters are kept; the frozen ones are rebuilt from the model config (pretrained weights, or the seeded
random init of tiny presets) and a fingerprint of them is stored so a mismatch is caught on load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch
from torch import nn

from lvlm.errors import LvlmError


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


def filter_state_dict(
    state: dict[str, torch.Tensor], trainable: set[str], prefix: str
) -> dict[str, torch.Tensor]:
    """Keep only entries whose parameter (under ``prefix``) is trainable."""
    return {key: value for key, value in state.items() if key.removeprefix(prefix) in trainable}


def check_frozen(expected: str | None, actual: str, path: str = "checkpoint") -> None:
    if expected is not None and expected != actual:
        raise LvlmError(
            f"{path}: frozen weights differ from the checkpoint's base model "
            f"(fingerprint {actual} != {expected}); "
            "fix: use the same model config and seed the checkpoint was trained with"
        )
