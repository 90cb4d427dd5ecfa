"""The study report: evaluation results.json files → the paper's table, figure and an offline HTML page.

``python -m lvlm.report <study dir | results.json ...>`` (see ``__main__``) or, from code,
``build_report(paths, out_dir, base=..., order=...)`` then ``print_report(files)``; W&B logging is
``lvlm.report.wandb_report.log_report_to_wandb``. Which row and seed a results file belongs to is read
from its ``study`` key or a ``study.json`` beside it (see ``lvlm.report.inputs``); the CI rule is in
``lvlm.report.table``. docs/report.md describes the outputs and the input contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lvlm.report.build import ReportFiles, build_report, print_report

__all__ = ["ReportFiles", "build_report", "print_report"]


def __getattr__(name: str) -> Any:
    """Import the builder (and matplotlib) only when used: the study spec reads report.directions cheaply."""
    if name in __all__:
        from lvlm.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'lvlm.report' has no attribute {name!r}")
