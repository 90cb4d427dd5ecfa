"""Fingerprints, ``step.json`` records and the plan of a run (which steps are done, stale or to do).

A step's fingerprint is the sha256 of its resolved inputs: its kind and exact overrides (paths inside the
study folder written as ``<study>/...``), the fingerprints of the steps it depends on, the study-file
settings it reads and the lvlm version. ``step.json`` (in the step's folder) records the fingerprint, the
``run_id`` of each dependency it consumed, its status, outputs, command, log and times; it is written
atomically, and ``status: done`` only after the step's process exited 0 and its outputs exist.

A step is *done* when its record says done with the current fingerprint, the same dependency run ids,
its outputs still exist and no dependency will run again; *stale* when it finished with other inputs (or
is forced); *to do* otherwise (never run, interrupted or failed).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lvlm.study.graph import CHECKPOINT, Step, dependents
from lvlm.study.spec import StudyError

STEP_FILE = "step.json"
PREVIOUS_DIR = "_previous"
DONE, STALE, TODO, SKIPPED = "done", "stale", "to do", "not selected"


def lvlm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lvlm")
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        return "unknown"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def portable(text: str, out: Path) -> str:
    """``text`` with the study folder written as ``<study>`` (fingerprints do not depend on it)."""
    return text.replace(str(out), "<study>")


def step_inputs(step: Step, out: Path, dep_fingerprints: Mapping[str, str]) -> dict[str, Any]:
    return {
        "kind": step.kind,
        "overrides": [portable(o, out) for o in step.overrides],
        "deps": {dep: dep_fingerprints[dep] for dep in step.deps},
        "settings": step.settings,
        "lvlm_version": lvlm_version(),
    }


def fingerprint(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def fingerprints(steps: Mapping[str, Step], out: Path) -> dict[str, str]:
    """Every step's fingerprint (steps are in dependency order)."""
    found: dict[str, str] = {}
    for name, step in steps.items():
        found[name] = fingerprint(step_inputs(step, out, found))
    return found


def expected_outputs(step: Step) -> list[str]:
    """Files (relative to the step folder) that must exist for the step to count as done."""
    return {
        "build": ["data"],
        "train": [CHECKPOINT],
        "export": ["llm/config.json", "projector.safetensors", "README.md"],
        "eval": ["results.json"],
        "report": [],
    }[step.kind]


def outputs_exist(step: Step, directory: Path) -> bool:
    return all((directory / rel).exists() for rel in expected_outputs(step))


def read_record(directory: Path) -> dict[str, Any] | None:
    path = directory / STEP_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(directory: Path, record: Mapping[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{STEP_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    tmp.replace(directory / STEP_FILE)


def move_aside(directory: Path, out: Path) -> Path | None:
    """Move a step's earlier (partial or stale) folder to ``<out>/_previous/<step>@<time>``."""
    if not directory.exists():
        return None
    rel = directory.relative_to(out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = out / PREVIOUS_DIR / f"{rel}@{stamp}"
    suffix = 1
    while target.exists():
        target = out / PREVIOUS_DIR / f"{rel}@{stamp}.{suffix}"
        suffix += 1
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(directory), str(target))
    return target


@dataclass
class PlanEntry:
    step: Step
    state: str
    reason: str
    selected: bool
    fingerprint: str

    @property
    def runs(self) -> bool:
        return self.selected and self.state != DONE


def matches(step: Step, pattern: str) -> bool:
    """A step is named by its name, a prefix (``train/fovit``, ``eval``), a glob, or its row name."""
    pattern = pattern.strip().rstrip("/")
    return (
        step.name == pattern
        or step.name.startswith(pattern + "/")
        or fnmatch.fnmatchcase(step.name, pattern)
        or (step.row is not None and step.row == pattern)
    )


def select(steps: Mapping[str, Step], patterns: Sequence[str], option: str, source: str) -> set[str]:
    chosen: set[str] = set()
    for pattern in patterns:
        hit = {name for name, step in steps.items() if matches(step, pattern)}
        if not hit:
            raise StudyError(source, f"{option} '{pattern}' names no step",
                             f"use a step name, prefix, glob or row: {', '.join(steps)}")  # fmt: skip
        chosen |= hit
    return chosen


def make_plan(
    steps: Mapping[str, Step],
    out: Path,
    *,
    force: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> dict[str, PlanEntry]:
    """The state of every step, and which of them this run executes."""
    prints = fingerprints(steps, out)
    forced = set(force)
    will_run: set[str] = set()
    plan: dict[str, PlanEntry] = {}
    for name, step in steps.items():
        record = read_record(step.directory(out))
        state, reason = _state(step, record, prints[name], out, steps, will_run, name in forced)
        plan[name] = PlanEntry(step, state, reason, True, prints[name])
        if state != DONE:
            will_run.add(name)
    if only is not None:
        wanted = set(only)
        for name in list(wanted):  # what a selected step needs and is not done runs too
            stack = list(steps[name].deps)
            while stack:
                dep = stack.pop()
                if plan[dep].state != DONE and dep not in wanted:
                    wanted.add(dep)
                    stack.extend(steps[dep].deps)
        for name, entry in plan.items():
            entry.selected = name in wanted
            if not entry.selected and entry.state != DONE:
                entry.reason = f"{entry.reason}; not selected"
    return plan


def _state(step: Step, record: Mapping[str, Any] | None, current: str, out: Path,
           steps: Mapping[str, Step], will_run: set[str], forced: bool) -> tuple[str, str]:  # fmt: skip
    if record is None:
        return TODO, "never run"
    status = record.get("status")
    if status != DONE:
        return TODO, f"last run {status or 'unknown'}"
    if forced:
        return STALE, "forced"
    if record.get("fingerprint") != current:
        return STALE, "inputs changed"
    rerun = [dep for dep in step.deps if dep in will_run]
    if rerun:
        return STALE, f"{rerun[0]} runs again"
    consumed = record.get("deps_run") or {}
    for dep in step.deps:
        dep_record = read_record(steps[dep].directory(out)) or {}
        if consumed.get(dep) != dep_record.get("run_id"):
            return STALE, f"{dep} was rerun since"
    if not outputs_exist(step, step.directory(out)):
        return TODO, "outputs missing"
    return DONE, "fingerprint unchanged"


def descendants_of(steps: Mapping[str, Step], names: Iterable[str]) -> set[str]:
    closure = dependents(dict(steps))
    found: set[str] = set()
    for name in names:
        found |= closure[name]
    return found
