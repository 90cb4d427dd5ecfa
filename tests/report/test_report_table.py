"""The study table's numbers: seed means, SD, CIs by the CI rule, deltas to the base row, invalid rate."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from lvlm.eval.results.writer import SCHEMA_VERSION
from lvlm.eval.results.writer import SUMMARY_KEYS as WRITER_SUMMARY_KEYS
from lvlm.report import ReportFiles
from lvlm.report.inputs import SUMMARY_KEYS, SUPPORTED_SCHEMA, folder_row_and_seed, load_runs
from lvlm.report.stats import t_quantile
from lvlm.report.table import BOOTSTRAP, T_INTERVAL, build_table
from tests.report.study_fixture import STUDY_NAME, summary_of

T_975_DF1 = 12.706204736174698  # Student t, 97.5 % quantile, 1 degree of freedom


def test_reader_matches_the_writer_schema() -> None:
    assert SUMMARY_KEYS == WRITER_SUMMARY_KEYS
    assert SUPPORTED_SCHEMA == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("df", "expected"), [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)]
)
def test_t_quantile_matches_tables(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_rows_seeds_and_labels(report: ReportFiles, study_dir: Path) -> None:
    table = report.table
    assert [row.row for row in table.rows] == ["base", "fovit", "nofovit"]
    assert [row.label for row in table.rows] == ["LLM (base)", "LVLM FOVIT", "nofovit"]
    assert [row.seeds for row in table.rows] == [(0,), (1, 2), (3,)]
    assert table.base == "base" and table.study_name == STUDY_NAME
    sources = {run.study.row: run.study.source for run in table.runs}
    assert sources == {"base": "study.json", "fovit": "results.json", "nofovit": "folder"}
    assert table.rows[1].runs[0].study.condition_tags == ("fovit",)


def test_single_seed_row_uses_the_bootstrap_ci(report: ReportFiles, study_dir: Path) -> None:
    summary = summary_of(study_dir / "base" / "results.json")
    row = report.table.rows[0]
    for key in SUMMARY_KEYS:
        estimate = row.scores[key]
        assert estimate.method == BOOTSTRAP and estimate.n == 1 and estimate.std is None
        assert estimate.mean == pytest.approx(100 * summary[key]["f1"])
        assert estimate.low == pytest.approx(100 * summary[key]["f1_ci_low"])
        assert estimate.high == pytest.approx(100 * summary[key]["f1_ci_high"])
    assert row.invalid.mean == pytest.approx(100 * summary["all"]["invalid_rate"])


def test_two_seed_row_uses_mean_sd_and_t_interval(report: ReportFiles, study_dir: Path) -> None:
    first, second = (summary_of(study_dir / "fovit" / f"seed{k}" / "results.json") for k in (1, 2))
    row = report.table.rows[1]
    for key in SUMMARY_KEYS:
        values = [100 * first[key]["f1"], 100 * second[key]["f1"]]
        mean, sd = statistics.mean(values), statistics.stdev(values)
        half = T_975_DF1 * sd / math.sqrt(2)
        estimate = row.scores[key]
        assert estimate.method == T_INTERVAL and estimate.n == 2
        assert estimate.mean == pytest.approx(mean) and estimate.std == pytest.approx(sd)
        assert estimate.low == pytest.approx(max(0.0, mean - half))
        assert estimate.high == pytest.approx(min(100.0, mean + half))
    rates = [100 * first["all"]["invalid_rate"], 100 * second["all"]["invalid_rate"]]
    assert row.invalid.mean == pytest.approx(statistics.mean(rates))
    assert row.invalid.std == pytest.approx(statistics.stdev(rates))


def test_deltas_to_the_base_row(report: ReportFiles) -> None:
    base, fovit, nofovit = report.table.rows
    assert base.is_base and base.delta == {}
    for row in (fovit, nofovit):
        for key in SUMMARY_KEYS:
            assert row.delta[key] == pytest.approx(row.scores[key].mean - base.scores[key].mean)
    assert fovit.delta["unnatural"] > 0  # the fixture's FOVIT row follows unnatural labels better


def test_order_and_base_options(study_dir: Path) -> None:
    runs = load_runs([study_dir])
    table = build_table(runs, base="nofovit", order=["fovit"])
    assert [row.row for row in table.rows] == ["fovit", "base", "nofovit"]
    assert table.base == "nofovit" and table.rows[2].delta == {}
    assert table.rows[1].delta["all"] == pytest.approx(
        table.rows[1].scores["all"].mean - table.rows[2].scores["all"].mean
    )


def test_no_base_row_means_no_delta_columns(study_dir: Path) -> None:
    table = build_table(load_runs([study_dir / "fovit", study_dir / "nofovit"]))
    assert table.base is None and all(row.delta == {} for row in table.rows)


def test_seed_folder_fallback(tmp_path: Path) -> None:
    assert folder_row_and_seed(tmp_path / "fovit" / "seed7" / "results.json", {"seed": 0}) == ("fovit", 7)
    assert folder_row_and_seed(tmp_path / "fovit" / "results.json", {"seed": 4}) == ("fovit", 4)
    assert folder_row_and_seed(tmp_path / "fovit" / "results.json", {}) == ("fovit", 0)
