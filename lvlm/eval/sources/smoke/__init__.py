"""Built-in smoke sets: 24 hand-written, class-balanced examples per task, for offline plumbing only.

Each ``<task>.jsonl`` holds one object per line with the task's input fields and ``label`` (0 = label_0,
the task's first condition; 1 = label_1). The sentences were written for this project (none is taken from
a dataset). They are used only when neither ``data_dir`` nor the hub is reachable; results on them say
nothing about the paper's numbers, and ``load_examples`` logs a loud warning whenever they are used.
"""

from __future__ import annotations

from pathlib import Path

from lvlm.eval.tasks.definitions import LabelMapping, LocalSource, TaskSpec

SMOKE_DIR = Path(__file__).resolve().parent


def smoke_file(task: str) -> Path:
    """Path of the task's smoke set (may not exist for a user-defined task)."""
    return SMOKE_DIR / f"{task}.jsonl"


def smoke_source(spec: TaskSpec) -> LocalSource:
    """A ``LocalSource`` describing the smoke file of ``spec`` (fields stored under their own names)."""
    return LocalSource(
        file=smoke_file(spec.name).name,
        format="jsonl",
        encoding="utf-8",
        header="false",
        column_names=(),
        separator="",
        columns={field: field for field in spec.field_names},
        label=LabelMapping(column="label", labels={"0": 0, "1": 1}, drop=()),
    )
