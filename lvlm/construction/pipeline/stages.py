"""Stage orchestration: resumable JSONL stages, bounded concurrency, progress, and the per-item stage logic.

A stage maps every pending item to one record, appended to ``stages/<stage>.jsonl`` (one JSON object per
line, flushed per record) as soon as it finishes. A record is either ``{"id", "status": "ok", ...}`` or
``{"id", "status": "skipped", "reason", "detail"}``; both count as finished, so a rerun skips them and makes
no backend call for them. Backend failures that survive the client's own retries are *not* written: they
are counted for this run and retried by the next one; many in a row abort the stage with one line (finished
records stay on disk). Any other exception, and a first Ctrl-C, stop scheduling, let the items in flight
finish and be recorded, then propagate (so no paid request is thrown away).

The item logic of the three stages lives here too: captions and plain answers are rejected when empty or a
refusal; a formatted answer is checked with ``catalogue.checkers.check`` and regenerated up to
``max_format_retries`` times with the checker's reason as feedback, then dropped as ``noncompliant``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from lvlm.construction.backends.base import Feedback, Generator, ImageItem, SkipItem, is_refusal
from lvlm.errors import DataError, LvlmError

Record = dict[str, Any]
Work = Callable[[ImageItem], Awaitable[Record]]


class StageStore:
    """Append-only JSONL of finished records for one stage; survives a kill at any point."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Record]:
        """Finished records by id. A torn last line (killed mid-write) is cut off and redone."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with self.path.open("r+b") as handle:
                handle.truncate(cut)
            data = data[:cut]
        records: dict[str, Record] = {}
        for line_no, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                records.setdefault(str(record["id"]), record)
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise DataError(
                    str(self.path),
                    f"malformed stage record ({exc})",
                    "delete that line to redo the item",
                    line_no,
                ) from exc
        return records

    def append(self, record: Record) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            handle.flush()


def backend_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the backend failed this item" (retried on the next run), not a bug."""
    types: list[type[BaseException]] = [LvlmError, OSError, asyncio.TimeoutError]
    try:
        import openai

        types.append(openai.OpenAIError)
    except ImportError:  # pragma: no cover - openai is a declared dependency
        pass
    return tuple(types)


@dataclass
class StageReport:
    """What one run of one stage did."""

    name: str
    total: int
    finished_before: int = 0
    finished_now: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # by failure class (ChatRequestError.kind)
    last_failure: str = ""
    last_by_kind: dict[str, str] = field(default_factory=dict)  # the last message of each class


class BuildInterrupted(KeyboardInterrupt):
    """The build stopped on SIGINT or SIGTERM after recording the items in flight (``signum`` says which)."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum = int(signum)


# a backend failure of this class stops the build at once: no other request can succeed
FATAL_FAILURES = frozenset({"auth"})


def failure_kind(exc: BaseException) -> str:
    """The class a backend failure is counted under (``ChatRequestError.kind``, else the type name)."""
    return str(getattr(exc, "kind", None) or type(exc).__name__)


def failure_summary(reports: Sequence[StageReport]) -> str:
    """``caption: server_error ×4 (last: HTTP 500: …); answer: …`` over the stages that had failures."""
    parts = [
        f"{report.name}: {kind} ×{count} (last: {report.last_by_kind.get(kind, '?')})"
        for report in reports
        for kind, count in report.failures.most_common()
    ]
    return "; ".join(parts)


class _RateColumn(ProgressColumn):
    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} it/s" if speed else "-- it/s")


def _progress(enabled: bool) -> Progress:
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, disable=not enabled, transient=False)


@dataclass
class StageRunner:
    """Runs stages with ``concurrency`` items in flight, recording into ``stages_dir``."""

    stages_dir: Path
    concurrency: int = 4
    show_progress: bool = True
    max_consecutive_failures: int = 10
    reports: list[StageReport] = field(default_factory=list)
    stop_requested: bool = False
    stop_signal: int = signal.SIGINT

    def catch_interrupts(self) -> Callable[[], None]:
        """First Ctrl-C or SIGTERM (e.g. SLURM preemption): finish the items in flight, record them, then
        raise ``BuildInterrupted``; a second signal stops at once. Call inside the running loop; returns the
        function that undoes it."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)

        def on_signal(signum: int) -> None:
            self.stop_requested, self.stop_signal = True, signum
            for sig in signals:  # the next signal interrupts immediately
                loop.remove_signal_handler(sig)
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            print(f"\n{name}: stopping after the items in flight (again to stop now)", file=sys.stderr)

        try:
            for sig in signals:
                loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signal support
            return lambda: None

        def release() -> None:
            for sig in signals:
                loop.remove_signal_handler(sig)

        return release

    async def run(self, name: str, items: Sequence[ImageItem], work: Work) -> dict[str, Record]:
        """Finish every item of ``items`` not yet recorded for stage ``name``; return all its records."""
        store = StageStore(self.stages_dir / f"{name}.jsonl")
        done = store.load()
        wanted = {item.id for item in items}
        pending = [item for item in items if item.id not in done]
        report = StageReport(name, total=len(items), finished_before=len(wanted & done.keys()))
        self.reports.append(report)
        if pending:
            with _progress(self.show_progress) as bar:
                task = bar.add_task(name, total=len(items), completed=report.finished_before)
                await self._drain(pending, work, store, done, report, lambda: bar.advance(task))
        return {key: record for key, record in done.items() if key in wanted}

    async def _drain(
        self,
        pending: list[ImageItem],
        work: Work,
        store: StageStore,
        done: dict[str, Record],
        report: StageReport,
        tick: Callable[[], None],
    ) -> None:
        queue: list[ImageItem] = list(reversed(pending))
        state: dict[str, Any] = {"fatal": None, "consecutive": 0}
        transient = backend_error_types()

        async def worker() -> None:
            while queue and state["fatal"] is None and not self.stop_requested:
                item = queue.pop()
                try:
                    record = await _record_or_skip(work, item)
                except asyncio.CancelledError:
                    raise  # Ctrl-C / cancellation: stop now; finished records are already on disk
                except transient as exc:
                    _note_failure(report, state, exc, self.max_consecutive_failures)
                    continue
                except BaseException as exc:  # a bug or a simulated kill: let the other workers finish
                    state["fatal"] = state["fatal"] or exc
                    return
                state["consecutive"] = 0
                store.append(record)
                done[item.id] = record
                report.finished_now += 1
                tick()

        await asyncio.gather(*(worker() for _ in range(max(1, self.concurrency))))
        if state["fatal"] is not None:
            raise state["fatal"]
        if self.stop_requested:
            raise BuildInterrupted(f"stopped during stage '{report.name}'", self.stop_signal)


