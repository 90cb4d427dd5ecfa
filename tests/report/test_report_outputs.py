"""The report's files: table.md/.csv/.tex, per_seed.csv, figure.png, heat maps, report.html, summary.txt."""

from __future__ import annotations

import base64
import csv
import io
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from lvlm.report import ReportFiles, build_report, print_report
from lvlm.report.inputs import SUMMARY_KEYS
from lvlm.report.latex import latex_escape
from tests.helpers.paths import REPO_ROOT
from tests.report.study_fixture import write_run


def _rows(path: Path) -> list[dict[str, str]]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def test_every_file_is_written(report: ReportFiles, study_dir: Path) -> None:
    assert report.out_dir == study_dir / "report"
    names = {path.relative_to(report.out_dir).as_posix() for path in report.written()}
    assert names == {
        "table.md", "table.csv", "table.tex", "per_seed.csv", "figure.png", "report.html", "summary.txt",
        "heatmaps/base.png", "heatmaps/fovit.png", "heatmaps/nofovit.png",
    }  # fmt: skip
    assert all(path.is_file() and path.stat().st_size > 0 for path in report.written())


def test_table_csv_holds_the_numbers(report: ReportFiles) -> None:
    rows = {row["row"]: row for row in _rows(report.table_csv)}
    assert list(rows) == ["base", "fovit", "nofovit"]
    for table_row in report.table.rows:
        line = rows[table_row.row]
        assert line["label"] == table_row.label and int(line["n_seeds"]) == len(table_row.runs)
        for key in SUMMARY_KEYS:
            estimate = table_row.scores[key]
            assert abs(float(line[f"{key}_mean"]) - estimate.mean) < 1e-4
            assert abs(float(line[f"{key}_ci_low"]) - estimate.low) < 1e-4
            assert abs(float(line[f"{key}_ci_high"]) - estimate.high) < 1e-4
            if not table_row.is_base:
                assert abs(float(line[f"delta_{key}"]) - table_row.delta[key]) < 1e-4
        assert abs(float(line["invalid_pct_mean"]) - table_row.invalid.mean) < 1e-4
    assert rows["fovit"]["ci_method"] == "t-interval" and rows["base"]["ci_method"] == "bootstrap"
    assert rows["fovit"]["seeds"] == "1;2" and rows["base"]["is_base"] == "1"
    assert rows["base"]["delta_all"] == "" and float(rows["fovit"]["all_std"]) > 0
    assert "CI rule" in report.table_csv.read_text(encoding="utf-8").splitlines()[-2]


def test_per_seed_csv_has_one_line_per_run_with_bootstrap_cis(report: ReportFiles) -> None:
    lines = _rows(report.per_seed_csv)
    assert [(line["row"], line["seed"]) for line in lines] == [
        ("base", "0"), ("fovit", "1"), ("fovit", "2"), ("nofovit", "3"),
    ]  # fmt: skip
    for line, run in zip(lines, report.table.runs, strict=True):
        score = run.summary["all"]
        assert abs(float(line["all_f1"]) - 100 * score.f1) < 1e-4
        assert abs(float(line["all_ci_low"]) - 100 * score.ci_low) < 1e-4
        assert abs(float(line["all_ci_high"]) - 100 * score.ci_high) < 1e-4
        assert line["results_json"] == str(run.path)


def _cell(value: float) -> str:
    return f"{value:.1f}"


