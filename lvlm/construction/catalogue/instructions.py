"""The library of verifiable output-format instructions: the record type, seeded sampling and JSON I/O.

``build_library(n, seed)`` draws ``n`` distinct ``FormatInstruction``s from the catalog in
``catalogue.catalog`` (one IFEval instruction type per ``kind``), spreading them as evenly over the
kinds as each kind's number of distinct variants allows, and alternating relations ("less than" /
"at least") inside a kind. The result depends only on ``n`` and ``seed``. ``save_library`` and
``load_library`` write and read the exact library as JSON so a dataset card can record it.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lvlm.construction.catalogue.catalog import (
    KIND_NAMES,
    KIND_SPECS,
    KINDS,
    RELATIONS,
    REQUEST_KINDS,
    KindSpec,
)
from lvlm.errors import ConfigError, DataError

LIBRARY_FORMAT = "lvlm-format-instructions"
LIBRARY_VERSION = 1


@dataclass(frozen=True)
class FormatInstruction:
    """One output-format instruction: a stable id, its IFEval type, the sentence shown, its parameters."""

    id: str
    kind: str
    text: str
    params: dict = field(default_factory=dict, hash=False)

    @property
    def needs_request(self) -> bool:
        """True when checking and formatting need the request text (``combination:repeat_prompt``)."""
        return self.kind in REQUEST_KINDS

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "text": self.text, "params": copy.deepcopy(self.params)}


def kind_candidates(spec: KindSpec) -> list[FormatInstruction]:
    """Every distinct instruction of one kind: each parameter combination in each phrasing."""
    out = []
    for params in spec.grid():
        fields = {**params, **spec.render(params)}
        for index, template in enumerate(spec.templates):
            suffix = f"_v{index + 1}" if len(spec.templates) > 1 else ""
            out.append(
                FormatInstruction(spec.id_of(params) + suffix, spec.kind, template.format(**fields), params)
            )
    return out


def all_candidates() -> list[FormatInstruction]:
    """Every instruction the library can contain, in catalog order."""
    return [instr for spec in KIND_SPECS for instr in kind_candidates(spec)]


def _allocate(n: int, capacities: dict[str, int], rng: random.Random) -> dict[str, int]:
    """Spread ``n`` over the kinds one round at a time, skipping kinds whose variants are used up."""
    counts = dict.fromkeys(capacities, 0)
    if n < len(capacities):
        for kind in rng.sample(list(capacities), n):
            counts[kind] = 1
        return counts
    remaining = n
    while remaining > 0:
        open_kinds = [kind for kind in capacities if counts[kind] < capacities[kind]]
        rng.shuffle(open_kinds)
        for kind in open_kinds[:remaining]:
            counts[kind] += 1
        remaining -= min(remaining, len(open_kinds))
    return counts


def _sample_kind(spec: KindSpec, count: int, rng: random.Random) -> list[FormatInstruction]:
    """``count`` distinct candidates of one kind, alternating between the values of ``spec.stratify``."""
    candidates = kind_candidates(spec)
    if spec.stratify is None:
        return rng.sample(candidates, count)
    groups: dict[object, list[FormatInstruction]] = {}
    for instr in candidates:
        groups.setdefault(instr.params[spec.stratify], []).append(instr)
    ordered = list(groups.values())
    for group in ordered:
        rng.shuffle(group)
    rng.shuffle(ordered)
    interleaved = [group[i] for i in range(max(map(len, ordered))) for group in ordered if i < len(group)]
    return interleaved[:count]


def build_library(n: int = 100, seed: int = 0) -> list[FormatInstruction]:
    """Exactly ``n`` distinct instructions covering every kind (when ``n`` ≥ the number of kinds)."""
    capacities = {spec.kind: len(kind_candidates(spec)) for spec in KIND_SPECS}
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= sum(capacities.values()):
        raise ConfigError(
            f"build_library: n={n!r} is not a valid library size; "
            f"fix: use an integer between 1 and {sum(capacities.values())}"
        )
    rng = random.Random(seed)
    counts = _allocate(n, capacities, rng)
    library = []
    for spec in KIND_SPECS:
        library.extend(sorted(_sample_kind(spec, counts[spec.kind], rng), key=lambda instr: instr.id))
    return library


def instruction_distribution(instrs: list[FormatInstruction]) -> dict[str, int]:
    """Number of instructions per kind, in catalog order (kinds with none are left out)."""
    counts = Counter(instr.kind for instr in instrs)
    ordered = [kind for kind in KIND_NAMES if kind in counts] + sorted(set(counts) - set(KIND_NAMES))
    return {kind: counts[kind] for kind in ordered}


def save_library(instrs: list[FormatInstruction], path: str | Path) -> Path:
    """Write the library as JSON (format tag, version, count, instructions) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": LIBRARY_FORMAT,
        "version": LIBRARY_VERSION,
        "count": len(instrs),
        "distribution": instruction_distribution(instrs),
        "instructions": [instr.to_dict() for instr in instrs],
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _check_param_value(key: str, value: object, example: object) -> str | None:
    """Why ``value`` is not a valid value for parameter ``key`` (``None`` when it is valid)."""
    if isinstance(example, int):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        return None if ok else f"parameter '{key}' must be a positive integer, got {value!r}"
    if isinstance(example, list):
        ok = isinstance(value, list) and bool(value) and all(isinstance(v, str) and v.strip() for v in value)
        return None if ok else f"parameter '{key}' must be a non-empty list of words, got {value!r}"
    if key.endswith("relation") and value not in RELATIONS:
        return f"parameter '{key}' must be one of {list(RELATIONS)}, got {value!r}"
    if not isinstance(value, str) or not value.strip():
        return f"parameter '{key}' must be a non-empty string, got {value!r}"
    if key == "letter" and not (len(value) == 1 and value.isalpha()):
        return f"parameter 'letter' must be a single letter, got {value!r}"
    return None


