"""Plain-text and Markdown renderings of the study table (``summary.txt``/stdout and ``table.md``).

Both show the same cells as every other output (see ``lvlm.report.cells``), a warning line when any
input was scored on smoke data, and the footnote with the CI rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from lvlm.report.cells import footnote, headers, row_cells
from lvlm.report.directions import DirectionResult, direction_lines
from lvlm.report.table import StudyTable

SMOKE_WARNING = "WARNING: some results were computed on smoke data, not the real evaluation splits."


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of cells as left-aligned columns (first column) and right-aligned numbers, with a rule."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: Sequence[str]) -> str:
        parts = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return [line(rows[0]), rule, *(line(row) for row in rows[1:])]


def render_text(table: StudyTable, directions: Sequence[DirectionResult] = ()) -> str:
    """The table as aligned plain text, with title, smoke warning and footnote."""
    lines = [table.title, ""]
    if table.smoke:
        lines += [SMOKE_WARNING, ""]
    lines += aligned([headers(table), *(row_cells(row, table) for row in table.rows)])
    lines += ["", *footnote(table)]
    if directions:
        lines += ["", *direction_lines(directions, table)]
    return "\n".join(lines) + "\n"


def markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(table: StudyTable, directions: Sequence[DirectionResult] = ()) -> str:
    """The table as GitHub Markdown, with title, smoke warning and footnote."""
    lines = [f"# {markdown_cell(table.title)}", ""]
    if table.smoke:
        lines += [f"> **{SMOKE_WARNING}**", ""]
    titles = headers(table)
    lines.append("| " + " | ".join(markdown_cell(title) for title in titles) + " |")
    lines.append("|" + "|".join([":---", *(["---:"] * (len(titles) - 1))]) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(markdown_cell(cell) for cell in row_cells(row, table)) + " |")
    lines += ["", *(f"{note}  " for note in footnote(table))]
    if directions:
        heading, *items = direction_lines(directions, table, claim="- ", pair="  - ")
        lines += ["", f"**{heading}**", "", *items]
    return "\n".join(lines).rstrip() + "\n"
