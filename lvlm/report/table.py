"""The study table: one row per model, seeds aggregated, CIs by the report's CI rule, deltas to a base row.

Values are F1 × 100 (and invalid rate × 100, in %). CI rule: a row with one seed shows the bootstrap CI
stored in its results.json; a row with two or more seeds shows the two-sided t-interval of the seed mean
(``mean ± t(1 - α/2, n - 1) · sd / √n``, clipped to [0, 100], the range of the values) at the confidence
the results were written with (95 % by default), and the sample standard deviation over seeds. Δ columns
are a row's mean minus the base row's mean, in F1 points. Rows keep the order in which they first appear
among the inputs unless an explicit order is given (rows it does not name follow in first-appearance
order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lvlm.errors import ConfigError, UnknownNameError
from lvlm.report.inputs import LABEL_SYSTEMS, SUMMARY_KEYS, RunResult
from lvlm.report.stats import mean, sample_std, t_interval

DEFAULT_BASE = "base"
DEFAULT_TITLE = "Instruction following under verbalizer manipulation"
BOOTSTRAP, T_INTERVAL = "bootstrap", "t-interval"


@dataclass(frozen=True)
class Estimate:
    """A value × 100 aggregated over seeds: mean, sample std (≥ 2 seeds), CI bounds and how they were made."""

    mean: float
    std: float | None
    low: float | None
    high: float | None
    n: int
    method: str


@dataclass(frozen=True)
class TableRow:
    """One model of the study table."""

    row: str
    label: str
    runs: tuple[RunResult, ...]
    scores: dict[str, Estimate | None]
    invalid: Estimate | None
    delta: dict[str, float | None] = field(default_factory=dict)
    is_base: bool = False

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(run.study.seed for run in self.runs)

    @property
    def smoke(self) -> bool:
        return any(run.smoke_data for run in self.runs)


@dataclass(frozen=True)
class StudyTable:
    """The whole table plus what its footnote and title need."""

    rows: list[TableRow]
    base: str | None
    confidence: float
    title: str
    study_name: str | None

    @property
    def smoke(self) -> bool:
        return any(row.smoke for row in self.rows)

    @property
    def runs(self) -> list[RunResult]:
        return [run for row in self.rows for run in row.runs]


def group_runs(runs: Sequence[RunResult], order: Sequence[str] | None = None) -> dict[str, list[RunResult]]:
    """Runs by row (each row's runs sorted by seed), rows in ``order`` first, then by first appearance."""
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        groups.setdefault(run.study.row, []).append(run)
    wanted = [name for name in order or [] if name]
    for name in wanted:
        if name not in groups:
            raise UnknownNameError("row", name, groups)
    ordered = wanted + [name for name in groups if name not in wanted]
    return {name: sorted(groups[name], key=lambda run: run.study.seed) for name in ordered}


def aggregate(
    values: Sequence[float],
    bootstrap_ci: tuple[float | None, float | None],
    confidence: float,
    floor: float = 0.0,
    ceiling: float = 100.0,
) -> Estimate:
    """Mean and CI of per-seed ``values`` (already × 100) by the CI rule; t-intervals clipped to the range."""
    if len(values) == 1:
        return Estimate(values[0], None, bootstrap_ci[0], bootstrap_ci[1], 1, BOOTSTRAP)
    low, high = t_interval(values, confidence)
    low, high = max(low, floor), min(high, ceiling)
    return Estimate(mean(values), sample_std(values), low, high, len(values), T_INTERVAL)


def _times_100(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def score_estimate(runs: Sequence[RunResult], key: str, confidence: float) -> Estimate | None:
    """The aggregated F1 × 100 of summary entry ``key``; ``None`` when any seed lacks it."""
    entries = [run.summary.get(key) for run in runs]
    if any(entry is None for entry in entries):
        return None
    values = [100.0 * entry.f1 for entry in entries]  # type: ignore[union-attr]
    first = entries[0]
    return aggregate(values, (_times_100(first.ci_low), _times_100(first.ci_high)), confidence)  # type: ignore[union-attr]


def invalid_rate(run: RunResult) -> float | None:
    """The run's invalid rate: summary.all's (mean over systems), else the mean of the systems present."""
    overall = run.summary.get("all")
    if overall is not None and overall.invalid_rate is not None:
        return overall.invalid_rate
    rates = [
        s.invalid_rate for k, s in run.summary.items() if k in LABEL_SYSTEMS and s.invalid_rate is not None
    ]
    return mean(rates) if rates else None


def invalid_estimate(runs: Sequence[RunResult], confidence: float) -> Estimate | None:
    rates = [invalid_rate(run) for run in runs]
    if any(rate is None for rate in rates):
        return None
    values = [100.0 * rate for rate in rates]  # type: ignore[operator]
    if len(values) == 1:
        return Estimate(values[0], None, None, None, 1, BOOTSTRAP)
    return aggregate(values, (None, None), confidence)


def differences(
    row: Mapping[str, Estimate | None], base: Mapping[str, Estimate | None]
) -> dict[str, float | None]:
    """Row mean minus base mean per summary key (``None`` where either is missing)."""
    return {
        key: row[key].mean - base[key].mean  # type: ignore[union-attr]
        if row.get(key) is not None and base.get(key) is not None
        else None
        for key in SUMMARY_KEYS
    }


def resolve_base(rows: Sequence[str], base: str | None) -> str | None:
    """The base row: ``base`` if given (it must exist), else a row named ``base``, else none."""
    if base is None:
        return DEFAULT_BASE if DEFAULT_BASE in rows else None
    if base not in rows:
        raise UnknownNameError("row", base, rows)
    return base


def common_confidence(runs: Sequence[RunResult]) -> float:
    """The bootstrap confidence shared by all runs (they must agree, the table states one level)."""
    levels = sorted({round(run.confidence, 6) for run in runs})
    if len(levels) > 1:
        raise ConfigError(
            f"results were written with different CI levels {levels}; fix: evaluate all rows with the same "
            "bootstrap.confidence"
        )
    return levels[0] if levels else 0.95


def study_name(runs: Sequence[RunResult]) -> str | None:
    """The one study name the runs that have one agree on, else ``None``."""
    names = {run.study.name for run in runs if run.study.name}
    return names.pop() if len(names) == 1 else None


def default_title(name: str | None) -> str:
    return f"{name}: {DEFAULT_TITLE.lower()}" if name else DEFAULT_TITLE


def build_table(
    runs: Sequence[RunResult],
    *,
    base: str | None = None,
    order: Sequence[str] | None = None,
    title: str | None = None,
) -> StudyTable:
    """Group runs into rows, aggregate seeds, and compute differences to the base row."""
    confidence = common_confidence(runs)
    groups = group_runs(runs, order)
    base_name = resolve_base(list(groups), base)
    scores = {
        name: {key: score_estimate(group, key, confidence) for key in SUMMARY_KEYS}
        for name, group in groups.items()
    }
    rows = [
        TableRow(
            row=name,
            label=group[0].study.label,
            runs=tuple(group),
            scores=scores[name],
            invalid=invalid_estimate(group, confidence),
            delta=differences(scores[name], scores[base_name]) if base_name and name != base_name else {},
            is_base=name == base_name,
        )
        for name, group in groups.items()
    ]
    name = study_name(runs)
    return StudyTable(rows, base_name, confidence, title or default_title(name), name)
