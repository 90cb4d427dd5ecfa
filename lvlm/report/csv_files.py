"""Machine-readable tables: ``table.csv`` (one line per row) and ``per_seed.csv`` (one line per row × seed).

Numbers are F1 × 100 (invalid rate in %) with four decimals; empty cells are missing values. In
``table.csv`` the ``ci_method`` column says which CI rule applied (``bootstrap`` for one seed,
``t-interval`` for several); ``per_seed.csv`` always holds the raw bootstrap CIs of each results.json.
Both files end with the footnote as ``#`` comment lines (read with ``pandas.read_csv(path, comment="#")``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from lvlm.report.cells import footnote
from lvlm.report.inputs import SUMMARY_KEYS, RunResult
from lvlm.report.table import Estimate, StudyTable, TableRow, invalid_rate

Cell = str | int | float | None


def _value(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def table_columns() -> list[str]:
    columns = ["row", "label", "n_seeds", "seeds", "ci_method"]
    for key in SUMMARY_KEYS:
        columns += [f"{key}_mean", f"{key}_std", f"{key}_ci_low", f"{key}_ci_high"]
    columns += ["invalid_pct_mean", "invalid_pct_std"]
    columns += [f"delta_{key}" for key in SUMMARY_KEYS]
    return [*columns, "is_base", "smoke_data"]


def _estimate_values(estimate: Estimate | None) -> list[Cell]:
    if estimate is None:
        return [None] * 4
    return [_value(estimate.mean), _value(estimate.std), _value(estimate.low), _value(estimate.high)]


def table_record(row: TableRow) -> list[Cell]:
    """One ``table.csv`` line, matching ``table_columns``."""
    method = next((e.method for e in row.scores.values() if e is not None), "")
    record: list[Cell] = [row.row, row.label, len(row.runs), ";".join(map(str, row.seeds)), method]
    for key in SUMMARY_KEYS:
        record += _estimate_values(row.scores.get(key))
    record += _estimate_values(row.invalid)[:2]
    record += [_value(row.delta.get(key)) for key in SUMMARY_KEYS]
    return [*record, int(row.is_base), int(row.smoke)]


def per_seed_columns() -> list[str]:
    columns = ["row", "label", "seed"]
    for key in SUMMARY_KEYS:
        columns += [f"{key}_f1", f"{key}_ci_low", f"{key}_ci_high"]
    return [*columns, "invalid_pct", "smoke_data", "results_json"]


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 4)


def per_seed_record(run: RunResult) -> list[Cell]:
    """One ``per_seed.csv`` line: the run's bootstrap F1 and CI per summary key, × 100."""
    record: list[Cell] = [run.study.row, run.study.label, run.study.seed]
    for key in SUMMARY_KEYS:
        score = run.summary.get(key)
        record += [None] * 3 if score is None else [_pct(score.f1), _pct(score.ci_low), _pct(score.ci_high)]
    return [*record, _pct(invalid_rate(run)), int(run.smoke_data), str(run.path)]


def csv_text(columns: Sequence[str], records: Sequence[Sequence[Cell]], notes: Sequence[str]) -> str:
    """CSV with a header line, then the records, then ``# note`` lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if cell is None else cell for cell in record] for record in records])
    buffer.writelines(f"# {note}\n" for note in notes)
    return buffer.getvalue()


def render_table_csv(table: StudyTable) -> str:
    return csv_text(table_columns(), [table_record(row) for row in table.rows], footnote(table))


def render_per_seed_csv(table: StudyTable) -> str:
    notes = [
        "One line per (row, seed): F1 × 100 of that results.json with its own bootstrap CI "
        f"({100 * table.confidence:g} %), before any aggregation over seeds.",
        *footnote(table)[1:],
    ]
    return csv_text(per_seed_columns(), [per_seed_record(run) for run in table.runs], notes)
