"""A Hydra callback that marks the start and end of every job of a study multirun.

The runner adds ``+hydra.callbacks.study_marker._target_=lvlm.study.hydra_callback.JobMarker`` to the
multiruns it launches. Each job (in-process with the basic launcher, a worker process with joblib, a SLURM
job with submitit) writes ``_job.json`` into its own output folder: ``{"status": "running", ...}`` when it
starts and ``{"status": "completed" | "failed", ...}`` when the task function returned or raised. The
runner polls these markers, so a row whose job completed is recorded as done even if a later job of the
same multirun is interrupted. This module imports nothing from lvlm.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

MARKER = "_job.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _write(config: Any, record: dict[str, Any]) -> None:
    folder = Path(str(config.hydra.runtime.output_dir))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / MARKER)


class JobMarker(Callback):
    """Writes ``_job.json`` at the start and end of each job."""

    def __init__(self) -> None:
        self._started: dict[str, tuple[str, float]] = {}

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        started = (_now(), time.time())
        self._started[str(config.hydra.runtime.output_dir)] = started
        _write(config, {"status": "running", "pid": os.getpid(), "host": socket.gethostname(),
                        "started": started[0]})  # fmt: skip

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        started, t0 = self._started.pop(str(config.hydra.runtime.output_dir), (None, time.time()))
        status = getattr(getattr(job_return, "status", None), "name", "UNKNOWN").lower()
        record = {"status": status, "pid": os.getpid(), "host": socket.gethostname(), "started": started,
                  "finished": _now(), "seconds": round(time.time() - t0, 3)}  # fmt: skip
        if status != "completed":
            error = getattr(job_return, "_return_value", None)
            record["error"] = f"{type(error).__name__}: {error}"[:500] if error is not None else None
        _write(config, record)
