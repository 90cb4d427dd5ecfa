"""Process-level setup shared by the CLI entry points.

Registers the OmegaConf resolvers the configs use (``${lvlm_root:}`` = the project root), applies safe
offline defaults (W&B offline unless the user chose a mode), configures logging, and turns ``LvlmError``s
into one clear line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf

from lvlm.errors import ConfigError, LvlmError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("lvlm")
RUN_RECORD = "run.json"  # in every run directory: run id, status, summary


_RUN_ID: list[str] = []  # this process's run id, made once


def run_id() -> str:
    """This process's run id, the suffix that keeps run directories apart (``${lvlm_run_id:}``).

    Every process of one distributed run must agree on it, so it comes from the launcher when there is
    one: ``j<SLURM job>[_<array task>][.<step>]`` under SLURM, a hash of the rendezvous under torchrun;
    otherwise 6 random hex digits. (Lightning's own DDP children are handed the parent's run dir.)
    """
    if not _RUN_ID:
        job = os.environ.get("SLURM_JOB_ID")
        if job:
            array, step = os.environ.get("SLURM_ARRAY_TASK_ID"), os.environ.get("SLURM_STEP_ID")
            ident = f"j{job}" + (f"_{array}" if array else "") + (f".{step}" if step else "")
        elif os.environ.get("TORCHELASTIC_RUN_ID"):
            names = ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")
            key = "|".join(os.environ.get(name, "") for name in names)
            ident = hashlib.sha256(key.encode()).hexdigest()[:6]
        else:
            ident = secrets.token_hex(3)
        _RUN_ID.append(ident)
    return _RUN_ID[0]


def is_launch_rank_zero() -> bool:
    """True unless a launcher marked this process as another rank (RANK, LOCAL_RANK, SLURM_PROCID)."""
    return all(os.environ.get(key, "0") == "0" for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"))


RESULT_FILES = ("config.yaml", "metrics.jsonl", "checkpoints", "results.json", "skipped.json")


def claim_run_dir(run_dir: Path, resume_from: str | Path | None = None) -> dict[str, Any]:
    """Make ``run_dir`` this run's, or raise ``ConfigError`` (one line) if another run's results are there.

    ``run.json`` is created exclusively, so of two runs started into one directory exactly one wins. A
    directory another run left (finished, interrupted, or still running) is refused unless this run
    resumes from a checkpoint inside it; one whose run failed before producing results is reused.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RUN_RECORD
    mine = run_id()
    fix = ("leave hydra.run.dir to its default (unique per run) or pass a new one, or move the old run "
           "aside")  # fmt: skip
    previous: list[str] = []
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        try:
            other = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            other = {"run_id": "?", "status": "starting"}
        other_id, status = str(other.get("run_id", "?")), str(other.get("status", "?"))
        resuming = resume_from is not None and Path(run_dir).resolve() in Path(resume_from).resolve().parents
        if other_id != mine and status != "failed" and not resuming:
            raise ConfigError(f"{run_dir}: already holds run {other_id} ({status}); fix: {fix}") from None
        previous = [*other.get("previous_run_ids", []), other_id] if other_id != mine else []
    else:
        found = [name for name in RESULT_FILES if (run_dir / name).exists()]
        if found:
            path.unlink()
            raise ConfigError(f"{run_dir}: holds another run's files ({', '.join(found)}); fix: {fix}")
    record = {"run_id": mine, "status": "running", "started": time.time(), "argv": sys.argv,
              "host": socket.gethostname(), "pid": os.getpid()}  # fmt: skip
    if previous:
        record["previous_run_ids"] = previous
    _CLAIMED.add(run_dir.resolve())
    return write_run_record(run_dir, **record)


_CLAIMED: set[Path] = set()  # run dirs this process claimed (only those get its status written)


def record_run_end(run_dir: Path, status: str, **fields: Any) -> None:
    """Write the run's final ``status`` (and ``fields``) into ``run.json`` if this process claimed it."""
    if Path(run_dir).resolve() in _CLAIMED:
        write_run_record(run_dir, status=status, ended=time.time(), **fields)


def write_run_record(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into ``run_dir/run.json`` (atomically) and return the record."""
    path = Path(run_dir) / RUN_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        record = {}
    record.update(fields)
    tmp = path.with_name(f".{RUN_RECORD}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return record


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("lvlm_root"):
        OmegaConf.register_new_resolver("lvlm_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("lvlm_run_id"):
        OmegaConf.register_new_resolver("lvlm_run_id", run_id)


WANDB_SERVICE_ENV = "WANDB_SERVICE"  # how wandb tells child processes which service to log through


def apply_offline_defaults() -> None:
    """W&B offline unless configured; the project's log on, third-party loggers quieted by name."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    # A W&B service token inherited from a parent process (a notebook, a test runner, a study driver that
    # logged itself) would make this run share that parent's service: if this run is then killed, the
    # service keeps its run id "in use" and the resumed run cannot continue it. Each run owns its service.
    os.environ.pop(WANDB_SERVICE_ENV, None)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    configure_logging()


QUIET_LOGGERS = (
    "open_clip", "httpx", "httpcore", "urllib3", "filelock", "fsspec", "PIL", "matplotlib", "datasets",
    "huggingface_hub", "transformers", "peft", "wandb", "git", "asyncio",
)  # fmt: skip


def configure_logging() -> None:
    """``lvlm.*`` at INFO into the run's log file, WARNING and above on stderr.

    Hydra has set up the root logger with a console handler (stdout) and a file handler (``<run
    dir>/<job>.log``) by the time the entry points call this. The console handler moves to stderr at
    WARNING (stdout keeps the run's summary), the file handler keeps INFO, and only the third-party
    loggers in ``QUIET_LOGGERS`` are raised to WARNING.
    """
    logging.getLogger("lvlm").setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.setLevel(min(handler.level or logging.INFO, logging.INFO))
        elif isinstance(handler, logging.StreamHandler):
            if handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
            handler.setLevel(max(handler.level, logging.WARNING))


def report_user_errors(func: F) -> F:
    """Print ``LvlmError`` as ``error: <message>`` on stderr and exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LvlmError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


register_resolvers()
