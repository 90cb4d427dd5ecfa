"""Expected directions: pair verdicts from means and CIs, claim verdicts, and the words in every output."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvlm.errors import ConfigError
from lvlm.report import build_report
from lvlm.report.directions import (
    NOT_MEASURED,
    Direction,
    check_directions,
    compare,
    parse_directions,
)
from lvlm.report.table import BOOTSTRAP, Estimate


def estimate(mean: float, low: float | None, high: float | None) -> Estimate:
    return Estimate(mean, None, low, high, 1, BOOTSTRAP)


@pytest.mark.parametrize(
    ("lower", "higher", "verdict"),
    [
        (estimate(10, 8, 12), estimate(20, 18, 22), "holds, CIs apart"),
        (estimate(10, 8, 19), estimate(20, 18, 22), "holds, CIs overlap"),
        (estimate(20, 18, 22), estimate(10, 8, 12), "reversed, CIs apart"),
        (estimate(20, 9, 22), estimate(10, 8, 12), "reversed, CIs overlap"),
        (estimate(10, 10, 10), estimate(10, 10, 10), "reversed, CIs overlap"),  # equal is not "below"
        (estimate(10, None, None), estimate(20, None, None), "holds, CIs overlap"),  # no CI: never "apart"
        (None, estimate(20, 18, 22), NOT_MEASURED),
    ],
)
def test_pair_verdict(lower, higher, verdict):
    assert compare(lower, higher) == verdict


def test_parse_accepts_a_single_row_name_and_rejects_bad_entries():
    (direction,) = parse_directions([{"claim": "c", "system": "all", "lower": "a", "higher": ["b", "c"]}])
    assert direction == Direction("c", "all", ("a",), ("b", "c"))
    with pytest.raises(ConfigError, match=r"report.directions\[0\]: expected the keys claim, system"):
        parse_directions([{"claim": "c", "system": "all", "lower": "a"}])
    with pytest.raises(ConfigError, match=r"unknown system 'most'"):
        parse_directions([{"claim": "c", "system": "most", "lower": "a", "higher": "b"}])
    with pytest.raises(ConfigError, match=r"lower: expected a row name"):
        parse_directions([{"claim": "c", "system": "all", "lower": [], "higher": "b"}])


def test_claims_on_the_fixture_study(report, study_dir: Path):
    rows = {row.row: row for row in report.table.rows}
    fo, nofo, base = (rows[name].scores["all"].mean for name in ("fovit", "nofovit", "base"))
    assert len({fo, nofo, base}) == 3  # the fixture's rows differ, so every verdict below is decided
    up = Direction("up", "all", ("nofovit",), ("fovit",))
    down = Direction("down", "all", ("fovit",), ("nofovit",))
    missing = Direction("missing", "all", ("nofovit",), ("llava",))
    results = check_directions(report.table, [up, down, missing])
    assert results[0].pairs[0].holds == (nofo < fo)
    assert results[1].pairs[0].holds == (fo < nofo)
    assert results[0].verdict != results[1].verdict
    assert results[2].verdict == NOT_MEASURED and results[2].pairs[0].lower_value is not None


def test_directions_are_stated_in_words_in_every_output(study_dir: Path, tmp_path: Path):
    claim = Direction("FO above NoFO", "all", ("nofovit",), ("fovit",))
    files = build_report([study_dir], tmp_path / "report", base="base", directions=[claim])
    (result,) = files.directions
    words = f"FO above NoFO [All]: {result.verdict}"
    assert words in files.summary and words in files.summary_txt.read_text(encoding="utf-8")
    assert words in files.table_md.read_text(encoding="utf-8")
    page = files.report_html.read_text(encoding="utf-8")
    assert 'id="directions"' in page and "FO above NoFO [All]" in page
    pair = result.pairs[0]
    assert f"nofovit {pair.lower_value.mean:.1f}" in files.summary  # the row label, its mean, its CI
    plain = build_report([study_dir], tmp_path / "plain", base="base")
    assert (
        "Expected directions" not in plain.summary and 'id="directions"' not in plain.report_html.read_text()
    )


def test_cli_reads_the_directions_of_a_study_file(study_dir: Path, tmp_path: Path, capsys):
    from lvlm.report.__main__ import main

    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        "report:\n  directions:\n"
        '    - {claim: "FO above NoFO", system: natural, lower: nofovit, higher: fovit}\n',
        encoding="utf-8",
    )
    main([str(study_dir), "--out", str(tmp_path / "r"), "--directions", str(study_file)])
    assert "- FO above NoFO [Natural]: " in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("report: {base: base}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main([str(study_dir), "--out", str(tmp_path / "r2"), "--directions", str(bad)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"{bad}: holds no list of directions; fix:" in err
