"""``python train.py``: train an LVLM with Hydra, Lightning and W&B.

Composes ``conf/train.yaml``, seeds everything, builds the model and data, applies the stage freeze policy,
trains (resuming from ``ckpt_path`` when given; ``init_from`` loads trainable weights such as a stage-1
projector first), and writes into the Hydra run directory: the resolved config, ``metrics.jsonl``,
``skipped.json``, checkpoints and the offline W&B run. Ends by printing where everything is.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

import lvlm.construction.data_kind  # noqa: F401  (registers data.kind=constructed)
from lvlm.construction.data_kind import check_data_for_model
from lvlm.data.datamodule import LlavaDataModule
from lvlm.errors import ConfigError
from lvlm.models.checkpoint import init_from, read_checkpoint
from lvlm.models.presets import build_model
from lvlm.training.batching import apply_global_batch
from lvlm.training.devices import check_accelerator
from lvlm.training.lifecycle import (
    EXIT_TERMINATED,
    FINISHED,
    INTERRUPTED,
    Terminated,
    check_checkpoint_args,
    fit,
    install_sigterm_handler,
    resume_path,
)
from lvlm.training.module import LVLMModule
from lvlm.training.resume import saved_wandb_id
from lvlm.utils.config import to_plain
from lvlm.utils.runtime import (
    PROJECT_ROOT,
    apply_offline_defaults,
    claim_run_dir,
    is_launch_rank_zero,
    record_run_end,
    report_user_errors,
)
from lvlm.utils.seeding import seed_all
from lvlm.utils.wandb_utils import finish_wandb, wandb_run_dir

log = logging.getLogger("lvlm.train")


def build_module(cfg: DictConfig) -> tuple[LVLMModule, LlavaDataModule]:
    seed_all(int(cfg.seed))
    built = build_model(cfg.model, cache_dir=Path(cfg.paths.cache_dir))
    template = str(cfg.stage.template or built.template)
    module = LVLMModule(
        built.model,
        to_plain(cfg.stage.train),
        instantiate(cfg.stage.optimizer),
        instantiate(cfg.stage.scheduler) if cfg.stage.get("scheduler") else None,
        to_plain(cfg.stage.get("part_lr")) or None,
        base={
            "model": to_plain(cfg.model),
            "seed": int(cfg.seed),
            "template": template,
        },
    )
    if cfg.get("init_from"):
        init_from(module, Path(cfg.init_from), module.trainable_keys)
    datamodule = LlavaDataModule(cfg.data, built.tokenizer, built.model, template)
    return module, datamodule


def run(cfg: DictConfig) -> dict[str, object]:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    ckpt_path = resume_path(to_plain(cfg), run_dir)  # ckpt_path=last / auto resolved once
    if is_launch_rank_zero():  # another run's results in this dir: one line, nothing overwritten
        claim_run_dir(run_dir, resume_from=ckpt_path)
    apply_global_batch(cfg)  # trainer.accumulate_grad_batches from data.global_batch_size
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
    check_checkpoint_args(to_plain(cfg), ckpt_path)  # broken or mismatched files: one line, before building
    module, datamodule = build_module(cfg)
    log.info("trainable parameters: %s", module.trainable_counts)
    loggers = build_loggers(cfg, ckpt_path)
    for logger in loggers:
        logger.log_hyperparams(to_plain(cfg))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    trainer: pl.Trainer = instantiate(trainer_options(cfg), logger=loggers or False, callbacks=callbacks)
    started = time.time()
    ckpt = str(ckpt_path) if ckpt_path else None  # validated by read_checkpoint: our own file format
    status = fit(trainer, module, datamodule, run_dir, ckpt_path=ckpt, weights_only=False)
    return summarize(trainer, run_dir, loggers, time.time() - started, status)


def build_loggers(cfg: DictConfig, ckpt_path: Path | None) -> list:
    """The configured loggers; a resumed run continues the W&B run its checkpoint was logged under."""
    run_id = saved_wandb_id(read_checkpoint(ckpt_path).raw) if ckpt_path else None
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if not node:
            continue
        is_wandb = str(node.get("_target_", "")).endswith("WandbLogger")
        extra = {"id": run_id, "resume": "allow"} if is_wandb and run_id else {}
        loggers.append(instantiate(node, **extra))
    return loggers


def trainer_options(cfg: DictConfig) -> dict:
    """``cfg.trainer`` as Trainer arguments; the project's ``tf32`` switch is applied here, not passed on."""
    options = to_plain(cfg.trainer)
    if options.pop("tf32", False):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return options


