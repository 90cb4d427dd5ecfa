"""Exact resume: a run killed with SIGKILL after a saved step and resumed ends bit-identical.

Both runs use fixed seeds on CPU. The killed run saves every 3 steps; it is killed (a real SIGKILL) once its
metrics show a step past a save, then resumed with ``ckpt_path=last`` (the newest checkpoint of the same
run name), which restores weights, optimizer, scheduler, step, RNG states and the position inside the
epoch. The final trainable weights must equal those of an uninterrupted run exactly, and the resumed
run must continue the same W&B run id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import run_cli, subprocess_env
from tests.helpers.paths import REPO_ROOT

COMMON = [
    "data.synthetic.num_scenes=64",  # 56 training samples: 7 batches per epoch, so runs cross epochs
    "trainer.max_steps=15",
    "trainer.max_epochs=-1",
    "trainer.num_sanity_val_steps=0",
    "trainer.val_check_interval=1.0",
    "callbacks.checkpoint.every_n_train_steps=3",
    "callbacks.progress=null",
]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 15
    return state["state_dict"]


def last_step(metrics: Path) -> int:
    if not metrics.exists():
        return 0
    steps = [json.loads(line).get("step", 0) for line in metrics.read_text().splitlines() if line.strip()]
    return max(steps, default=0)


def wandb_ids(output_dir: Path) -> set[str]:
    return {path.name.rsplit("-", 1)[-1] for path in output_dir.rglob("offline-run-*") if path.is_dir()}


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    straight = tmp_path / "straight"
    done = run_cli("train.py", *COMMON, "logger=none", f"hydra.run.dir={straight}", "name=straight")
    assert done.returncode == 0, done.stderr[-2000:]

    outputs = tmp_path / "outputs"
    args = [*COMMON, "name=killed", f"paths.output_dir={outputs}"]
    env = subprocess_env()
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "train.py"), *args], cwd=REPO_ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        runs = list((outputs / "train").glob("*_killed*/metrics.jsonl"))
        if runs and last_step(runs[0]) >= 8:  # past the save at step 6, before the end at 15
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    first_ids = wandb_ids(outputs)

    resumed = run_cli("train.py", *args, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    runs = sorted((outputs / "train").glob("*_killed*"), key=lambda p: p.stat().st_mtime)
    expected, actual = final_weights(straight), final_weights(runs[-1])
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert wandb_ids(outputs) == first_ids and len(first_ids) == 1  # the same W&B run continues