async def _record_or_skip(work: Work, item: ImageItem) -> Record:
    try:
        return {"id": item.id, **(await work(item))}
    except SkipItem as skip:
        return skipped(item.id, skip.reason, skip.detail)


def _note_failure(report: StageReport, state: dict[str, Any], exc: BaseException, limit: int) -> None:
    kind = failure_kind(exc)
    report.failures[kind] += 1
    report.last_failure = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    report.last_by_kind[kind] = report.last_failure
    state["consecutive"] += 1
    if kind in FATAL_FAILURES and state["fatal"] is None:
        state["fatal"] = LvlmError(
            f"stage '{report.name}': the backend refused the credentials ({report.last_failure}); stopped "
            "at once (finished records are kept)"
        )
    if state["consecutive"] >= limit and state["fatal"] is None:
        state["fatal"] = LvlmError(
            f"stage '{report.name}': {limit} backend failures in a row (last: {report.last_failure}); "
            "fix: check construction.base_url, the API key variable and the server, then rerun "
            "(finished records are kept)"
        )


def skipped(item_id: str, reason: str, detail: str = "", **extra: Any) -> Record:
    return {"id": item_id, "status": "skipped", "reason": reason, "detail": detail, **extra}


def _judge_text(text: str, what: str) -> SkipItem | None:
    if not text.strip():
        return SkipItem(f"empty_{what}", f"the backend returned an empty {what}")
    if is_refusal(text):
        return SkipItem("refusal", f"{what} reads as a refusal: {text[:80]!r}")
    return None


async def caption_stage(generator: Generator, item: ImageItem) -> Record:
    caption = await generator.caption(item)
    problem = _judge_text(caption, "caption")
    if problem is not None:
        raise problem
    return {"status": "ok", "caption": caption.strip()}


async def answer_stage(generator: Generator, item: ImageItem, caption: str, question: str) -> Record:
    answer = await generator.answer(item, caption, question)
    problem = _judge_text(answer, "answer")
    if problem is not None:
        raise problem
    return {"status": "ok", "answer": answer.strip()}


async def question_answer_stage(
    generator: Generator,
    item: ImageItem,
    caption: str,
    instruction: Any,
    check: Callable[..., Any],
    max_format_retries: int,
) -> Record:
    """Generate (question, formatted answer); regenerate non-compliant answers; drop after the last try."""
    feedback: Feedback | None = None
    failures: list[str] = []
    last_reason = "noncompliant"
    for attempt in range(1, max_format_retries + 2):
        draft = await generator.question_answer(item, caption, instruction, feedback)
        problem = _judge_text(draft.raw, "answer") or _judge_text(draft.answer or "-", "answer")
        if problem is not None:
            return skipped(item.id, problem.reason, problem.detail, attempts=attempt, failures=failures)
        if not draft.question or not draft.answer:
            last_reason, why = (
                "unparseable",
                "the reply must contain <question>…</question> and <answer>…</answer>",
            )
        else:
            verdict = check(instruction, draft.answer, request=draft.question)
            if verdict.ok:
                return {
                    "status": "ok",
                    "instruction_id": instruction.id,
                    "question": draft.question,
                    "answer": draft.answer,
                    "attempts": attempt,
                    "failures": failures,
                }
            last_reason, why = "noncompliant", str(verdict.reason)
        failures.append(why)
        feedback = Feedback(attempt + 1, draft, why)
    return skipped(item.id, last_reason, failures[-1], attempts=max_format_retries + 1, failures=failures)
