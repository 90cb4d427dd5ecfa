"""Cell texts and the footnote shared by every rendering of the study table (text, Markdown, HTML, TeX).

Numbers are shown with one decimal. A score cell reads ``72.3 [70.1, 74.5]`` for one seed and
``72.3 ± 1.2 [70.0, 74.6]`` (mean ± sample SD over seeds, then the t-interval) for several; a missing value
is ``–``; Δ cells are signed (``+1.2``) and read ``ref`` on the base row. The footnote states the CI rule
and is printed under every output.
"""

from __future__ import annotations

from lvlm.report.inputs import LABEL_SYSTEMS, SUMMARY_KEYS
from lvlm.report.table import Estimate, StudyTable, TableRow

MISSING = "–"
BASE_MARK = "ref"
KEY_NAMES = {"natural": "Natural", "neutral": "Neutral", "unnatural": "Unnatural", "all": "All"}


def number(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value:+.{digits}f}"


def estimate_text(estimate: Estimate | None, with_ci: bool = True) -> str:
    """``mean [± sd] [low, high]`` of one aggregated value."""
    if estimate is None:
        return MISSING
    text = number(estimate.mean)
    if estimate.std is not None:
        text += f" ± {number(estimate.std)}"
    if with_ci and estimate.low is not None and estimate.high is not None:
        text += f" [{number(estimate.low)}, {number(estimate.high)}]"
    return text


def headers(table: StudyTable) -> list[str]:
    """Column titles: model, seed count, the four F1 columns, invalid %, and Δ columns with a base row."""
    titles = ["Model", "Seeds", *(KEY_NAMES[key] for key in SUMMARY_KEYS), "Invalid %"]
    if table.base is not None:
        titles += [f"Δ {KEY_NAMES[key]}" for key in SUMMARY_KEYS]
    return titles


def row_cells(row: TableRow, table: StudyTable) -> list[str]:
    """The texts of one table row, matching ``headers``."""
    cells = [row.label, str(len(row.runs))]
    cells += [estimate_text(row.scores.get(key)) for key in SUMMARY_KEYS]
    cells.append(estimate_text(row.invalid, with_ci=False))
    if table.base is not None:
        cells += [BASE_MARK if row.is_base else signed(row.delta.get(key)) for key in SUMMARY_KEYS]
    return cells


def percent(confidence: float) -> str:
    return f"{100 * confidence:g} %"


def ci_rule(table: StudyTable, where: str) -> str:
    """The CI rule in one sentence; ``where`` says where the CIs are shown (brackets, error bars)."""
    level = percent(table.confidence)
    return (
        f"CI rule: {level} CIs ({where}). A row with 1 seed shows the bootstrap CI stored in its "
        f"results.json; a row with ≥ 2 seeds shows mean ± SD over seeds and a {level} t-interval of the "
        "seed mean (mean ± t(n−1) · SD / sqrt(n), clipped to [0, 100])."
    )


def footnote(table: StudyTable) -> list[str]:
    """Sentences under every output: what the numbers are, the CI rule, the base row, smoke data."""
    systems = ", ".join(KEY_NAMES[s] for s in LABEL_SYSTEMS)
    notes = [
        "F1 × 100 (macro F1 over the two labels; an invalid answer matches neither), pooled per label "
        f"system; All = unweighted mean of {systems}. Invalid % = share of answers matching neither label "
        "word, averaged over the three systems.",
        ci_rule(table, "in brackets") + " Seeds = number of seeds.",
    ]
    if table.base is not None:
        base = next(row for row in table.rows if row.is_base)
        notes.append(f"Δ = row mean − mean of the base row '{base.label}', in F1 points.")
    if table.smoke:
        smoke = ", ".join(row.label for row in table.rows if row.smoke)
        notes.append(f"WARNING: smoke data (not the real evaluation splits) in: {smoke}.")
    return notes
