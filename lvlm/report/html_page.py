"""``report.html``: one self-contained page that works offline.

It holds the study table, the bar chart, one task × verbalizer-set heat map per model (PNGs embedded as
base64 ``data:`` URIs), the footnote with the CI rule, and per (model, seed) relative links to the
resolved config, results.json and samples.jsonl. CSS is inline and nothing is fetched from the network;
a red banner is shown when any input was scored on smoke data. Every text from the inputs is
HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from lvlm.report.cells import footnote, headers, row_cells
from lvlm.report.directions import DIRECTIONS_HEADING, DirectionResult, claim_text, pair_text
from lvlm.report.inputs import RunResult
from lvlm.report.table import StudyTable

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { padding: 0.3rem 0.6rem; border-bottom: 1px solid #d0d7de; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #1f2328; }
tr.base td { font-weight: 600; background: #f6f8fa; }
.note { font-size: 0.85rem; color: #57606a; max-width: 60rem; }
.banner { background: #b00020; color: white; padding: 0.8rem 1rem; font-weight: 600; border-radius: 4px; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
.tags { color: #57606a; font-size: 0.85rem; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def relative_href(target: Path, out_dir: Path) -> str:
    """A URL-quoted path to ``target`` relative to the page's folder."""
    return quote(Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix())


def note_html(text: str) -> str:
    """Escaped text whose "95 %" never breaks between the number and the sign."""
    return html.escape(text).replace(" %", "&nbsp;%")


def table_html(table: StudyTable) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for title in headers(table))
    body = []
    for row in table.rows:
        cells = "".join(f"<td>{html.escape(cell)}</td>" for cell in row_cells(row, table))
        attribute = ' class="base"' if row.is_base else ""
        body.append(f"<tr{attribute}>{cells}</tr>")
    return f'<table id="study-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _link(path: Path | None, out_dir: Path, text: str) -> str:
    if path is None:
        return "–"
    return f'<a href="{html.escape(relative_href(path, out_dir))}">{html.escape(text)}</a>'


def links_html(runs: Sequence[RunResult], out_dir: Path) -> str:
    """One line per (model, seed): links to its config, results.json and samples.jsonl."""
    lines = []
    for run in runs:
        tags = ", ".join(run.study.condition_tags)
        cells = [
            html.escape(run.study.label),
            str(run.study.seed),
            _link(run.config_path, out_dir, "config"),
            _link(run.path, out_dir, "results.json"),
            _link(run.samples_path, out_dir, "samples.jsonl"),
            "yes" if run.smoke_data else "no",
            f'<span class="tags">{html.escape(tags)}</span>',
        ]
        lines.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "".join(
        f"<th>{t}</th>" for t in ("Model", "Seed", "Config", "Results", "Samples", "Smoke data", "Tags")
    )
    return f'<table id="run-links"><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table>'


def heatmaps_html(table: StudyTable, heatmaps: Mapping[str, bytes]) -> str:
    parts = []
    for row in table.rows:
        parts.append(f"<h3>{html.escape(row.label)}</h3>")
        png = heatmaps.get(row.row)
        if png is None:
            parts.append('<p class="note">No per-set results in this row\'s results.json.</p>')
        else:
            alt = f"F1 × 100 per task and verbalizer set: {row.label}"
            parts.append(f'<img class="heatmap" alt="{html.escape(alt)}" src="{data_uri(png)}">')
    return "\n".join(parts)


def directions_html(table: StudyTable, directions: Sequence[DirectionResult]) -> str:
    """The study's expected directions, checked: one list item per claim with its pairs underneath."""
    if not directions:
        return ""
    items = "".join(
        f"<li>{html.escape(claim_text(result))}<ul>"
        + "".join(f"<li>{html.escape(pair_text(pair, table))}</li>" for pair in result.pairs)
        + "</ul></li>"
        for result in directions
    )
    note = f'<p class="note">{html.escape(DIRECTIONS_HEADING)}</p>'
    return f'<h2>Expected directions</h2>\n{note}\n<ul id="directions">{items}</ul>'


def render_html(
    table: StudyTable,
    figure_png: bytes,
    heatmaps: Mapping[str, bytes],
    out_dir: Path,
    generated: str,
    directions: Sequence[DirectionResult] = (),
) -> str:
    """The whole page as a string; links are relative to ``out_dir``, where the page is written."""
    notes = "".join(f'<p class="note">{note_html(note)}</p>' for note in footnote(table))
    banner = (
        '<p class="banner" id="smoke-warning">Warning: some results were computed on smoke data '
        "(built-in tiny examples), not the real evaluation splits. Do not report these numbers.</p>"
        if table.smoke
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(table.title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(table.title)}</h1>
{banner}
<p class="note">{len(table.rows)} models, {len(table.runs)} result files; generated {html.escape(generated)}
by <code>python -m lvlm.report</code>.</p>
<h2>Table</h2>
{table_html(table)}
{notes}
{directions_html(table, directions)}
<h2>Figure</h2>
<img id="figure" alt="Grouped bar chart of F1 × 100 per label system and model" src="{data_uri(figure_png)}">
<h2>Per task and verbalizer set</h2>
{heatmaps_html(table, heatmaps)}
<h2>Runs</h2>
{links_html(table.runs, out_dir)}
</body>
</html>
"""
