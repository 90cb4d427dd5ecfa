"""``python evaluate.py``: score a model on the verbalizer-manipulation benchmark.

Builds the scoring model (tiny in-process LVLM, Hugging Face causal LM, or lvlm checkpoint), runs the
benchmark (sharded across ranks under torchrun), and on rank 0 writes ``results.json``, ``samples.jsonl``,
``results.md`` and the resolved config into the run directory, logs to W&B (offline by default), and prints
the paper-style table.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lvlm.errors import ConfigError
from lvlm.eval.distributed import broadcast_object, init_from_env
from lvlm.eval.hf_model import load_hf_scoring_model
from lvlm.eval.lvlm_model import LVLMScoringModel, scoring_model_from_checkpoint
from lvlm.eval.results import BootstrapSettings
from lvlm.eval.runner import evaluate
from lvlm.eval.types import ScoringModel
from lvlm.eval.wandb_log import log_to_wandb
from lvlm.models.presets import build_model
from lvlm.templates import get_template
from lvlm.utils.runtime import PROJECT_ROOT, apply_offline_defaults, report_user_errors

log = logging.getLogger("lvlm.evaluate")
MODEL_KINDS = ("tiny", "hf", "checkpoint")


def build_scoring_model(cfg: DictConfig) -> ScoringModel:
    kind, image_slot = str(cfg.model.kind), str(cfg.eval.image_slot)
    if kind == "tiny":
        pl.seed_everything(int(cfg.seed), verbose=False)
        built = build_model(cfg.model.preset, cache_dir=Path(cfg.paths.cache_dir))
        return LVLMScoringModel(built.model, built.tokenizer, get_template(built.template), image_slot)
    if kind == "checkpoint":
        if not cfg.model.checkpoint:
            raise ConfigError("model.kind=checkpoint needs model.checkpoint=<path to .ckpt>")
        return scoring_model_from_checkpoint(Path(cfg.model.checkpoint), image_slot)
    if kind == "hf":
        if not cfg.model.name_or_path:
            raise ConfigError("model.kind=hf needs model.name_or_path=<local dir or hub id>")
        return load_hf_scoring_model(
            str(cfg.model.name_or_path), str(cfg.model.dtype), str(cfg.model.device),
            use_chat_template=bool(cfg.model.use_chat_template), system_prompt=cfg.model.system_prompt,
        )  # fmt: skip
    raise ConfigError(f"unknown model.kind '{kind}'; valid model.kind names: {', '.join(MODEL_KINDS)}")


def run(cfg: DictConfig) -> dict[str, Any]:
    info = init_from_env()
    run_dir = Path(broadcast_object(HydraConfig.get().runtime.output_dir, info))
    plain = OmegaConf.to_container(cfg, resolve=True)
    if info.is_main:
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
    model = build_scoring_model(cfg)
    boot = BootstrapSettings(
        int(cfg.bootstrap.n_resamples), int(cfg.bootstrap.seed), float(cfg.bootstrap.confidence)
    )
    cache_dir = Path(cfg.cache.dir) if cfg.cache.enabled else None
    files, stats = evaluate(cfg.eval, model, run_dir, cache_dir=cache_dir, config=plain, bootstrap=boot)
    if files is None:
        return stats
    wandb_dir = (
        log_to_wandb(files.results, files.samples_jsonl, run_dir, plain) if cfg.wandb.enabled else None
    )
    print(files.results_md.read_text(encoding="utf-8"))
    print(f"run_dir  : {run_dir}\nresults  : {files.results_json}\nsamples  : {files.samples_jsonl}")
    print(f"wandb    : {wandb_dir or 'disabled'}\nprompts  : {stats['prompts']} "
          f"({stats['computed']} computed, {stats['cached']} from cache)")  # fmt: skip
    if stats["smoke_tasks"]:
        print(f"WARNING  : smoke data (not real splits) for {', '.join(stats['smoke_tasks'])}")
    return stats


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="evaluate")
@report_user_errors
def main(cfg: DictConfig) -> None:
    apply_offline_defaults()
    run(cfg)
