"""User-facing error types.

Every error a user can cause (a bad path, a malformed record, an unknown preset name) is raised as one of
these, with a single-line message that names the file or record and says how to fix it. The CLI entry
points catch ``LvlmError`` and print the message without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class LvlmError(Exception):
    """Base class for errors caused by user input or configuration."""


class UnknownNameError(LvlmError, KeyError):
    """A preset, task, template or other registered name does not exist."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]) -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} '{name}'; valid {kind} names: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class DataError(LvlmError, ValueError):
    """A data file or record is malformed.

    The message always reads ``<source>: <record>: <problem>; fix: <fix>`` on one line. ``reason`` is the
    short kind of problem without file names or numbers (how skipped records are grouped and counted).
    """

    def __init__(
        self,
        source: str,
        problem: str,
        fix: str,
        record: str | int | None = None,
        reason: str | None = None,
    ) -> None:
        self.source, self.problem, self.fix, self.record = str(source), problem, fix, record
        self.reason = reason
        where = self.source if record is None else f"{self.source}: record {record}"
        super().__init__(f"{where}: {problem}; fix: {fix}")


class ConfigError(LvlmError, ValueError):
    """A configuration value is invalid or inconsistent."""
