"""Expected directions: does this study's table show the findings it sets out to reproduce, in words?

A study names its expected directions in ``report.directions`` (``experiments/README.md``), each a claim
that one set of rows scores *below* another on one label system, e.g. paper A's

    - {claim: "LVLM < base on Unnatural", system: unnatural, lower: [llava, nofovit, fovit], higher: [base]}
    - {claim: "FO > NoFO for visual tuning", system: all, lower: [nofovit], higher: [fovit]}

Every (lower, higher) pair of rows is compared on its mean and its CI (the table's CI rule):

* ``holds, CIs apart``: lower's mean < higher's mean and lower's upper bound < higher's lower bound;
* ``holds, CIs overlap``: the means are ordered as claimed but the intervals overlap;
* ``reversed, CIs apart`` / ``reversed, CIs overlap``: the means are in the other order (or equal);
* ``not measured``: a row or its value is missing.

A claim *holds* when every pair does, *holds clearly* when every pair's CIs are apart, and is *not shown*
otherwise. No direction is assumed from the numbers: the claims come from the study file, the verdicts
from the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lvlm.errors import ConfigError
from lvlm.report.cells import KEY_NAMES, estimate_text
from lvlm.report.inputs import SUMMARY_KEYS
from lvlm.report.table import Estimate, StudyTable, TableRow

APART, OVERLAP = "CIs apart", "CIs overlap"
NOT_MEASURED = "not measured"
CLAIM_KEYS = ("claim", "system", "lower", "higher")


@dataclass(frozen=True)
class Direction:
    """One expected direction: rows ``lower`` score below rows ``higher`` on label system ``system``."""

    claim: str
    system: str
    lower: tuple[str, ...]
    higher: tuple[str, ...]


@dataclass(frozen=True)
class PairVerdict:
    """One (lower, higher) comparison: the two estimates and the verdict text."""

    lower: str
    higher: str
    lower_value: Estimate | None
    higher_value: Estimate | None
    verdict: str

    @property
    def holds(self) -> bool:
        return self.verdict.startswith("holds")

    @property
    def apart(self) -> bool:
        return self.holds and self.verdict.endswith(APART)


@dataclass(frozen=True)
class DirectionResult:
    """A direction checked against the table: every pair's verdict and the claim's overall verdict."""

    direction: Direction
    pairs: tuple[PairVerdict, ...]

    @property
    def verdict(self) -> str:
        if not self.pairs or any(pair.verdict == NOT_MEASURED for pair in self.pairs):
            return NOT_MEASURED
        if all(pair.apart for pair in self.pairs):
            return "holds clearly (every pair's CIs apart)"
        if all(pair.holds for pair in self.pairs):
            return "holds, but some CIs overlap"
        return "not shown"


def parse_directions(
    raw: Sequence[Mapping[str, Any]] | None, where: str = "report.directions"
) -> list[Direction]:
    """Directions from plain mappings (a study file's ``report.directions``); bad ones raise ConfigError."""
    directions = []
    for index, entry in enumerate(raw or []):
        place = f"{where}[{index}]"
        if not isinstance(entry, Mapping) or set(entry) != set(CLAIM_KEYS):
            raise ConfigError(
                f"{place}: expected the keys {', '.join(CLAIM_KEYS)}; fix: write e.g. "
                '{claim: "FO > NoFO", system: all, lower: [nofovit], higher: [fovit]}'
            )
        if entry["system"] not in SUMMARY_KEYS:
            raise ConfigError(
                f"{place}: unknown system '{entry['system']}'; fix: use one of {', '.join(SUMMARY_KEYS)}"
            )
        lower, higher = _names(entry["lower"], place, "lower"), _names(entry["higher"], place, "higher")
        directions.append(Direction(str(entry["claim"]), str(entry["system"]), lower, higher))
    return directions


def read_directions(path: str | Path) -> list[Direction]:
    """Directions from a YAML file: a study file (its ``report.directions``) or a bare list of them."""
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{source}: cannot read directions ({exc}); fix: pass a study.yaml or a YAML list"
        ) from exc
    if isinstance(data, Mapping):
        data = (data.get("report") or {}).get("directions")
    if not isinstance(data, list):
        raise ConfigError(
            f"{source}: holds no list of directions; fix: add report.directions (experiments/README.md)"
        )
    return parse_directions(data, where=f"{source}: directions")


def _names(value: Any, place: str, key: str) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value or ())
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"{place}.{key}: expected a row name or a non-empty list of row names")
    return names


def compare(lower: Estimate | None, higher: Estimate | None) -> str:
    """The verdict of one pair from its two estimates."""
    if lower is None or higher is None:
        return NOT_MEASURED
    ordered = lower.mean < higher.mean
    bounds = None not in (lower.low, lower.high, higher.low, higher.high)
    first, second = (lower, higher) if ordered else (higher, lower)
    apart = bounds and first.high < second.low  # type: ignore[operator]
    return f"{'holds' if ordered else 'reversed'}, {APART if apart else OVERLAP}"


def check_direction(direction: Direction, rows: Mapping[str, TableRow]) -> DirectionResult:
    """Compare every (lower, higher) pair of ``direction`` on its system."""
    pairs = []
    for low_name in direction.lower:
        for high_name in direction.higher:
            low, high = rows.get(low_name), rows.get(high_name)
            low_value = low.scores.get(direction.system) if low else None
            high_value = high.scores.get(direction.system) if high else None
            verdict = compare(low_value, high_value)
            pairs.append(PairVerdict(low_name, high_name, low_value, high_value, verdict))
    return DirectionResult(direction, tuple(pairs))


def check_directions(table: StudyTable, directions: Sequence[Direction]) -> list[DirectionResult]:
    """Every direction checked against ``table`` (rows are looked up by their study row name)."""
    rows = {row.row: row for row in table.rows}
    return [check_direction(direction, rows) for direction in directions]


DIRECTIONS_HEADING = "Expected directions (from the study file), checked against the CIs above:"


def claim_text(result: DirectionResult) -> str:
    """``<claim> [<System>]: <verdict>``."""
    direction = result.direction
    return f"{direction.claim} [{KEY_NAMES[direction.system]}]: {result.verdict}"


def pair_text(pair: PairVerdict, table: StudyTable) -> str:
    """``<lower label> <estimate> < <higher label> <estimate>: <verdict>``."""
    labels = {row.row: row.label for row in table.rows}
    low, high = labels.get(pair.lower, pair.lower), labels.get(pair.higher, pair.higher)
    values = estimate_text(pair.lower_value), estimate_text(pair.higher_value)
    return f"{low} {values[0]} < {high} {values[1]}: {pair.verdict}"


def direction_lines(
    results: Sequence[DirectionResult], table: StudyTable, claim: str = "- ", pair: str = "    "
) -> list[str]:
    """The heading, then per direction its claim line and one line per pair, after the given prefixes."""
    lines = [DIRECTIONS_HEADING]
    for result in results:
        lines.append(claim + claim_text(result))
        lines += [pair + pair_text(verdict, table) for verdict in result.pairs]
    return lines
