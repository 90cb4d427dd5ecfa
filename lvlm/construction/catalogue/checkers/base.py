"""The checker result type, the checker registry keyed by instruction kind, and small shared helpers.

A checker is a function ``(params, answer, request) -> CheckResult``; ``request`` is the user's request text
(only ``combination:repeat_prompt`` uses it). Checkers register themselves under their IFEval kind in
``CHECKERS``; ``lvlm.construction.catalogue.checkers.check`` is the entry point everyone else calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lvlm.registry import Registry


@dataclass(frozen=True)
class CheckResult:
    """Whether an answer follows an instruction, and a short reason saying what was found."""

    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


Checker = Callable[[dict, str, "str | None"], CheckResult]
CHECKERS: Registry[Checker] = Registry("format checker")


def register(kind: str) -> Callable[[Checker], Checker]:
    """Decorator: register a checker for ``kind``."""
    return CHECKERS.register(kind)


def passed(reason: str) -> CheckResult:
    return CheckResult(True, reason)


def failed(reason: str) -> CheckResult:
    return CheckResult(False, reason)


def compare(relation: str, actual: int, threshold: int) -> bool:
    """IFEval's two relations: "less than" is strict, "at least" includes the threshold."""
    if relation == "less than":
        return actual < threshold
    if relation == "at least":
        return actual >= threshold
    raise ValueError(f"unknown relation {relation!r}")


def judge_count(what: str, relation: str, actual: int, threshold: int) -> CheckResult:
    """A result for a counted quantity, e.g. "found 5 sentences, need less than 5"."""
    message = f"found {actual} {what}, need {relation} {threshold}"
    return CheckResult(compare(relation, actual, threshold), message)


def judge_exact(what: str, actual: int, wanted: int) -> CheckResult:
    return CheckResult(actual == wanted, f"found {actual} {what}, need exactly {wanted}")
