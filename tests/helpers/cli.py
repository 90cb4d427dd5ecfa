"""Running the top-level entry points (``train.py``, ``evaluate.py`` …) as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import REPO_ROOT

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}


def subprocess_env() -> dict[str, str]:
    """This process's environment, offline. A W&B service token an in-process test left in it is passed
    on, as a user's notebook would pass it: the entry points themselves drop it (apply_offline_defaults)."""
    return dict(os.environ, **OFFLINE_ENV)


def run_cli(
    script: str, *overrides: str, cwd: Path = REPO_ROOT, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run ``script`` with ``overrides`` in the offline environment and capture its output."""
    env = subprocess_env()
    cmd = [sys.executable, str(REPO_ROOT / script), *overrides]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
