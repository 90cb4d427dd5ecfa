"""One evaluation of the verbalizer benchmark, from configuration to result files.

``plan_evaluation`` loads the selected tasks, builds the verbalizer sets and renders every prompt.
``score_items`` scores them (sharded over ranks when distributed, served from and written to the
prediction cache). ``evaluate`` ties it together and, on rank 0, writes ``results.json``,
``samples.jsonl`` and ``results.md`` (with the parse scope and the model's prompt ``wrapping``). Runs on
smoke data say so in the log and in ``results.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lvlm.eval.distributed import DistInfo, gather_in_order, init_from_env, shard_indices
from lvlm.eval.results.writer import BootstrapSettings, ResultFiles, write_results
from lvlm.eval.scoring.scorers import get_scorer, resolved_settings, run_scorer, settings_from_config
from lvlm.eval.sources.loaders import LoadResult, load_selected
from lvlm.eval.tasks.definitions import TaskSpec, select_tasks
from lvlm.eval.tasks.prompts import build_prompts, templates_hash
from lvlm.eval.tasks.verbalizers import verbalizer_hash, verbalizer_sets
from lvlm.eval.types import Prediction, PromptItem, ScoringModel, VerbalizerSet
from lvlm.utils.config import to_plain

log = logging.getLogger(__name__)


@dataclass
class EvalPlan:
    tasks: list[TaskSpec]
    loads: dict[str, LoadResult]
    sets: dict[str, list[VerbalizerSet]]
    items: list[PromptItem]

    @property
    def smoke_tasks(self) -> list[str]:
        return [name for name, load in self.loads.items() if load.is_smoke]

    def data_report(self) -> dict[str, Any]:
        return {
            name: {"source": load.source, "is_smoke": load.is_smoke, "examples": len(load.examples),
                   "available": load.available, "skipped": load.skipped, "dropped": load.dropped,
                   "encoding": load.encoding}
            for name, load in self.loads.items()
        }  # fmt: skip


def plan_evaluation(eval_cfg: DictConfig | Mapping[str, Any]) -> EvalPlan:
    cfg = to_plain(eval_cfg)
    get_scorer(str(cfg.get("scorer", "generate")))  # unknown scorer: fail before loading anything
    tasks = select_tasks(cfg)
    loads = load_selected(cfg)
    sets = {spec.name: verbalizer_sets(spec, cfg) for spec in tasks}
    items = build_prompts(tasks, {name: load.examples for name, load in loads.items()}, sets)
    plan = EvalPlan(tasks, loads, sets, items)
    if plan.smoke_tasks:
        log.warning("!!! SMOKE DATA for %s: these numbers are NOT results on real splits; set eval.data_dir "
                    "or make the hub reachable", ", ".join(plan.smoke_tasks))  # fmt: skip
    return plan


def score_items(
    model: ScoringModel,
    items: list[PromptItem],
    eval_cfg: Mapping[str, Any],
    cache_dir: Path | None,
    info: DistInfo,
    progress: bool = True,
) -> tuple[list[Prediction], dict[str, int]]:
    """Predictions for all items on every rank; each rank scores its shard (cache per rank)."""
    mine = shard_indices(len(items), info)
    rank_cache = None
    if cache_dir is not None:
        rank_cache = (
            cache_dir if info.world_size == 1 else cache_dir / f"world{info.world_size}-rank{info.rank}"
        )
    scorer = str(eval_cfg.get("scorer", "generate"))
    run = run_scorer(
        scorer, model, [items[i] for i in mine],
        batch_size=int(eval_cfg.get("batch_size", 8)), cache_dir=rank_cache,
        progress=progress and info.is_main, **settings_from_config(scorer, eval_cfg),
    )  # fmt: skip
    counts = gather_in_order([(run.n_cached, run.n_computed)], info.world_size, info)
    stats = {"cached": sum(c for c, _ in counts), "computed": sum(n for _, n in counts)}
    return gather_in_order(run.predictions, len(items), info), stats


def evaluate(
    eval_cfg: DictConfig | Mapping[str, Any],
    model: ScoringModel,
    run_dir: Path | None,
    *,
    cache_dir: Path | None,
    config: Mapping[str, Any],
    bootstrap: BootstrapSettings | None = None,
    progress: bool = True,
) -> tuple[ResultFiles | None, dict[str, Any]]:
    """Plan, score and (rank 0, when ``run_dir`` is given) write the results; returns files and stats."""
    cfg = to_plain(eval_cfg)
    info = init_from_env()
    plan = plan_evaluation(cfg)
    predictions, stats = score_items(model, plan.items, cfg, cache_dir, info, progress)
    stats |= {"prompts": len(plan.items), "smoke_tasks": plan.smoke_tasks, "world_size": info.world_size}
    if not info.is_main or run_dir is None:
        return None, stats
    scorer = str(cfg.get("scorer", "generate"))
    scope = resolved_settings(scorer, settings_from_config(scorer, cfg)).get("parse_scope")
    files = write_results(
        run_dir, items=plan.items, predictions=predictions,
        config=dict(config), data=plan.data_report(),
        model_fingerprint=model.fingerprint, template_hash=templates_hash(plan.tasks),
        verbalizer_hash=verbalizer_hash(plan.sets), scorer=scorer,
        bootstrap=bootstrap or BootstrapSettings(), volatile={"stats": stats},
        parse_scope=None if scope is None else str(scope), wrapping=getattr(model, "wrapping", None),
    )  # fmt: skip
    return files, stats
