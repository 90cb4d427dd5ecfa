"""Logging a built study report to Weights & Biases (optional; ``--wandb`` or ``log_report_to_wandb``).

One run with ``job_type="report"`` and ``group=<study name>`` gets the table as a ``wandb.Table``
(``report/table``, the columns of table.csv), the bar chart and heat maps as ``wandb.Image``s, the All
F1 of each row in the run summary, and an artifact of type ``report`` holding report.html and the table
files. The mode follows ``WANDB_MODE`` (offline when unset, as everywhere in lvlm), so it works with no
network; the offline run lands under ``<out_dir>/wandb``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from lvlm.report.build import ReportFiles
from lvlm.report.csv_files import table_columns, table_record

DEFAULT_PROJECT = "lvlm"


def artifact_name(text: str) -> str:
    """A valid W&B artifact name (letters, digits, ``-``, ``_``, ``.``) made from ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "study"


def table_data(files: ReportFiles) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the W&B table (the table.csv columns)."""
    return table_columns(), [table_record(row) for row in files.table.rows]


def log_report_to_wandb(
    files: ReportFiles,
    *,
    project: str = DEFAULT_PROJECT,
    group: str | None = None,
    name: str | None = None,
    mode: str | None = None,
) -> Path:
    """Log ``files`` in a new ``job_type="report"`` run and finish it; returns the W&B run folder."""
    import wandb

    study = group or files.table.study_name or "study"
    run = wandb.init(
        project=project, group=study, job_type="report", name=name or f"report-{study}",
        dir=str(files.out_dir), mode=mode or os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
        config={"base": files.table.base, "rows": [row.row for row in files.table.rows]},
    )  # fmt: skip
    try:
        columns, rows = table_data(files)
        images = {f"report/heatmap/{row}": wandb.Image(str(path)) for row, path in files.heatmaps.items()}
        run.log({"report/table": wandb.Table(columns=columns, data=rows),
                 "report/figure": wandb.Image(str(files.figure_png)), **images})  # fmt: skip
        for row in files.table.rows:
            estimate = row.scores.get("all")
            if estimate is not None:
                run.summary[f"report/{row.row}/all_f1"] = estimate.mean
        artifact = wandb.Artifact(artifact_name(f"report-{study}"), type="report")
        for path in (files.report_html, files.table_csv, files.table_md, files.table_tex, files.per_seed_csv):
            artifact.add_file(str(path))
        run.log_artifact(artifact)
        return Path(run.dir).parent
    finally:
        run.finish()
