"""LightningModule for LVLM training.

Owns the training/validation steps, the optimizer with per-part parameter groups (projector and LLM can
have their own learning rates), the scheduler (instantiated from config as ``_partial_`` callables), and
the trainable-only checkpoint hooks (the format itself is ``lvlm.models.checkpoint``). The freeze policy
lives in ``lvlm.training.freeze``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch

from lvlm.constants import IGNORE_INDEX
from lvlm.models.checkpoint import (
    CheckpointError,
    check_frozen,
    checkpoint_metadata,
    frozen_fingerprint,
    trainable_state,
)
from lvlm.models.lvlm import LVLM
from lvlm.training.freeze import apply_stage, trainable_names


class LVLMModule(pl.LightningModule):
    def __init__(
        self,
        model: LVLM,
        train_parts: dict[str, bool],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        part_lr: dict[str, float] | None = None,
        base: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.base = dict(base or {})  # how to rebuild the frozen parts: model config, seed, template
        self.trainable_counts = apply_stage(model, train_parts)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.part_lr = dict(part_lr or {})
        self.strict_loading = False  # checkpoints hold trainable parameters only
        self._trainable = {f"model.{name}" for name in trainable_names(model)}
        self._frozen_fp = frozen_fingerprint(model, trainable_names(model))

    @property
    def trainable_keys(self) -> set[str]:
        """State-dict keys (``model.…``) of the parameters this stage trains."""
        return set(self._trainable)

    def forward(self, **batch: Any) -> Any:
        return self.model(**batch)

    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """The batch's mean token loss and its number of supervised rows.

        A batch without a supervised token (every record skipped, or nothing left after ``max_length``)
        gets a loss of exactly 0 that is still connected to the trainable parameters, so backward and
        DDP's gradient all-reduce run as usual with all-zero gradients, instead of the NaN a mean over
        zero tokens gives.
        """
        labels = batch.get("labels")
        rows = int(batch["input_ids"].shape[0])
        supervised = 0 if labels is None or rows == 0 else int((labels[:, 1:] != IGNORE_INDEX).any(1).sum())
        if supervised:
            return self.model(**batch).loss, supervised
        params = [p for p in self.parameters() if p.requires_grad]
        zero = sum((p.sum() * 0.0 for p in params), torch.zeros((), device=self.device))
        return zero, 0

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, rows = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=max(rows, 1))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, rows = self._loss(batch)  # a batch without supervision weighs 0 in the epoch mean
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=rows)
        return loss

    def configure_optimizers(self) -> Any:
        groups = []
        for part in ("vision", "projector", "llm"):
            params = [p for p in getattr(self.model, part).parameters() if p.requires_grad]
            if params:
                group: dict[str, Any] = {"params": params, "name": part}
                if part in self.part_lr:
                    group["lr"] = float(self.part_lr[part])
                groups.append(group)
        if not groups:
            raise ValueError("no trainable parameters: check stage.train")
        optimizer = self.optimizer_factory(groups)
        if self.scheduler_factory is None:
            return optimizer
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, total_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = trainable_state(checkpoint["state_dict"], self._trainable)
        checkpoint["lvlm"] = checkpoint_metadata(self._frozen_fp, self._trainable, self.base)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint whose tensors do not fit (one line, not load_state_dict's size dump)."""
        path = str(getattr(self._trainer, "ckpt_path", None) or "checkpoint")
        own = self.state_dict()
        saved = checkpoint.get("state_dict") or {}
        misfits = sorted(k for k, v in saved.items() if k in own and tuple(own[k].shape) != tuple(v.shape))
        if misfits:
            key = misfits[0]
            raise CheckpointError(
                f"{path}: tensor '{key}' has shape {tuple(saved[key].shape)} there but "
                f"{tuple(own[key].shape)} in this model ({len(misfits)} mismatched); fix: resume with the "
                "model config it was trained with, or start a new run from its weights with init_from"
            )
        check_frozen(checkpoint.get("lvlm", {}).get("frozen_fingerprint"), self._frozen_fp, path)