def validate_params(kind: str, params: object) -> str | None:
    """Why ``params`` cannot drive an instruction of ``kind`` (``None`` when they can)."""
    spec = KINDS.get(kind)
    if not isinstance(params, dict):
        return f"params must be an object, got {type(params).__name__}"
    example = spec.grid()[0]
    if set(params) != set(example):
        return f"params keys {sorted(params)} do not match {sorted(example)} for kind '{kind}'"
    for key, value in params.items():
        problem = _check_param_value(key, value, example[key])
        if problem:
            return problem
    if "nth_paragraph" in params and params["nth_paragraph"] > params["num_paragraphs"]:
        return "parameter 'nth_paragraph' must not exceed 'num_paragraphs'"
    return None


def _instruction_from_record(record: object, source: str, number: int) -> FormatInstruction:
    fix = "regenerate the library with build_library/save_library or correct the record"
    if not isinstance(record, dict) or not {"id", "kind", "text", "params"} <= set(record):
        raise DataError(source, "instruction needs the fields id, kind, text, params", fix, number)
    if record["kind"] not in KINDS:
        problem = f"unknown kind '{record['kind']}' (valid kinds: {', '.join(KIND_NAMES)})"
        raise DataError(source, problem, fix, number)
    if not all(isinstance(record[key], str) and record[key].strip() for key in ("id", "text")):
        raise DataError(source, "id and text must be non-empty strings", fix, number)
    problem = validate_params(record["kind"], record["params"])
    if problem:
        raise DataError(source, problem, fix, number)
    return FormatInstruction(record["id"], record["kind"], record["text"], record["params"])


def load_library(path: str | Path) -> list[FormatInstruction]:
    """Read a library written by ``save_library``; any malformed record raises ``DataError``."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise DataError(source, "library file not found", "pass the path of a saved instruction library")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(source, f"not valid JSON ({exc})", "write the file with save_library") from exc
    if not isinstance(payload, dict) or payload.get("format") != LIBRARY_FORMAT:
        raise DataError(source, f"not a '{LIBRARY_FORMAT}' file", "write the file with save_library")
    records = payload.get("instructions")
    if not isinstance(records, list):
        raise DataError(source, "missing the 'instructions' list", "write the file with save_library")
    library = [_instruction_from_record(rec, source, number) for number, rec in enumerate(records, 1)]
    seen: set[str] = set()
    for number, instr in enumerate(library, 1):
        if instr.id in seen:
            raise DataError(source, f"duplicate instruction id '{instr.id}'", "give each id once", number)
        seen.add(instr.id)
    return library
