"""Running one step process: its own process group, output to a log, signals forwarded, polling.

A child runs in a new session (so a terminal's Ctrl-C reaches only the runner, which forwards it once)
and is asked to die with the runner (``PR_SET_PDEATHSIG`` on Linux), so even a SIGKILLed runner leaves no
step running. On SIGINT/SIGTERM the runner forwards the signal to the child's process group, waits up to
``GRACE_S`` for it to stop, then kills the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

POLL_S = 0.5
GRACE_S = 60.0


def _die_with_parent(parent: int) -> Callable[[], None]:
    def setup() -> None:
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - not Linux
            pass
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(1)

    return setup


class Signals:
    """SIGINT/SIGTERM handlers that forward the signal to the running child's process group."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.at = 0.0
        self.child: subprocess.Popen | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received, self.at = signum, time.monotonic()
        self.forward(signum)

    def forward(self, signum: int) -> None:
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signum)

    @property
    def exit_code(self) -> int:
        return 128 + int(self.received or 0)


def run_logged(
    cmd: Sequence[str],
    *,
    cwd: Path,
    log_path: Path,
    signals: Signals,
    poll: Callable[[], None] | None = None,
    echo: bool = False,
    env: dict[str, str] | None = None,
) -> int:
    """Run ``cmd``, appending its output to ``log_path`` (and stdout with ``echo``); returns the exit code."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(cmd), cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent(os.getpid()),
            env=child_env,
        )  # fmt: skip
        signals.child = proc
        reader = threading.Thread(target=_copy, args=(proc, log, echo), daemon=True)
        reader.start()
        killed = False
        try:
            while True:
                try:
                    code = proc.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if poll is not None:
                    poll()
                if signals.received and not killed and time.monotonic() - signals.at > GRACE_S:
                    killed = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
        finally:
            signals.child = None
            reader.join(timeout=5)
        if poll is not None:
            poll()
    return code


def _copy(proc: subprocess.Popen, log: object, echo: bool) -> None:
    assert proc.stdout is not None
    for chunk in iter(lambda: proc.stdout.readline(), b""):  # type: ignore[union-attr]
        log.write(chunk)  # type: ignore[attr-defined]
        log.flush()  # type: ignore[attr-defined]
        if echo:
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