def check_required(cfg: DictConfig) -> None:
    """Hydra's ``???`` (missing mandatory value) as one ``ConfigError`` line instead of a traceback."""
    missing = _missing_keys(cfg)
    if not missing:
        return
    example = (
        "init_from=<stage-1 run>/checkpoints/last.ckpt (the projector of experiment=pretrain_lcs558k)"
        if "init_from" in missing
        else f"{missing[0]}=<value>"
    )
    raise ConfigError(f"missing required value(s): {', '.join(missing)}; fix: set it on the command line, "
                      f"e.g. {example} (docs/model.md)")  # fmt: skip


def _missing_keys(node: DictConfig | ListConfig, prefix: str = "") -> list[str]:
    """Dotted keys whose value is ``???``, found without resolving interpolations."""
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    missing = []
    for key in keys:
        if OmegaConf.is_missing(node, key):
            missing.append(f"{prefix}{key}")
            continue
        child = node._get_node(key)
        if isinstance(child, (DictConfig, ListConfig)) and not OmegaConf.is_interpolation(node, key):
            if child._is_none():
                continue
            missing.extend(_missing_keys(child, f"{prefix}{key}."))
    return missing


def summarize(
    trainer: pl.Trainer, run_dir: Path, loggers: list, seconds: float, status: str = FINISHED
) -> dict[str, object]:
    """Print where everything is; record it with the run's status in ``run.json``."""
    ckpt = trainer.checkpoint_callback
    ckpt_path = getattr(ckpt, "last_model_path", "") or getattr(ckpt, "best_model_path", "")
    summary = {
        "status": status,
        "run_dir": str(run_dir),
        "checkpoint": ckpt_path if ckpt_path and Path(ckpt_path).exists() else "none saved",
        "metrics": str(run_dir / "metrics.jsonl"),
        "wandb": str(wandb_run_dir(loggers) or "disabled"),
        "steps": trainer.global_step,
        "seconds": round(seconds, 1),
    }
    if status != FINISHED:
        summary["status"] = f"{status} by SIGTERM; resume with ckpt_path={summary['checkpoint']}"
    if trainer.is_global_zero:
        width = max(len(k) for k in summary)
        print("\n".join(f"{k.ljust(width)} : {v}" for k, v in summary.items()), flush=True)
        record_run_end(run_dir, status, summary=summary)
    return summary


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="train")
@report_user_errors
def main(cfg: DictConfig) -> None:
    apply_offline_defaults()
    install_sigterm_handler()
    check_required(cfg)
    check_data_for_model(to_plain(cfg.data), to_plain(cfg.model))  # real presets: real data
    check_accelerator(to_plain(cfg.trainer))
    try:
        summary = run(cfg)
    except Terminated:  # SIGTERM before training started: nothing to save
        finish_wandb(exit_code=EXIT_TERMINATED)
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        record_run_end(run_dir, INTERRUPTED)
        print(f"interrupted (SIGTERM) before training started; nothing saved in {run_dir}", file=sys.stderr)
        sys.exit(EXIT_TERMINATED)
    except BaseException as exc:
        finish_wandb(exit_code=1)
        record_run_end(Path(HydraConfig.get().runtime.output_dir), "failed", error=str(exc)[:500])
        raise
    if summary["status"] != FINISHED:
        finish_wandb(exit_code=EXIT_TERMINATED)
        sys.exit(EXIT_TERMINATED)
    finish_wandb()
