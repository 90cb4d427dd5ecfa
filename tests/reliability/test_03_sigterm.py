"""Item 3: SIGTERM (SLURM preemption) ends ``train.py`` with exit code 143 after saving a resumable
checkpoint, ``skipped.json``, the metrics so far and a summary marked interrupted."""

from __future__ import annotations

import json
import signal

import pytest
import torch

from tests.helpers.cli import run_cli
from tests.helpers.process import finish, start_cli, wait_until

pytestmark = pytest.mark.slow
COMMON = ["trainer.max_epochs=-1", "logger=none", "~callbacks.progress", "data.num_workers=0"]


def _steps(run_dir) -> list[int]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line)["step"] for line in lines if "train/loss" in json.loads(line)]


def test_sigterm_saves_a_resumable_checkpoint_and_exits_143(tmp_path):
    first = tmp_path / "first"
    proc = start_cli("train.py", "trainer.max_steps=100000", *COMMON, f"hydra.run.dir={first}",
                     log_dir=tmp_path / "log")  # fmt: skip
    wait_until(lambda: len(_steps(first)) >= 2, proc, timeout=300, what="the first metrics lines")
    proc.send_signal(signal.SIGTERM)
    code = finish(proc, timeout=120)
    stderr = (tmp_path / "log" / "stderr.txt").read_text()
    assert code == 143, stderr[-3000:]
    assert "Traceback" not in stderr
    ckpt = first / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
    assert saved >= max(_steps(first)) >= 2
    assert json.loads((first / "skipped.json").read_text())["total"] == 0
    run = json.loads((first / "run.json").read_text())
    assert run["status"] == "interrupted" and run["summary"]["checkpoint"] == str(ckpt)
    assert "interrupted" in (tmp_path / "log" / "stdout.txt").read_text()

    second = tmp_path / "second"
    resumed = run_cli("train.py", f"trainer.max_steps={saved + 2}", *COMMON, f"ckpt_path={ckpt}",
                      f"hydra.run.dir={second}")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _steps(second) == [saved + 1, saved + 2]

    # ckpt_path=auto (what study.py passes): rerun into the stopped run's own directory → it continues there
    again = run_cli("train.py", f"trainer.max_steps={saved + 1}", *COMMON, "ckpt_path=auto",
                    f"hydra.run.dir={first}")  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert _steps(first)[-1] == saved + 1 and saved + 1 not in _steps(first)[:-1]
    assert json.loads((first / "run.json").read_text())["status"] == "finished"
    # ... and into a directory without a checkpoint it starts from step 1
    fresh = tmp_path / "fresh"
    started = run_cli("train.py", "trainer.max_steps=1", *COMMON, "ckpt_path=auto", f"hydra.run.dir={fresh}")
    assert started.returncode == 0, started.stderr[-3000:]
    assert _steps(fresh) == [1]
