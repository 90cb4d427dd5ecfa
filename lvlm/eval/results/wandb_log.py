"""Logging benchmark results to Weights & Biases.

Summary metrics are named ``eval/<label_system>/f1`` and ``eval/all/f1`` (plus CI bounds and invalid
rates); the per-prompt samples go into a ``wandb.Table``. ``summary_metrics`` is shared with the training
callback, which logs the same names through Lightning's loggers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lvlm.eval.results.writer import SUMMARY_KEYS


def summary_metrics(results: Mapping[str, Any], prefix: str = "eval") -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key in SUMMARY_KEYS:
        entry = results.get("summary", {}).get(key) or {}
        for name, value in entry.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"{prefix}/{key}/{name}"] = float(value)
            elif isinstance(value, Mapping):
                for sub, inner in value.items():
                    if isinstance(inner, (int, float)) and not isinstance(inner, bool):
                        metrics[f"{prefix}/{key}/{name}_{sub}"] = float(inner)
    return metrics


def log_to_wandb(
    results: Mapping[str, Any], samples_path: Path, run_dir: Path, cfg: Mapping[str, Any]
) -> Path:
    """Create a W&B run, write summary metrics and a samples table, finish it; returns the run dir."""
    import wandb

    settings = cfg["wandb"]
    group = settings.get("group") or cfg["group"]  # a study sets wandb.group=<study name>
    tags = [str(tag) for tag in settings.get("tags") or []] or None
    run = wandb.init(
        project=settings["project"], name=str(cfg["name"]), group=str(group),
        job_type=str(settings.get("job_type") or "eval"), tags=tags,
        dir=str(run_dir), mode=settings["mode"], config=dict(cfg),
    )  # fmt: skip
    try:
        for name, value in summary_metrics(results).items():
            run.summary[name] = value
        run.summary["eval/smoke_data"] = bool(results.get("smoke_data"))
        rows = []
        with samples_path.open(encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                if index >= int(settings["max_table_rows"]):
                    break
                rows.append(json.loads(line))
        if rows:
            columns = sorted(rows[0])
            table = wandb.Table(columns=columns, data=[[_cell(row.get(c)) for c in columns] for row in rows])
            run.log({"eval/samples": table})
        return Path(run.dir).parent
    finally:
        run.finish()


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value
