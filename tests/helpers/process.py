"""Entry points as background processes, for tests that signal them mid-run (SIGTERM, SIGINT)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers.cli import subprocess_env
from tests.helpers.paths import REPO_ROOT


def start_cli(script: str, *overrides: str, cwd: Path = REPO_ROOT, log_dir: Path) -> subprocess.Popen:
    """Start ``script`` with ``overrides`` offline; stdout/stderr go to ``log_dir/{stdout,stderr}.txt``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    env = subprocess_env()
    cmd = [sys.executable, str(REPO_ROOT / script), *overrides]
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, text=True,
        stdout=(log_dir / "stdout.txt").open("w"), stderr=(log_dir / "stderr.txt").open("w"),
    )  # fmt: skip


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail if ``proc`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def finish(proc: subprocess.Popen, timeout: float) -> int:
    """Wait for ``proc``; kill it (and fail) if it does not end within ``timeout``."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"process did not exit within {timeout:.0f} s") from None
