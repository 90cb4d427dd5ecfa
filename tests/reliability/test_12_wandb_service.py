"""Item 12: every run owns its W&B service.

A ``WANDB_SERVICE`` token inherited from a parent (a test runner or notebook that logged in-process, a
driver script) makes a child run register its run id with the parent's service. If that child is killed,
the parent's service keeps the id "in use" and the resumed run fails with ``run ID ... is in use``. Every
entry point drops the inherited token in ``apply_offline_defaults`` before it logs anything.
"""

from __future__ import annotations

import os
import subprocess
import sys

from lvlm.utils.runtime import WANDB_SERVICE_ENV, apply_offline_defaults
from tests.helpers.cli import subprocess_env
from tests.helpers.paths import REPO_ROOT

NO_SERVICE_THERE = "3-12345-tcp-localhost-9"  # a well-formed token for a service that does not exist


def test_entry_point_setup_drops_an_inherited_service_token(monkeypatch):
    monkeypatch.setenv(WANDB_SERVICE_ENV, NO_SERVICE_THERE)
    apply_offline_defaults()
    assert WANDB_SERVICE_ENV not in os.environ


def test_train_logs_to_its_own_service_despite_an_inherited_token(tmp_path):
    env = dict(subprocess_env(), **{WANDB_SERVICE_ENV: NO_SERVICE_THERE})
    overrides = ["trainer.max_steps=1", "trainer.num_sanity_val_steps=0", "callbacks.progress=null"]
    cmd = [sys.executable, str(REPO_ROOT / "train.py"), *overrides, f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((tmp_path / "run").rglob("offline-run-*"))  # the default W&B logger wrote its offline run
