"""Raw records and their conversion into ``Example`` objects, shared by every task source.

Readers (local files, the dataset hub, the built-in smoke sets) yield ``RawRecord`` (column → value, plus
where it came from) or ``RecordProblem`` (a malformed record: reason key, problem, fix). ``to_examples``
applies a task's column and label mapping: classes listed in ``drop`` are filtered by definition and
counted in ``dropped``; problems either raise one ``DataError`` naming the source and record
(``on_error="raise"``) or are counted per reason in ``skipped`` (``on_error="skip"``). Blank lines are not
records: they are always counted under ``skipped["blank line"]`` and never raise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lvlm.errors import DataError
from lvlm.eval.tasks.definitions import LabelMapping
from lvlm.eval.types import Example

BLANK_LINE = "blank line"


@dataclass(frozen=True)
class RawRecord:
    """One record of a source: ``index`` is its 0-based position (stable uid), ``where`` e.g. 'line 7'."""

    index: int
    where: str
    values: Mapping[str, object]


@dataclass(frozen=True)
class RecordProblem:
    """A record that cannot be read; ``reason`` is the key it is counted under when skipped."""

    where: str
    reason: str
    problem: str
    fix: str


@dataclass
class Conversion:
    """The outcome of converting one source's records."""

    examples: list[Example]
    skipped: Counter[str]
    dropped: Counter[str]
    encoding: str | None = None  # how a local file was decoded (set by the local source)


@dataclass(frozen=True)
class MappingRules:
    """How one source maps onto a task: field → column, the label mapping, and where to fix it."""

    task: str
    columns: Mapping[str, str]
    label: LabelMapping
    config_path: str  # e.g. eval.task_defs.sst2.local, named in fix hints
    uid_prefix: str  # e.g. "sst2" or "sst2:smoke"


def _convert_one(record: RawRecord, rules: MappingRules) -> Example | RecordProblem | str:
    """An ``Example``, a ``RecordProblem``, or the raw label string of a dropped class."""
    label_value = record.values.get(rules.label.column)
    if label_value is None:
        return _missing(record, rules.label.column, rules)
    raw_label = str(label_value).strip()
    if raw_label in rules.label.drop:
        return raw_label
    if raw_label not in rules.label.labels:
        known = sorted(set(rules.label.labels) | set(rules.label.drop))
        return RecordProblem(
            record.where,
            "unknown label",
            f"unknown label {raw_label!r} in column '{rules.label.column}' (known: {', '.join(known)})",
            f"add it to {rules.config_path}.labels or .drop, or fix the record",
        )
    inputs: dict[str, str] = {}
    for field, column in rules.columns.items():
        value = record.values.get(column)
        if value is None:
            return _missing(record, column, rules)
        text = str(value).strip()
        if not text:
            return RecordProblem(record.where, "empty text", f"column '{column}' is empty", "fix the record")
        inputs[field] = text
    uid = f"{rules.uid_prefix}:{record.index}"
    return Example(task=rules.task, uid=uid, inputs=inputs, label=rules.label.labels[raw_label])


def _missing(record: RawRecord, column: str, rules: MappingRules) -> RecordProblem:
    present = ", ".join(str(key) for key in record.values) or "none"
    return RecordProblem(
        record.where,
        "missing column",
        f"missing column '{column}' (present: {present})",
        f"fix the record or map the field to an existing column in {rules.config_path}.columns",
    )


def to_examples(
    records: Iterable[RawRecord | RecordProblem], rules: MappingRules, *, source: str, on_error: str
) -> Conversion:
    """Convert records of one source into examples, raising or counting malformed ones."""
    result = Conversion(examples=[], skipped=Counter(), dropped=Counter())
    for record in records:
        outcome = record if isinstance(record, RecordProblem) else _convert_one(record, rules)
        if isinstance(outcome, Example):
            result.examples.append(outcome)
        elif isinstance(outcome, str):
            result.dropped[outcome] += 1
        elif outcome.reason == BLANK_LINE:
            result.skipped[BLANK_LINE] += 1
        elif on_error == "skip":
            result.skipped[outcome.reason] += 1
        else:
            fix = f"{outcome.fix} (or set eval.on_error=skip to skip and count such records)"
            raise DataError(source, outcome.problem, fix, record=outcome.where)
    return result
