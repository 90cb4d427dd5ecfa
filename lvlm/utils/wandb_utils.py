"""Weights & Biases helpers: where the offline run lives, and ending every run.

Each Hydra job (including every job of a multirun sweep) must end its own W&B run, or the next job logs
into it; ``finish_wandb`` is called in a ``finally`` by the entry points.
"""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning.loggers import Logger, WandbLogger


def wandb_run_dir(loggers: list[Logger]) -> Path | None:
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            directory = getattr(run, "dir", None)
            return Path(directory).parent if directory else None
    return None


def finish_wandb(exit_code: int = 0) -> None:
    try:
        import wandb
    except ImportError:  # pragma: no cover - wandb is a core dependency
        return
    if wandb.run is not None:
        wandb.finish(exit_code=exit_code)
