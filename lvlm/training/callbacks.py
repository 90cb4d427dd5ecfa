"""Training callbacks that write local records of a run.

``MetricsJsonl`` appends one JSON line per logged training step and per validation pass to
``metrics.jsonl`` in the run directory (W&B 0.31 keeps no local summary file, so this is the local source of
truth for curves). ``RunSummary`` prints where the run directory, checkpoints, metrics and W&B run are.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only


def _scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if k.startswith(prefix) and getattr(v, "numel", lambda: 1)() == 1
    }


class MetricsJsonl(pl.Callback):
    def __init__(self, path: str, every_n_steps: int = 1) -> None:
        self.path = Path(path)
        self.every_n_steps = max(1, every_n_steps)

    @rank_zero_only
    def _write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if step % self.every_n_steps:
            return
        record = {"step": step, "epoch": trainer.current_epoch, "time": time.time()}
        record.update(_scalars(trainer.callback_metrics, "train/"))
        for index, group in enumerate(trainer.optimizers[0].param_groups if trainer.optimizers else []):
            record[f"lr/{group.get('name', index)}"] = float(group["lr"])
        self._write(record)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        record = {"step": trainer.global_step, "epoch": trainer.current_epoch, "time": time.time()}
        record.update(_scalars(trainer.callback_metrics, "val/"))
        self._write(record)
