"""Building the whole study report from results files: ``build_report`` and ``print_report``.

``build_report(paths, out_dir, base=..., order=..., title=...)`` reads every results.json under
``paths``, builds the table and writes ``table.md``, ``table.csv``, ``table.tex``, ``per_seed.csv``,
``figure.png``, ``heatmaps/<row>.png``, ``report.html`` and ``summary.txt`` into ``out_dir`` (default:
``<study dir>/report`` for one directory, else ``$LVLM_OUTPUT_DIR or outputs`` + ``/report/<timestamp>``),
and returns a ``ReportFiles``. ``print_report`` prints its summary (the plain-text table and every file
written). The study runner and ``make demo`` call these directly; ``python -m lvlm.report`` wraps them.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from lvlm.report.csv_files import render_per_seed_csv, render_table_csv
from lvlm.report.directions import Direction, DirectionResult, check_directions
from lvlm.report.figures import bar_chart, heatmap, png_bytes
from lvlm.report.html_page import render_html
from lvlm.report.inputs import load_runs
from lvlm.report.latex import render_latex
from lvlm.report.table import StudyTable, build_table
from lvlm.report.text import render_markdown, render_text
from lvlm.utils.runtime import PROJECT_ROOT


@dataclass(frozen=True)
class ReportFiles:
    """Everything ``build_report`` wrote, the table it was built from, and the summary text."""

    out_dir: Path
    table_md: Path
    table_csv: Path
    table_tex: Path
    per_seed_csv: Path
    figure_png: Path
    heatmaps: dict[str, Path]
    report_html: Path
    summary_txt: Path
    table: StudyTable
    summary: str
    directions: tuple[DirectionResult, ...] = ()  # the study's expected directions, checked

    def written(self) -> list[Path]:
        """Every file written, in a stable order."""
        fixed = [self.table_md, self.table_csv, self.table_tex, self.per_seed_csv, self.figure_png]
        return [*fixed, *self.heatmaps.values(), self.report_html, self.summary_txt]


def default_out_dir(paths: Sequence[str | Path], now: datetime | None = None) -> Path:
    """``<dir>/report`` for a single directory input, else ``<outputs>/report/<timestamp>``."""
    if len(paths) == 1 and Path(paths[0]).is_dir():
        return Path(paths[0]) / "report"
    stamp = (now or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    outputs = Path(os.environ.get("LVLM_OUTPUT_DIR") or PROJECT_ROOT / "outputs")
    return outputs / "report" / stamp


def file_stem(row: str) -> str:
    """A file-name-safe form of a row name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", row).strip("._") or "row"


def write_heatmaps(table: StudyTable, folder: Path) -> tuple[dict[str, bytes], dict[str, Path]]:
    """One heat-map PNG per row that has per-set data: the bytes (for the page) and the files."""
    images, files = {}, {}
    for row in table.rows:
        figure = heatmap(row)
        if figure is None:
            continue
        images[row.row] = png_bytes(figure, dpi=100)
        path = folder / f"{file_stem(row.row)}.png"
        suffix = 1
        while path in files.values():
            suffix += 1
            path = folder / f"{file_stem(row.row)}_{suffix}.png"
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(images[row.row])
        files[row.row] = path
    return images, files


def summary_text(
    table: StudyTable, written: Sequence[Path], directions: Sequence[DirectionResult] = ()
) -> str:
    """The plain-text table (and checked directions) followed by the path of every file written."""
    return render_text(table, directions) + "\nFiles written:\n" + "".join(f"  {path}\n" for path in written)


def build_report(
    paths: Sequence[str | Path],
    out_dir: str | Path | None = None,
    *,
    base: str | None = None,
    order: Sequence[str] | None = None,
    title: str | None = None,
    directions: Sequence[Direction] = (),
) -> ReportFiles:
    """Read the results under ``paths`` and write every report file into ``out_dir``.

    ``directions`` (a study's ``report.directions``) are checked against the table and stated in words
    under it in every output.
    """
    table = build_table(load_runs(paths), base=base, order=order, title=title)
    checked = tuple(check_directions(table, directions))
    out = Path(out_dir) if out_dir is not None else default_out_dir(paths)
    out.mkdir(parents=True, exist_ok=True)
    figure = png_bytes(bar_chart(table), dpi=130)
    images, heatmap_files = write_heatmaps(table, out / "heatmaps")
    files = {name: out / name for name in ("table.md", "table.csv", "table.tex", "per_seed.csv")}
    files["table.md"].write_text(render_markdown(table, checked), encoding="utf-8")
    files["table.csv"].write_text(render_table_csv(table), encoding="utf-8")
    files["table.tex"].write_text(render_latex(table), encoding="utf-8")
    files["per_seed.csv"].write_text(render_per_seed_csv(table), encoding="utf-8")
    (out / "figure.png").write_bytes(figure)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = render_html(table, figure, images, out, generated, checked)
    (out / "report.html").write_text(page, encoding="utf-8")
    report = ReportFiles(
        out, files["table.md"], files["table.csv"], files["table.tex"], files["per_seed.csv"],
        out / "figure.png", heatmap_files, out / "report.html", out / "summary.txt", table, "", checked,
    )  # fmt: skip
    text = summary_text(table, report.written(), checked)
    report.summary_txt.write_text(text, encoding="utf-8")
    return replace(report, summary=text)


def print_report(files: ReportFiles, stream: TextIO | None = None) -> None:
    """Print the plain-text table and the written files (what summary.txt holds)."""
    print(files.summary, end="", file=stream or sys.stdout)
