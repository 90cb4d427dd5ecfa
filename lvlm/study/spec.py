"""Loading a study file and checking its structure, row references and the row graph.

``load_study(arg)`` accepts a study folder (``experiments/paper_a``), its ``study.yaml`` or a bare study
name (``paper_a`` → ``experiments/paper_a/study.yaml``) and returns a ``Study``. Every problem is a
``StudyError`` whose message is one line: ``<study file>: row '<row>': <problem>; fix: <fix>`` (without
the row part for study-level problems). Overrides are checked against ``conf/`` by ``lvlm.study.configs``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lvlm.errors import ConfigError, LvlmError
from lvlm.report.directions import Direction, parse_directions
from lvlm.utils.runtime import PROJECT_ROOT

EXPERIMENTS_DIR = PROJECT_ROOT / "experiments"
STUDY_FILE = "study.yaml"
LAUNCHERS = ("basic", "joblib", "submitit_slurm")
STUDY_KEYS = (
    "name",
    "description",
    "seeds",
    "launcher",
    "build",
    "train_defaults",
    "eval_defaults",
    "rows",
    "report",
)
ROW_KEYS = ("label", "tags", "train", "llm_from", "init_from", "needs_build", "evaluate")
BUILD_KEYS = ("overrides",)
REPORT_KEYS = ("base", "title", "wandb", "directions")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class StudyError(LvlmError):
    """A study file is invalid: one line naming the file, the row, the problem and the fix."""

    def __init__(self, source: str | Path, problem: str, fix: str, row: str | None = None) -> None:
        self.source, self.problem, self.fix, self.row = str(source), problem, fix, row
        where = f"{self.source}: row '{row}'" if row is not None else self.source
        super().__init__(f"{where}: {problem}; fix: {fix}")


@dataclass(frozen=True)
class Row:
    """One row of a study: how it is trained (``train is None``: evaluation-only) and evaluated."""

    name: str
    label: str
    tags: tuple[str, ...] = ()
    train: tuple[str, ...] | None = None
    llm_from: str | None = None
    init_from: str | None = None
    needs_build: bool = False
    evaluate: tuple[str, ...] | None = ()  # None: not evaluated

    @property
    def trained(self) -> bool:
        return self.train is not None

    @property
    def evaluated(self) -> bool:
        return self.evaluate is not None

    def settings(self) -> dict[str, Any]:
        """The study-file settings of this row, as plain data."""
        return {
            "train": list(self.train) if self.train is not None else None,
            "llm_from": self.llm_from,
            "init_from": self.init_from,
            "needs_build": self.needs_build,
            "evaluate": list(self.evaluate) if self.evaluate is not None else False,
        }


@dataclass(frozen=True)
class Study:
    """A validated study file."""

    path: Path
    name: str
    description: str
    seeds: tuple[int, ...]
    launcher: str
    build: tuple[str, ...] | None
    train_defaults: tuple[str, ...]
    eval_defaults: tuple[str, ...]
    rows: dict[str, Row]
    report_base: str | None = None
    report_title: str | None = None
    report_wandb: bool = True
    report_directions: tuple[Direction, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def evaluated_rows(self) -> list[str]:
        return [name for name, row in self.rows.items() if row.evaluated]

    def error(self, problem: str, fix: str, row: str | None = None) -> StudyError:
        return StudyError(self.display_path, problem, fix, row)

    @property
    def display_path(self) -> str:
        return display(self.path)


def display(path: Path) -> str:
    """``path`` relative to the project root when it lies inside it."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def available_studies() -> list[str]:
    return sorted(p.parent.name for p in EXPERIMENTS_DIR.glob(f"*/{STUDY_FILE}"))


def resolve_study_path(arg: str | Path) -> Path:
    """The study file named by a folder, a ``study.yaml`` path or a bare study name."""
    given = Path(arg)
    candidates = [given / STUDY_FILE if given.is_dir() else given]
    if not given.is_absolute() and len(given.parts) == 1:
        candidates.append(EXPERIMENTS_DIR / str(arg) / STUDY_FILE)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = ", ".join(available_studies()) or "none yet"
    raise StudyError(
        str(arg),
        f"no study file found (looked for {', '.join(display(c) for c in candidates)})",
        f"pass experiments/<name>, its study.yaml or a study name (available: {names})",
    )


