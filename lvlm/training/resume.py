"""What a checkpoint needs beyond weights for a resumed run to continue exactly where it stopped.

``ResumeState`` (a Lightning callback, on by default in ``conf/callbacks/default.yaml``) stores in every
checkpoint the random-number-generator states (Python, NumPy, torch) and the W&B run id, and restores the
generators when a run resumes. Together with Lightning's own optimizer / scheduler / step state and the
resumable train loader (``lvlm.data.loader``), a run killed after a saved step and resumed ends with the
same weights as one that never stopped. ``find_last_checkpoint`` resolves ``ckpt_path=last``: the newest
``checkpoints/last.ckpt`` of a run with the same name.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.utilities.seed import _collect_rng_states, _set_rng_states
from pytorch_lightning.loggers import WandbLogger

from lvlm.errors import LvlmError

log = logging.getLogger("lvlm.resume")
KEY = "lvlm_resume"


class ResumeState(pl.Callback):
    """Save and restore RNG states; remember the W&B run id so a resumed run continues it."""

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[KEY] = {"rng": _collect_rng_states(include_cuda=False), "wandb_id": wandb_id(trainer)}

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state = checkpoint.get(KEY) or {}
        if state.get("rng"):
            _set_rng_states(state["rng"])
            log.info("restored random generator states from the checkpoint")


def wandb_id(trainer: pl.Trainer) -> str | None:
    """The id of the run's W&B run, if it logs to W&B."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return str(logger.experiment.id)
    return None


def find_last_checkpoint(output_dir: Path, name: str) -> Path:
    """The newest ``last.ckpt`` among run directories of run ``name`` under ``output_dir``."""
    candidates = [
        path
        for pattern in (f"train/*_{name}/checkpoints/last.ckpt", f"train/*_{name}_*/checkpoints/last.ckpt")
        for path in output_dir.glob(pattern)
    ]
    if not candidates:
        raise LvlmError(
            f"{output_dir}/train: no run named '{name}' has a checkpoints/last.ckpt; "
            "fix: pass ckpt_path=<path to a .ckpt> or the run name the checkpoint was written under"
        )
    return max(candidates, key=lambda path: path.stat().st_mtime)


AUTO = "auto"


def resolve_ckpt_path(
    ckpt_path: str | None, output_dir: Path, name: str, run_dir: Path | None = None
) -> Path | None:
    """``ckpt_path`` as given; ``last``: the newest checkpoint of run ``name``; ``auto``: this run
    directory's own ``checkpoints/last.ckpt`` if an earlier, interrupted attempt left one, else none.

    ``auto`` is what the study runner passes, so that a training step it reruns in the same directory
    continues from where it was stopped instead of starting over.
    """
    if not ckpt_path:
        return None
    if str(ckpt_path) == AUTO:
        found = (run_dir / "checkpoints" / "last.ckpt") if run_dir is not None else None
        if found is None or not found.is_file():
            return None
        log.info("ckpt_path=auto: resuming the interrupted run in this directory from %s", found)
        return found
    if str(ckpt_path) == "last":
        found = find_last_checkpoint(output_dir, name)
        log.info("ckpt_path=last: resuming from %s", found)
        return found
    return Path(ckpt_path)


def saved_wandb_id(raw_checkpoint: dict[str, Any]) -> str | None:
    """The W&B run id a checkpoint was logged under, so the resumed run continues it."""
    return (raw_checkpoint.get(KEY) or {}).get("wandb_id")
