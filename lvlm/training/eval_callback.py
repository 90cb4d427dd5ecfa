"""Verbalizer-manipulation evaluation during training.

``VerbalizerEvalCallback`` scores the model being trained on a configurable subset of the benchmark
(tasks, label systems, examples per task) every N optimizer steps and when training ends, and logs
per-label-system F1 and All (``eval/<system>/f1``, ``eval/all/f1``) to every attached logger. Under DDP all
ranks take part (prompts are sharded); rank 0 writes ``eval/step_<N>/results.json`` in the run directory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from lvlm.eval.models.lvlm import LVLMScoringModel
from lvlm.eval.results.wandb_log import summary_metrics
from lvlm.eval.results.writer import BootstrapSettings
from lvlm.eval.runner import evaluate
from lvlm.templates import get_template

log = logging.getLogger(__name__)


class VerbalizerEvalCallback(pl.Callback):
    def __init__(
        self,
        eval_cfg: DictConfig | Mapping[str, Any],
        output_dir: str,
        every_n_steps: int = 0,
        at_end: bool = True,
        overrides: Mapping[str, Any] | None = None,
        n_resamples: int = 200,
    ) -> None:
        plain = (
            OmegaConf.to_container(eval_cfg, resolve=True) if isinstance(eval_cfg, DictConfig) else eval_cfg
        )
        base = OmegaConf.create(dict(plain))  # type: ignore[arg-type]
        self.eval_cfg = OmegaConf.merge(base, OmegaConf.create(dict(overrides or {})))
        self.output_dir = Path(output_dir)
        self.every_n_steps, self.at_end = int(every_n_steps), bool(at_end)
        self.bootstrap = BootstrapSettings(n_resamples=n_resamples)
        self.last_step = -1
        self.history: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if self.every_n_steps > 0 and step > 0 and step % self.every_n_steps == 0 and step != self.last_step:
            self.run(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.at_end and trainer.global_step != self.last_step:
            self.run(trainer, pl_module)

    def run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        step = trainer.global_step
        self.last_step = step
        datamodule = trainer.datamodule
        was_training = pl_module.training
        template = get_template(datamodule.template.name)
        slot = str(self.eval_cfg.get("image_slot", "none"))
        # no prediction cache during training (weights change every step), so skip hashing the weights
        model = LVLMScoringModel(
            pl_module.model, datamodule.tokenizer, template, slot, fingerprint=f"step-{step}"
        )
        try:
            files, _ = evaluate(
                self.eval_cfg, model, self.output_dir / f"step_{step:06d}", cache_dir=None,
                config={"eval": OmegaConf.to_container(self.eval_cfg), "step": step},
                bootstrap=self.bootstrap, progress=False,
            )  # fmt: skip
        finally:
            pl_module.train(was_training)
        if files is None:
            return {}
        metrics = {k: v for k, v in summary_metrics(files.results).items() if k.endswith("/f1")}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        log.info("step %d: %s", step, ", ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items())))
        self.history.append({"step": float(step), **metrics})
        return metrics
