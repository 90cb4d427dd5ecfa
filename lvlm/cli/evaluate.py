"""``python evaluate.py``: score a model on the verbalizer-manipulation benchmark.

Builds the scoring model named by ``model.kind`` (looked up in ``lvlm.eval.models.registry.EVAL_MODELS``:
tiny in-process LVLM, Hugging Face causal LM, or lvlm checkpoint), runs the benchmark (sharded across
ranks under torchrun), and on rank 0 writes ``results.json``, ``samples.jsonl``, ``results.md`` and the
resolved config into the run directory, logs to W&B (offline by default), and prints the paper-style
table. The evaluation protocol is described in ``docs/evaluation.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lvlm.eval.distributed import broadcast_object, init_from_env
from lvlm.eval.models.registry import EVAL_MODELS
from lvlm.eval.results.wandb_log import log_to_wandb
from lvlm.eval.results.writer import BootstrapSettings
from lvlm.eval.runner import evaluate
from lvlm.utils.config import to_plain
from lvlm.utils.runtime import (
    PROJECT_ROOT,
    apply_offline_defaults,
    claim_run_dir,
    record_run_end,
    report_user_errors,
)

log = logging.getLogger("lvlm.evaluate")


def run(cfg: DictConfig) -> dict[str, Any]:
    info = init_from_env()
    run_dir = Path(broadcast_object(HydraConfig.get().runtime.output_dir, info))
    plain = to_plain(cfg)
    if info.is_main:
        claim_run_dir(run_dir)  # another run's results in this dir: one line, nothing overwritten
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
    model = EVAL_MODELS.get(str(cfg.model.kind))(plain)  # lvlm/eval/models/registry.py
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
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run(cfg)
    except BaseException as exc:
        record_run_end(run_dir, "failed", error=str(exc)[:500])  # only if this process claimed it
        raise
    record_run_end(run_dir, "finished")