def _suggest(name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _strings(value: Any, source: str, what: str, row: str | None = None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise StudyError(
            source,
            f"{what} must be a list of overrides, got {value!r}",
            f"write {what}: [key=value, group=option]",
            row,
        )
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    if bad:
        raise StudyError(
            source,
            f"{what} holds {bad[0]!r}, not an override string",
            f"write each entry as key=value or group=option, e.g. {what}: [stage=finetune]",
            row,
        )
    return tuple(v.strip() for v in value)


def _load_yaml(path: Path) -> dict[str, Any]:
    source = display(path)
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except OmegaConfBaseException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyError(
            source, f"cannot be read: {first}", "fix the YAML syntax or the ${...} interpolation named"
        ) from None
    except Exception as exc:  # yaml.YAMLError and friends: one line, no traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyError(source, f"is not valid YAML ({first})", "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise StudyError(
            source,
            "must hold a mapping (name:, seeds:, rows: ...)",
            "see experiments/README.md for the format",
        )
    return data


def _check_keys(
    data: Mapping[str, Any], valid: Sequence[str], source: str, where: str, row: str | None = None
) -> None:
    for key in data:
        if key not in valid:
            raise StudyError(
                source,
                f"unknown key '{key}' in {where}",
                f"{_suggest(str(key), valid)}valid keys: {', '.join(valid)}",
                row,
            )


def _parse_row(name: str, data: Any, source: str) -> Row:
    if not NAME_PATTERN.match(name):
        raise StudyError(
            source,
            "row names may hold letters, digits, '_' and '-' only",
            "rename the row (it names folders and Hydra options)",
            name,
        )
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise StudyError(
            source,
            f"must be a mapping, got {data!r}",
            "write the row as `<row>: {train: [...], evaluate: [...]}`",
            name,
        )
    _check_keys(data, ROW_KEYS, source, "the row", name)
    train = None if data.get("train") is None else _strings(data["train"], source, "train", name)
    evaluate_value = data.get("evaluate", [])
    if evaluate_value is False:
        evaluate: tuple[str, ...] | None = None
    elif evaluate_value is True or evaluate_value is None:
        evaluate = ()
    else:
        evaluate = _strings(evaluate_value, source, "evaluate", name)
    tags = data.get("tags") or []
    if isinstance(tags, str) or not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise StudyError(
            source, f"tags must be a list of strings, got {tags!r}", "write tags: [fo, vit]", name
        )
    for key in ("llm_from", "init_from"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise StudyError(
                source, f"{key} must be a row name, got {data[key]!r}", f"write {key}: <row name>", name
            )
    needs_build = data.get("needs_build", False)
    if not isinstance(needs_build, bool):
        raise StudyError(
            source, f"needs_build must be true or false, got {needs_build!r}", "write needs_build: true", name
        )
    return Row(
        name=name,
        label=str(data.get("label") or name),
        tags=tuple(tags),
        train=train,
        llm_from=data.get("llm_from"),
        init_from=data.get("init_from"),
        needs_build=needs_build,
        evaluate=evaluate,
    )


def _parse_seeds(value: Any, source: str) -> tuple[int, ...]:
    if value is None:
        return (0,)
    seeds = value if isinstance(value, list) else [value]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise StudyError(
            source,
            f"seeds must be a non-empty list of integers, got {value!r}",
            "write seeds: [0] or seeds: [0, 1, 2]",
        )
    if len(set(seeds)) != len(seeds):
        raise StudyError(source, f"seeds repeat a value: {value!r}", "list each seed once")
    return tuple(seeds)


def load_study(arg: str | Path) -> Study:
    """Read and validate the study file named by ``arg`` (structure and row graph; not the overrides)."""
    path = resolve_study_path(arg)
    source = display(path)
    data = _load_yaml(path)
    _check_keys(data, STUDY_KEYS, source, "the study file")
    name = str(data.get("name") or path.parent.name)
    if not NAME_PATTERN.match(name):
        raise StudyError(
            source,
            f"study name '{name}' may hold letters, digits, '_' and '-' only",
            "rename it (it names outputs/study/<name>/ and the W&B group)",
        )
    launcher = str(data.get("launcher") or "basic")
    if launcher not in LAUNCHERS:
        raise StudyError(source, f"unknown launcher '{launcher}'", f"use one of {', '.join(LAUNCHERS)}")
    build = data.get("build")
    if build is not None:
        if not isinstance(build, dict):
            raise StudyError(source, "build must be a mapping", "write build: {overrides: [...]}")
        _check_keys(build, BUILD_KEYS, source, "build")
        build = _strings(build.get("overrides") or [], source, "build.overrides")
    rows_data = data.get("rows")
    if not isinstance(rows_data, dict) or not rows_data:
        raise StudyError(source, "has no rows", "add rows: {<row>: {train: [...], evaluate: [...]}}")
    rows = {str(key): _parse_row(str(key), value, source) for key, value in rows_data.items()}
    report = data.get("report") or {}
    if not isinstance(report, dict):
        raise StudyError(source, "report must be a mapping", "write report: {base: <row>}")
    _check_keys(report, REPORT_KEYS, source, "report")
    study = Study(
        path=path,
        name=name,
        description=str(data.get("description") or ""),
        seeds=_parse_seeds(data.get("seeds"), source),
        launcher=launcher,
        build=build,
        train_defaults=_strings(data.get("train_defaults"), source, "train_defaults"),
        eval_defaults=_strings(data.get("eval_defaults"), source, "eval_defaults"),
        rows=rows,
        report_base=report.get("base"),
        report_title=report.get("title"),
        report_wandb=bool(report.get("wandb", True)),
        report_directions=_parse_directions(report.get("directions"), source),
        raw=data,
    )
    check_rows(study)
    return study


def check_rows(study: Study) -> None:
    """Row references, what each row starts from, cycles, build and report consistency."""
    rows = study.rows
    for row in rows.values():
        if not row.trained and not row.evaluated:
            raise study.error(
                "has neither train nor evaluate, so it does nothing",
                "add train: [...] or remove `evaluate: false`",
                row.name,
            )
        for key in ("llm_from", "init_from"):
            target = getattr(row, key)
            if target is None:
                continue
            if target not in rows:
                raise study.error(
                    f"{key} names unknown row '{target}'",
                    f"{_suggest(target, list(rows))}use one of {', '.join(rows)}",
                    row.name,
                )
            if target == row.name:
                raise study.error(f"{key} names the row itself", f"point {key} at another row", row.name)
            if not row.trained:
                raise study.error(
                    f"{key} is set on an evaluation-only row (no train)",
                    f"add train: [...] to this row or drop {key}",
                    row.name,
                )
            if not rows[target].trained:
                raise study.error(
                    f"{key} row '{target}' is evaluation-only (no train), so it has no "
                    "trained weights to start from",
                    f"give '{target}' a train: list or point {key} at a trained row",
                    row.name,
                )
        if row.needs_build and study.build is None:
            raise study.error(
                "needs_build is true but the study has no build section",
                "add build: {overrides: [construction=synthetic]} to the study file",
                row.name,
            )
        if row.needs_build and not row.trained:
            raise study.error(
                "needs_build is set on an evaluation-only row",
                "drop needs_build or add train: [...]",
                row.name,
            )
    cycle = find_cycle({name: [t for t in (r.llm_from, r.init_from) if t] for name, r in rows.items()})
    if cycle:
        raise study.error(
            f"rows start from each other in a cycle ({' -> '.join(cycle)})",
            "make one of them start from the base model (drop its llm_from/init_from)",
            cycle[0],
        )
    if study.build is not None and not any(r.needs_build for r in rows.values()):
        raise study.error(
            "has a build section but no row sets needs_build: true",
            "remove build or set needs_build: true on the rows that train on built data",
        )
    if not study.evaluated_rows:
        raise study.error("evaluates no row", "give at least one row an evaluate: list (or omit evaluate)")
    base = study.report_base
    if base is not None:
        if base not in rows:
            raise study.error(
                f"report.base names unknown row '{base}'",
                f"{_suggest(base, list(rows))}use one of {', '.join(study.evaluated_rows)}",
            )
        if not rows[base].evaluated:
            raise study.error(
                f"report.base row '{base}' is not evaluated (evaluate: false)",
                f"use an evaluated row: {', '.join(study.evaluated_rows)}",
            )
    _check_directions(study)


def _parse_directions(raw: Any, source: str) -> tuple[Direction, ...]:
    """``report.directions`` (lvlm/report/directions.py), with the study file named in any error."""
    if raw is not None and not isinstance(raw, list):
        raise StudyError(source, "report.directions must be a list", "write directions: [{claim: ..., ...}]")
    try:
        return tuple(parse_directions(raw))
    except ConfigError as exc:
        problem, _, fix = str(exc).partition("; fix: ")
        raise StudyError(source, problem, fix or "see experiments/README.md") from exc


def _check_directions(study: Study) -> None:
    """Every row a direction compares must exist and be evaluated."""
    for direction in study.report_directions:
        for name in (*direction.lower, *direction.higher):
            if name not in study.evaluated_rows:
                raise study.error(
                    f"report.directions '{direction.claim}' names '{name}', which is not an evaluated row",
                    f"{_suggest(name, list(study.rows))}use one of {', '.join(study.evaluated_rows)}",
                )


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle in ``edges`` (node → nodes it starts from) as ``[a, b, ..., a]``, else ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in edges:
        if start not in state and (found := visit(start)):
            return found
    return None


def row_order(study: Study) -> list[str]:
    """Row names with every row after the rows it starts from (stable in file order)."""
    done: list[str] = []
    pending = list(study.rows)
    while pending:
        for name in pending:
            row = study.rows[name]
            if all(t in done for t in (row.llm_from, row.init_from) if t):
                done.append(name)
                pending.remove(name)
                break
        else:  # pragma: no cover - check_rows rejects cycles first
            raise study.error("rows form a cycle", "drop one llm_from/init_from")
    return done
