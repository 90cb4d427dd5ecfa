"""Errors of the study report: one line that names the offending file and says how to fix it.

All are ``lvlm.errors.LvlmError`` subclasses, so ``python -m lvlm.report`` (wrapped in
``lvlm.utils.runtime.report_user_errors``) prints them as ``error: <message>`` and exits with code 2
instead of a traceback. ``ResultsSchemaError`` is also a ``DataError`` and reads
``<file>: <problem>; fix: <fix>``.
"""

from __future__ import annotations

from pathlib import Path

from lvlm.errors import DataError, LvlmError


class ReportInputError(LvlmError):
    """A report input path is unusable: missing, empty of results, or clashing with another input."""


class NoResultsError(ReportInputError, FileNotFoundError):
    """A path given to the report holds no ``results.json``."""

    def __init__(self, path: Path | str, fix: str) -> None:
        super().__init__(f"{path}: no results.json found; fix: {fix}")


class ResultsSchemaError(DataError):
    """A ``results.json`` (or its ``study.json``) is not valid JSON or lacks a field the report needs."""


class DuplicateRunError(ReportInputError):
    """Two result files claim the same (row, seed)."""

    def __init__(self, row: str, seed: int, first: Path, second: Path) -> None:
        super().__init__(
            f"{second}: row '{row}' seed {seed} is also given by {first}; fix: give each run its own "
            "study.seed (or seed<k> folder), or pass only one of the two files"
        )
