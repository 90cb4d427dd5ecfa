"""Entry point for verifying that an answer follows its output-format instruction.

``check(instr, answer)`` looks up the checker registered for ``instr.kind`` (see ``structure`` and
``content``; text measurements live in ``text``) and returns a ``CheckResult(ok, reason)``.
It never raises because of the answer: a non-string answer or an unexpected failure inside a checker is
reported as a failed result. An unknown kind is a library error and raises ``UnknownNameError``.
"""

from __future__ import annotations

from lvlm.construction.catalogue.checkers import content, structure  # noqa: F401  (register checkers)
from lvlm.construction.catalogue.checkers.base import CHECKERS, CheckResult
from lvlm.construction.catalogue.instructions import FormatInstruction

__all__ = ["CHECKERS", "CheckResult", "check", "compliance_rate"]


def check(instr: FormatInstruction, answer: str, *, request: str | None = None) -> CheckResult:
    """Does ``answer`` follow ``instr``? ``request`` is the user's request (needed by repeat_prompt)."""
    checker = CHECKERS.get(instr.kind)
    if not isinstance(answer, str):
        return CheckResult(False, f"the answer is a {type(answer).__name__}, not a string")
    try:
        return checker(instr.params, answer, request)
    except Exception as exc:  # a checker bug must not abort a dataset build; report it on the sample
        return CheckResult(False, f"checker for '{instr.kind}' failed: {type(exc).__name__}: {exc}")


def compliance_rate(results: list[CheckResult]) -> float:
    """Share of results that passed (0.0 for an empty list)."""
    return sum(result.ok for result in results) / len(results) if results else 0.0
