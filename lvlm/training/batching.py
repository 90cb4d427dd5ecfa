"""The global batch rule: per-device batch and gradient accumulation from one global batch size.

LLaVA's recipes are stated as a global batch (128 = 16 per device × 8 GPUs). ``data.global_batch_size``
keeps that number fixed on any machine: with ``data.batch_size`` per device, ``devices`` per node and
``num_nodes`` nodes, ``accumulate = global / (batch_size × devices × nodes)``, written into
``trainer.accumulate_grad_batches`` before the Trainer is built. ``null`` means no constraint (the trainer's
own ``accumulate_grad_batches`` is used). A global batch that does not divide is one ``ConfigError`` line.
See docs/model.md ("The global batch rule").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, open_dict

from lvlm.errors import ConfigError

log = logging.getLogger(__name__)
GPU_ACCELERATORS = ("gpu", "cuda", "auto")


def accumulation_steps(global_batch: int, per_device: int, devices: int, num_nodes: int = 1) -> int:
    """``global / (per_device × devices × num_nodes)``; a ``ConfigError`` when it is not a whole number."""
    if global_batch <= 0 or per_device <= 0 or devices <= 0 or num_nodes <= 0:
        raise ConfigError(
            f"data.global_batch_size={global_batch}, data.batch_size={per_device}, {devices} device(s), "
            f"{num_nodes} node(s): all must be positive; fix: set positive sizes"
        )
    step = per_device * devices * num_nodes
    if global_batch % step:
        raise ConfigError(
            f"data.global_batch_size={global_batch} is not a multiple of data.batch_size={per_device} × "
            f"{devices} device(s) × {num_nodes} node(s) = {step}; fix: choose data.batch_size so that "
            f"{global_batch} / (batch_size × {devices * num_nodes}) is a whole number"
        )
    return global_batch // step


def device_count(trainer: Mapping[str, Any]) -> int:
    """How many devices per node a Lightning ``trainer`` config asks for (``-1``/``auto`` counted)."""
    devices = trainer.get("devices", "auto")
    accelerator = str(trainer.get("accelerator", "auto"))
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        return len(devices)
    if isinstance(devices, str):
        text = devices.strip()
        if "," in text:
            return len([d for d in text.split(",") if d.strip()])
        devices = -1 if text in ("auto", "-1") else int(text)
    if int(devices) == -1:
        if accelerator in GPU_ACCELERATORS:
            import torch

            return max(torch.cuda.device_count(), 1)
        return 1
    return int(devices)


def apply_global_batch(cfg: DictConfig) -> int | None:
    """Set ``cfg.trainer.accumulate_grad_batches`` from ``cfg.data.global_batch_size``; return it.

    ``None`` (nothing changed) when ``data.global_batch_size`` is null. An explicit, different
    ``trainer.accumulate_grad_batches`` is a ``ConfigError``: the two settings would contradict.
    """
    global_batch = cfg.data.get("global_batch_size")
    if global_batch is None:
        return None
    per_device = int(cfg.data.batch_size)
    devices, nodes = device_count(cfg.trainer), int(cfg.trainer.get("num_nodes", 1) or 1)
    accumulate = accumulation_steps(int(global_batch), per_device, devices, nodes)
    current = int(cfg.trainer.get("accumulate_grad_batches", 1) or 1)
    if current not in (1, accumulate):
        raise ConfigError(
            f"trainer.accumulate_grad_batches={current} contradicts data.global_batch_size={global_batch} "
            f"(which needs {accumulate} with data.batch_size={per_device} on {devices * nodes} device(s)); "
            "fix: set only one of them (data.global_batch_size=null to use accumulate_grad_batches)"
        )
    with open_dict(cfg.trainer):
        cfg.trainer.accumulate_grad_batches = accumulate
    log.info(
        "global batch %d = %d per device × %d device(s) × %d node(s) × %d accumulation step(s)",
        int(global_batch), per_device, devices, nodes, accumulate,
    )  # fmt: skip
    return accumulate
