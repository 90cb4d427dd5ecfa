"""Process-level setup shared by the CLI entry points.

Registers the OmegaConf resolvers the configs use (``${lvlm_root:}`` = the project root), applies safe
offline defaults (W&B offline unless the user chose a mode), configures logging, and turns ``LvlmError``s
into one clear line and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf

from lvlm.errors import LvlmError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("lvlm")
RUN_RECORD = "run.json"  # in every run directory: run id, status, summary


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


def apply_offline_defaults() -> None:
    """W&B offline unless configured; quieter third-party logs."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for noisy in ("root", "open_clip", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR if noisy == "root" else logging.WARNING)


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
