"""Item 12: every run owns its W&B service.

A ``WANDB_SERVICE`` token inherited from a parent (a test runner or notebook that logged in-process, a
driver script) makes a child run register its run id with the parent's service. If that child is killed,
the parent's service keeps the id "in use" and the resumed run fails with ``run ID ... is in use``. The
entry points drop the inherited token, and the study runner never hands it to its steps.
"""

from __future__ import annotations

import os
import sys

from lvlm.study.process import Signals, run_logged
from lvlm.utils.runtime import WANDB_SERVICE_ENV, apply_offline_defaults

INHERITED_TOKEN = "3-12345-tcp-localhost-40404"


def test_entry_point_setup_drops_an_inherited_service_token(monkeypatch):
    monkeypatch.setenv(WANDB_SERVICE_ENV, INHERITED_TOKEN)
    apply_offline_defaults()
    assert WANDB_SERVICE_ENV not in os.environ


def test_study_steps_do_not_inherit_the_runner_service_token(tmp_path, monkeypatch):
    monkeypatch.setenv(WANDB_SERVICE_ENV, INHERITED_TOKEN)
    log = tmp_path / "step.log"
    script = f"import os; print('token=' + os.environ.get({WANDB_SERVICE_ENV!r}, 'none'))"
    code = run_logged([sys.executable, "-c", script], cwd=tmp_path, log_path=log, signals=Signals())
    assert code == 0
    assert "token=none" in log.read_text()
