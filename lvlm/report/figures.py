"""The report's pictures, drawn with matplotlib's Agg canvas (no display, no pyplot global state).

``bar_chart`` is the paper-style grouped bar chart: one group per label system plus All, one bar per
model, error bars = the table's CIs, the value on each bar, a legend, y axis "F1 × 100", and the CI rule
as a footnote. ``heatmap`` shows one model's F1 × 100 per task × verbalizer set (the mean over its seeds),
sets grouped by label system. ``png_bytes`` renders a figure to PNG bytes.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from lvlm.report.cells import KEY_NAMES, ci_rule, footnote
from lvlm.report.inputs import LABEL_SYSTEMS, SUMMARY_KEYS, RunResult
from lvlm.report.table import StudyTable, TableRow

PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")
HEATMAP_CMAP = "viridis"


def new_figure(width: float, height: float) -> Figure:
    """A figure attached to an Agg canvas."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure, dpi: int = 120) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def _bar_series(row: TableRow) -> tuple[list[float], list[float], list[float]]:
    """Heights and lower/upper error lengths of one model's bars (NaN/0 where a value is missing)."""
    heights, below, above = [], [], []
    for key in SUMMARY_KEYS:
        estimate = row.scores.get(key)
        heights.append(math.nan if estimate is None else estimate.mean)
        has_ci = estimate is not None and estimate.low is not None and estimate.high is not None
        below.append(max(0.0, estimate.mean - estimate.low) if has_ci else 0.0)  # type: ignore[operator,union-attr]
        above.append(max(0.0, estimate.high - estimate.mean) if has_ci else 0.0)  # type: ignore[operator,union-attr]
    return heights, below, above


def _figure_note(table: StudyTable, width: int = 150) -> str:
    notes = [ci_rule(table, "error bars"), *(note for note in footnote(table) if note.startswith("WARNING"))]
    return "\n".join(textwrap.fill(note, width) for note in notes)


def bar_chart(table: StudyTable) -> Figure:
    """Grouped bars of F1 × 100 per label system and All, one colour per model."""
    n_rows = max(1, len(table.rows))
    figure = new_figure(10.0, 5.4)
    axes = figure.add_subplot()
    width = 0.8 / n_rows
    tops = [0.0]
    for index, row in enumerate(table.rows):
        heights, below, above = _bar_series(row)
        positions = [group + (index - (n_rows - 1) / 2) * width for group in range(len(SUMMARY_KEYS))]
        colour = PALETTE[index % len(PALETTE)]
        axes.bar(positions, heights, width * 0.92, label=_legend_label(row), color=colour,
                 yerr=[below, above], capsize=3, error_kw={"elinewidth": 1, "ecolor": "#333333"})  # fmt: skip
        for position, height, error in zip(positions, heights, above, strict=True):
            if not math.isnan(height):
                axes.text(position, height + error + 1, f"{height:.1f}", ha="center", va="bottom",
                          fontsize=7 if n_rows <= 4 else 6, rotation=0 if n_rows <= 4 else 90,
                          bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none",
                                "alpha": 0.8})  # fmt: skip
                tops.append(height + error)
    axes.set_xticks(range(len(SUMMARY_KEYS)), [KEY_NAMES[key] for key in SUMMARY_KEYS])
    axes.set_ylabel("F1 × 100")
    axes.set_ylim(0, min(115.0, max(10.0, max(tops) * 1.12 + 6)))
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="Model")
    axes.set_title(table.title, fontsize=11)
    figure.get_layout_engine().set(rect=(0, 0.1, 1, 0.9))
    figure.text(0.01, 0.01, _figure_note(table), fontsize=7, va="bottom", ha="left",
                color="#B00020" if table.smoke else "#444444")  # fmt: skip
    return figure


def _legend_label(row: TableRow) -> str:
    seeds = len(row.runs)
    return f"{row.label} ({seeds} seed{'s' if seeds != 1 else ''})"


