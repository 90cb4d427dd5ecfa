"""How a training run starts and ends: checkpoint arguments checked first; finished, stopped by bad
input, or terminated by SIGTERM.

``check_checkpoint_args`` reads the ``init_from`` and ``ckpt_path`` files before the model and data are
built, so a missing, empty, truncated or foreign file — or a ``ckpt_path`` from another model config or
stage — costs one line and no waiting.

SLURM preemption (and ``kill``) send SIGTERM. Lightning handles it once ``Trainer.fit`` has started its
loops: it stops at the next batch boundary and raises ``SIGTERMException``, a ``SystemExit`` whose exit
code is 0 — left alone, a preempted run would look finished. Before that point (model and data being
built) Python's default handler would kill the process with nothing written. So:

* ``install_sigterm_handler`` (called first thing by ``train.py``) raises ``Terminated`` on SIGTERM
  while Lightning's handler is not installed; once Lightning installs its own it calls ours as well, and
  ours then leaves the stopping to Lightning (so the current step finishes cleanly);
* ``SaveOnTerminate`` saves ``checkpoints/last.ckpt`` (optimizer, scheduler, loop and data-loader
  position included, so ``ckpt_path=.../last.ckpt`` continues the run) when either exception stops
  training;
* ``fit`` runs ``Trainer.fit`` and writes ``skipped.json`` however it ends (finished, interrupted, or a
  ``DataError`` such as an empty training set), and returns the status the CLI turns into an exit code:
  0 finished, 143 (128 + SIGTERM, what shells and schedulers expect) interrupted.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from lvlm.models.checkpoint import check_resume_setup, read_checkpoint
from lvlm.training.resume import resolve_ckpt_path

log = logging.getLogger("lvlm.train")
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143
FINISHED, INTERRUPTED = "finished", "interrupted"


def resume_path(cfg: Mapping[str, Any], run_dir: Path | None = None) -> Path | None:
    """The checkpoint ``ckpt_path`` names (``last``/``auto`` resolved), or None (plain cfg)."""
    output_dir = Path(cfg["paths"]["output_dir"])
    return resolve_ckpt_path(cfg.get("ckpt_path"), output_dir, str(cfg["name"]), run_dir)


def check_checkpoint_args(cfg: Mapping[str, Any], ckpt_path: Path | None) -> None:
    """One line for a broken ``init_from`` / ``ckpt_path`` file or a mismatched ``ckpt_path`` (plain cfg;
    ``ckpt_path`` as ``resume_path`` resolved it)."""
    if cfg.get("init_from"):
        read_checkpoint(cfg["init_from"], what="init_from checkpoint", mmap=True)
    if ckpt_path:
        ckpt = read_checkpoint(ckpt_path, what="ckpt_path checkpoint", mmap=True)
        check_resume_setup(ckpt, cfg["model"], cfg["stage"]["train"])


class Terminated(BaseException):
    """SIGTERM arrived while Lightning's own handler was not installed (before or after ``fit``)."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if signal.getsignal(signal.SIGTERM) is _on_sigterm:  # Lightning is not in charge: stop here
        raise Terminated()
    log.warning("SIGTERM received: stopping after the current step and saving a checkpoint")


def install_sigterm_handler() -> None:
    """Make SIGTERM stop the run cleanly at any point (see the module docstring)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def is_termination(exc: BaseException) -> bool:
    return isinstance(exc, (SIGTERMException, Terminated))


class SaveOnTerminate(pl.Callback):
    """Save ``last.ckpt`` in the checkpoint directory when SIGTERM stops training."""

    def __init__(self, fallback_dir: Path) -> None:
        self.fallback_dir = Path(fallback_dir)
        self.saved: Path | None = None

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not is_termination(exception) or trainer.state.fn != TrainerFn.FITTING or not trainer.optimizers:
            return  # not a termination, or training never started: nothing worth resuming from
        ckpt_cb = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
        directory = Path(ckpt_cb.dirpath) if ckpt_cb and ckpt_cb.dirpath else self.fallback_dir
        name = ModelCheckpoint.CHECKPOINT_NAME_LAST + ModelCheckpoint.FILE_EXTENSION
        path = directory / name
        if trainer.is_global_zero and path.is_symlink():
            path.unlink()
        trainer.save_checkpoint(path)
        if ckpt_cb is not None:
            ckpt_cb.last_model_path = str(path)
        self.saved = path
        log.warning("SIGTERM: saved %s at step %d; resume with ckpt_path=%s", path, trainer.global_step, path)


def fit(
    trainer: pl.Trainer, module: pl.LightningModule, datamodule: Any, run_dir: Path, **kwargs: Any
) -> str:
    """``trainer.fit`` that always writes ``skipped.json`` and reports SIGTERM as ``"interrupted"``."""
    saver = SaveOnTerminate(run_dir / "checkpoints")
    trainer.callbacks.append(saver)
    status = FINISHED
    try:
        trainer.fit(module, datamodule=datamodule, **kwargs)
        datamodule.gather_skips()  # collective; only on a clean finish, when every rank gets here
    except BaseException as exc:
        if not is_termination(exc):
            raise
        status = INTERRUPTED
    finally:
        if trainer.is_global_zero:
            datamodule.write_skip_report(run_dir)
    return status
