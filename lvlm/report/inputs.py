"""Finding and reading the evaluation results a study report is built from.

Each input is a ``results.json`` written by ``lvlm/eval/results/writer.py`` (a directory is searched
recursively). Every file belongs to one table *row* and one *seed*. The study runner names them with a
top-level ``"study"`` object in results.json, or the same object in a ``study.json`` beside it (the key
wins when both exist): ``{"name": str, "row": str, "label": str, "seed": int, "condition_tags": [str]}``,
every field optional. Without it the row is the name of the folder holding results.json (its parent's
name when that folder is called ``seed<k>``), the label is the row, and the seed is ``k`` of a
``seed<k>`` folder, else ``config.seed``, else 0. Only the JSON is read here (no torch import), and every
problem is raised as a one-line ``lvlm.report.errors`` error naming the file and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lvlm.report.errors import DuplicateRunError, NoResultsError, ResultsSchemaError

LABEL_SYSTEMS = ("natural", "neutral", "unnatural")
SUMMARY_KEYS = (*LABEL_SYSTEMS, "all")  # the same as lvlm.eval.results.writer.SUMMARY_KEYS (a test checks)
SUPPORTED_SCHEMA = 1
RESULTS_NAME = "results.json"
STUDY_NAME = "study.json"
SEED_FOLDER = re.compile(r"^seed[_-]?(\d+)$")
CONFIG_NAMES = ("config.yaml", ".hydra/config.yaml")
_WRITER_FIX = (
    "pass a results.json written by evaluate.py (lvlm/eval/results/writer.py), or re-run that evaluation"
)


@dataclass(frozen=True)
class SystemScore:
    """One summary entry of a results.json, as fractions: F1, its bootstrap CI and the invalid rate."""

    f1: float
    ci_low: float | None
    ci_high: float | None
    invalid_rate: float | None


@dataclass(frozen=True)
class StudyInfo:
    """Which table row and seed a results file belongs to, and where that was read from."""

    row: str
    label: str
    seed: int
    name: str | None = None
    condition_tags: tuple[str, ...] = ()
    source: str = "folder"


@dataclass(frozen=True)
class RunResult:
    """One validated results.json and the files found around it."""

    path: Path
    study: StudyInfo
    summary: dict[str, SystemScore]
    per_set: dict[tuple[str, str], float] = field(default_factory=dict)
    set_systems: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.95
    smoke_data: bool = False
    config_path: Path | None = None
    samples_path: Path | None = None


def discover_results(paths: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """``(results.json, config search root)`` of every input; directories are searched recursively."""
    if not paths:
        raise NoResultsError("(no paths)", "pass a study directory or one or more results.json files")
    found: dict[Path, Path] = {}
    for given in map(Path, paths):
        if not given.exists():
            raise NoResultsError(given, "check the path; pass a study directory or results.json files")
        if given.is_dir():
            files = sorted(p for p in given.rglob(RESULTS_NAME) if p.is_file())
            if not files:
                raise NoResultsError(
                    given,
                    "point to a study directory whose runs finished evaluate.py, or to results.json files",
                )
            for file in files:
                found.setdefault(file.resolve(), given.resolve())
        else:
            file = given.resolve()
            found.setdefault(file, file.parents[min(2, len(file.parents) - 1)])  # config: up to 2 above
    return list(found.items())


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object stored in ``path``; a clear error for unreadable, invalid or non-object files."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsSchemaError(
            str(path), f"cannot be read ({exc.__class__.__name__})", _WRITER_FIX
        ) from exc
    except json.JSONDecodeError as exc:
        raise ResultsSchemaError(
            str(path), f"is not valid JSON ({exc.msg} at line {exc.lineno})", _WRITER_FIX
        ) from exc
    if not isinstance(data, dict):
        raise ResultsSchemaError(str(path), f"holds a JSON {type(data).__name__}, not an object", _WRITER_FIX)
    return data


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _optional_fraction(path: Path, where: str, value: object) -> float | None:
    if value is None:
        return None
    if not _number(value) or not 0.0 <= float(value) <= 1.0:
        raise ResultsSchemaError(str(path), f"{where} is {value!r}, not a fraction in [0, 1]", _WRITER_FIX)
    return float(value)


def parse_summary(path: Path, payload: Mapping[str, Any]) -> dict[str, SystemScore]:
    """The ``summary`` entries present (at least one label system), checked to be fractions."""
    summary = payload.get("summary")
    if not isinstance(summary, Mapping):
        raise ResultsSchemaError(str(path), "has no 'summary' object", _WRITER_FIX)
    if not any(system in summary for system in LABEL_SYSTEMS):
        raise ResultsSchemaError(str(path), f"'summary' has none of {', '.join(LABEL_SYSTEMS)}", _WRITER_FIX)
    scores = {}
    for key in SUMMARY_KEYS:
        entry = summary.get(key)
        if entry is None:
            continue
        if not isinstance(entry, Mapping) or entry.get("f1") is None:
            raise ResultsSchemaError(str(path), f"summary.{key} has no 'f1' value", _WRITER_FIX)
        scores[key] = SystemScore(
            f1=float(_optional_fraction(path, f"summary.{key}.f1", entry["f1"])),  # type: ignore[arg-type]
            ci_low=_optional_fraction(path, f"summary.{key}.f1_ci_low", entry.get("f1_ci_low")),
            ci_high=_optional_fraction(path, f"summary.{key}.f1_ci_high", entry.get("f1_ci_high")),
            invalid_rate=_optional_fraction(path, f"summary.{key}.invalid_rate", entry.get("invalid_rate")),
        )
    return scores


def parse_per_set(
    path: Path, payload: Mapping[str, Any]
) -> tuple[dict[tuple[str, str], float], dict[str, str]]:
    """``(task, set) → F1`` and ``set → label system`` from ``per_set`` (empty when the key is absent)."""
    per_set = payload.get("per_set")
    if per_set is None:
        return {}, {}
    if not isinstance(per_set, Mapping):
        raise ResultsSchemaError(str(path), "'per_set' is not an object", _WRITER_FIX)
    cells: dict[tuple[str, str], float] = {}
    systems: dict[str, str] = {}
    for key, entry in per_set.items():
        if not isinstance(entry, Mapping) or not all(k in entry for k in ("task", "set", "f1")):
            raise ResultsSchemaError(str(path), f"per_set['{key}'] lacks task/set/f1", _WRITER_FIX)
        f1 = _optional_fraction(path, f"per_set['{key}'].f1", entry["f1"])
        if f1 is not None:
            cells[(str(entry["task"]), str(entry["set"]))] = f1
        systems[str(entry["set"])] = str(entry.get("system", ""))
    return cells, systems


def check_schema_version(path: Path, payload: Mapping[str, Any]) -> None:
    version = payload.get("schema_version", SUPPORTED_SCHEMA)
    if not _number(version) or int(version) > SUPPORTED_SCHEMA:
        raise ResultsSchemaError(
            str(path),
            f"schema_version {version!r} is newer than this report reads ({SUPPORTED_SCHEMA})",
            "update lvlm (git pull) to a version that knows this schema",
        )


def folder_row_and_seed(results_path: Path, config: Mapping[str, Any]) -> tuple[str, int]:
    """The fallback row (folder name, skipping a ``seed<k>`` folder) and seed (k, config.seed or 0)."""
    folder = results_path.parent
    match = SEED_FOLDER.match(folder.name)
    if match:
        return folder.parent.name, int(match.group(1))
    seed = config.get("seed")
    return folder.name, int(seed) if _number(seed) else 0


def _study_object(path: Path, payload: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, Path, str]:
    if "study" in payload:
        return payload["study"], path, "results.json"
    beside = path.parent / STUDY_NAME
    if beside.is_file():
        return read_json_object(beside), beside, STUDY_NAME
    return None, path, "folder"


def _text_field(source: Path, study: Mapping[str, Any], key: str) -> str | None:
    value = study.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ResultsSchemaError(
            str(source), f"study.{key} is {value!r}, not a non-empty string", "fix the study runner's output"
        )
    return value.strip()


def parse_study(path: Path, payload: Mapping[str, Any], config: Mapping[str, Any]) -> StudyInfo:
    """Row, label, seed, study name and tags of one results file (see the module docstring)."""
    row, seed = folder_row_and_seed(path, config)
    study, source, origin = _study_object(path, payload)
    if study is None:
        return StudyInfo(row=row, label=row, seed=seed)
    fix = 'write study as {"name": str, "row": str, "label": str, "seed": int, "condition_tags": [str]}'
    if not isinstance(study, Mapping):
        raise ResultsSchemaError(str(source), "'study' is not an object", fix)
    row = _text_field(source, study, "row") or row
    if "seed" in study:
        if not isinstance(study["seed"], int) or isinstance(study["seed"], bool):
            raise ResultsSchemaError(str(source), f"study.seed is {study['seed']!r}, not an integer", fix)
        seed = study["seed"]
    tags = study.get("condition_tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ResultsSchemaError(str(source), "study.condition_tags is not a list of strings", fix)
    return StudyInfo(
        row=row,
        label=_text_field(source, study, "label") or row,
        seed=seed,
        name=_text_field(source, study, "name"),
        condition_tags=tuple(tags),
        source=origin,
    )


def config_search_folders(results_path: Path, root: Path, depth: int = 4) -> list[Path]:
    """The results folder and its ancestors up to ``root`` (inclusive), at most ``depth`` of them."""
    folders = [results_path.parent, *results_path.parent.parents]
    if root in folders:
        folders = folders[: folders.index(root) + 1]
    return folders[:depth]


def find_config(results_path: Path, root: Path) -> Path | None:
    """The resolved run config (``config.yaml`` or ``.hydra/config.yaml``) beside or above results.json."""
    for folder in config_search_folders(results_path, root):
        for name in CONFIG_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def load_run(path: Path, root: Path) -> RunResult:
    """Read and validate one results.json (and its study.json, config and samples)."""
    payload = read_json_object(path)
    check_schema_version(path, payload)
    config = payload.get("config") if isinstance(payload.get("config"), Mapping) else {}
    cells, set_systems = parse_per_set(path, payload)
    bootstrap = payload.get("bootstrap") if isinstance(payload.get("bootstrap"), Mapping) else {}
    confidence = bootstrap.get("confidence", 0.95)
    samples = path.parent / "samples.jsonl"
    return RunResult(
        path=path,
        study=parse_study(path, payload, config),
        summary=parse_summary(path, payload),
        per_set=cells,
        set_systems=set_systems,
        config=dict(config),
        confidence=float(confidence) if _number(confidence) else 0.95,
        smoke_data=bool(payload.get("smoke_data")),
        config_path=find_config(path, root),
        samples_path=samples if samples.is_file() else None,
    )


def check_unique(runs: Iterable[RunResult]) -> None:
    """Raise ``DuplicateRunError`` when two files share a (row, seed)."""
    seen: dict[tuple[str, int], Path] = {}
    for run in runs:
        key = (run.study.row, run.study.seed)
        if key in seen:
            raise DuplicateRunError(run.study.row, run.study.seed, seen[key], run.path)
        seen[key] = run.path


def load_runs(paths: Sequence[str | Path]) -> list[RunResult]:
    """Every results file under ``paths``, validated, in order of first appearance."""
    runs = [load_run(path, root) for path, root in discover_results(paths)]
    check_unique(runs)
    return runs