def test_markdown_text_and_tex_show_the_cells(report: ReportFiles) -> None:
    markdown = report.table_md.read_text(encoding="utf-8")
    tex = report.table_tex.read_text(encoding="utf-8")
    summary = report.summary_txt.read_text(encoding="utf-8")
    fovit = report.table.rows[1].scores["all"]
    base = report.table.rows[0].scores["natural"]
    two_seeds = f"{_cell(fovit.mean)} ± {_cell(fovit.std)} [{_cell(fovit.low)}, {_cell(fovit.high)}]"
    one_seed = f"{_cell(base.mean)} [{_cell(base.low)}, {_cell(base.high)}]"
    for text in (markdown, summary):
        assert two_seeds in text and one_seed in text
        assert "CI rule" in text and "t-interval" in text
        assert f"{report.table.rows[1].delta['all']:+.1f}" in text
    assert "| LVLM FOVIT | 2 |" in markdown
    assert rf"${_cell(fovit.mean)} \pm {_cell(fovit.std)}$ {{\scriptsize [{_cell(fovit.low)}, " in tex
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"CI rule: 95 \% CIs" in tex and r"$\geq$ 2 seeds" in tex and "±" not in tex
    assert tex.count(r"\\") == 1 + len(report.table.rows)  # header + one line per row
    for path in report.written():
        assert str(path) in summary


def test_latex_escape() -> None:
    assert latex_escape("a_b & 50% #1 {x} $y ~ ^ \\") == (
        r"a\_b \& 50\% \#1 \{x\} \$y \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )
    assert latex_escape("Δ ± ×") == r"$\Delta$ $\pm$ $\times$"


def test_figure_is_a_png_of_plausible_size(report: ReportFiles) -> None:
    with Image.open(report.figure_png) as image:
        assert image.format == "PNG" and 1000 <= image.width <= 2500 and 500 <= image.height <= 1500
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # bars, text, error bars: not a blank image
    for path in report.heatmaps.values():
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 400 and image.height >= 200


def test_html_is_self_contained_with_table_and_images(report: ReportFiles) -> None:
    page = report.report_html.read_text(encoding="utf-8")
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", page) and "http://" not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1 + len(report.table.rows)  # the figure and one heat map per row
    assert base64.b64decode(images[0]) == report.figure_png.read_bytes()
    assert page.count("<tr") == 1 + len(report.table.rows) + 1 + len(report.table.runs)
    fovit = report.table.rows[1].scores["all"]
    assert f"{_cell(fovit.mean)} ± {_cell(fovit.std)}" in page and "LVLM FOVIT" in page
    assert "CI rule" in page and 'id="smoke-warning"' not in page
    assert 'href="../base/config.yaml"' in page and 'href="../fovit/.hydra/config.yaml"' in page
    assert 'href="../fovit/seed2/results.json"' in page and 'href="../nofovit/samples.jsonl"' in page


def test_smoke_data_is_flagged_everywhere(tmp_path: Path) -> None:
    write_run(tmp_path / "study" / "base", "base", 0)
    write_run(tmp_path / "study" / "tiny", "nofovit", 0, smoke=True)
    files = build_report([tmp_path / "study"], tmp_path / "out", title="Smoke & <test>")
    page = files.report_html.read_text(encoding="utf-8")
    assert 'id="smoke-warning"' in page and "Smoke &amp; &lt;test&gt;" in page
    assert "WARNING" in files.summary and "smoke data" in files.table_md.read_text(encoding="utf-8")
    assert r"Smoke \& \textless{}test\textgreater{}" in files.table_tex.read_text(encoding="utf-8")
    assert files.out_dir == tmp_path / "out"


def test_print_report_prints_the_summary(report: ReportFiles) -> None:
    stream = io.StringIO()
    print_report(report, stream)
    assert stream.getvalue() == report.summary_txt.read_text(encoding="utf-8")


def test_cli_writes_the_report(study_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    files = [str(study_dir / "nofovit" / "results.json"), str(study_dir / "base" / "results.json")]
    done = subprocess.run(
        [sys.executable, "-m", "lvlm.report", *files, "--out", str(out), "--title", "CLI study"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("CLI study") and str(out / "report.html") in done.stdout
    lines = _rows(out / "table.csv")
    assert [line["row"] for line in lines] == ["nofovit", "base"] and lines[0]["delta_all"] != ""
    assert (out / "summary.txt").read_text(encoding="utf-8") == done.stdout