def task_order(runs: Sequence[RunResult]) -> list[str]:
    """Tasks in the order of the runs' ``config.eval.tasks`` where given, then the rest sorted."""
    present = {task for run in runs for task, _ in run.per_set}
    configured = _config_list(runs[0].config, ("eval", "tasks")) if runs else []
    return [t for t in configured if t in present] + sorted(present - set(configured))


def set_order(runs: Sequence[RunResult]) -> list[str]:
    """Set names grouped by label system (natural, neutral, unnatural, then any other), sorted within."""
    systems: dict[str, str] = {}
    for run in runs:
        systems.update(run.set_systems)
    rank = {system: index for index, system in enumerate(LABEL_SYSTEMS)}
    return sorted(systems, key=lambda name: (rank.get(systems[name], len(rank)), name))


def _config_mapping(config: Mapping[str, Any], keys: Sequence[str]) -> Mapping[str, Any]:
    node: Any = config
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _config_list(config: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    node: Any = _config_mapping(config, keys[:-1]).get(keys[-1])
    return [str(item) for item in node] if isinstance(node, list) else []


def cell_means(runs: Sequence[RunResult], tasks: Sequence[str], sets: Sequence[str]) -> list[list[float]]:
    """F1 × 100 per (task, set), averaged over the runs that have the cell; NaN where none has it."""
    matrix = []
    for task in tasks:
        line = []
        for name in sets:
            values = [100.0 * run.per_set[(task, name)] for run in runs if (task, name) in run.per_set]
            line.append(sum(values) / len(values) if values else math.nan)
        matrix.append(line)
    return matrix


def _system_blocks(sets: Sequence[str], runs: Sequence[RunResult]) -> list[tuple[str, int, int]]:
    """``(system, first column, last column)`` of each run of consecutive sets of one label system."""
    systems = {name: owner for run in runs for name, owner in run.set_systems.items()}
    blocks: list[tuple[str, int, int]] = []
    for column, name in enumerate(sets):
        system = systems.get(name, "")
        if blocks and blocks[-1][0] == system:
            blocks[-1] = (system, blocks[-1][1], column)
        else:
            blocks.append((system, column, column))
    return blocks


def heatmap(row: TableRow) -> Figure | None:
    """Task × verbalizer-set heat map of one model (``None`` when its results have no per-set data)."""
    tasks, sets = task_order(row.runs), set_order(row.runs)
    if not tasks or not sets:
        return None
    matrix = cell_means(row.runs, tasks, sets)
    figure = new_figure(max(6.0, 0.75 * len(sets) + 2.5), max(3.0, 0.42 * len(tasks) + 2.4))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap=HEATMAP_CMAP, vmin=0, vmax=100, aspect="auto")
    colormap = image.get_cmap()
    for y, line in enumerate(matrix):
        for x, value in enumerate(line):
            if not math.isnan(value):
                red, green, blue, _ = to_rgba(colormap(value / 100))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                axes.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=8,
                          color="white" if dark else "black")  # fmt: skip
    axes.set_xticks(range(len(sets)), sets, rotation=40, ha="right", fontsize=8)
    axes.set_yticks(range(len(tasks)), tasks, fontsize=9)
    blocks = _system_blocks(sets, row.runs)
    for _, first, _ in blocks[1:]:
        axes.axvline(first - 0.5, color="white", linewidth=3)
    top = axes.secondary_xaxis("top")
    names = [KEY_NAMES.get(system, system or "other") for system, _, _ in blocks]
    top.set_xticks([(first + last) / 2 for _, first, last in blocks], names, fontweight="bold")
    top.tick_params(length=0)
    seeds = len(row.runs)
    axes.set_title(f"{row.label}: F1 × 100 per task × verbalizer set"
                   + (f" (mean over {seeds} seeds)" if seeds > 1 else ""), fontsize=10)  # fmt: skip
    figure.colorbar(image, ax=axes, label="F1 × 100", shrink=0.85)
    return figure
