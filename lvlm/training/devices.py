"""Check that a trainer preset fits the machine before anything is built.

GPU presets (``trainer=gpu|ddp|fsdp``) on a machine without CUDA would otherwise fail deep inside
Lightning with a long traceback; ``check_accelerator`` turns that into one line that names the presets
that do run here (``trainer=cpu``, or ``trainer=ddp_cpu`` for two CPU processes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lvlm.errors import ConfigError

GPU_ACCELERATORS = ("gpu", "cuda")


def check_accelerator(trainer: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` when the preset asks for GPUs this machine does not have."""
    accelerator = str(trainer.get("accelerator", "cpu"))
    strategy = (
        str((trainer.get("strategy") or {}).get("_target_", ""))
        if isinstance(trainer.get("strategy"), Mapping)
        else str(trainer.get("strategy") or "")
    )
    wants_gpu = accelerator in GPU_ACCELERATORS or "FSDP" in strategy
    if wants_gpu and not torch.cuda.is_available():
        kind = "FSDP" if "FSDP" in strategy else f"accelerator={accelerator}"
        raise ConfigError(
            f"the trainer preset needs CUDA GPUs ({kind}) but this machine has none; "
            "fix: use trainer=cpu, or trainer=ddp_cpu for two CPU processes"
        )
