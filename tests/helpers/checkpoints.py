"""Project-format checkpoints written in-process (no training run): trainable tensors + ``lvlm`` metadata.

``save_checkpoint`` writes what ``LVLMModule.on_save_checkpoint`` writes during training, so ``init_from``,
``ckpt_path`` checks and ``load_lvlm_checkpoint`` read these files exactly as they read a run's
``last.ckpt``; only the Lightning loop state is minimal.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

STAGES = {
    "pretrain": {"vision": False, "projector": True, "llm": False},
    "finetune": {"vision": False, "projector": True, "llm": True},
}


def model_cfg_with(model_cfg: dict, **llm_config: Any) -> dict:
    """A copy of ``model_cfg`` with ``llm.config`` entries replaced (e.g. ``hidden_size=32``)."""
    cfg = copy.deepcopy(model_cfg)
    cfg["llm"]["config"].update(llm_config)
    return cfg


def tiny_module(model_cfg: dict, stage: str = "finetune", seed: int = 0):
    """An ``LVLMModule`` over ``model_cfg`` for ``stage``, with the metadata ``train.py`` gives it."""
    from lvlm.models.presets import build_model
    from lvlm.training.module import LVLMModule
    from lvlm.utils.seeding import seed_all

    seed_all(seed)
    built = build_model(model_cfg)
    base = {"model": model_cfg, "seed": seed, "template": built.template,
            "stage": {"name": stage, "train": STAGES[stage]}}  # fmt: skip
    return LVLMModule(built.model, STAGES[stage], torch.optim.AdamW, base=base)


def save_checkpoint(module, path: Path, drop: tuple[str, ...] = ()) -> Path:
    """Write ``module``'s checkpoint as training would, minus the state-dict keys in ``drop``."""
    checkpoint: dict[str, Any] = {"state_dict": module.state_dict(), "global_step": 0, "epoch": 0}
    module.on_save_checkpoint(checkpoint)
    for key in drop:
        del checkpoint["state_dict"][key]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path
