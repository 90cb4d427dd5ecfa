"""Item 8: run directories are unique by default (a run-id suffix: SLURM job, torchrun rendezvous or
random), and a run refuses, with one line, to write into a directory that holds another run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from lvlm.errors import ConfigError
from lvlm.utils.runtime import claim_run_dir, run_id
from tests.helpers.paths import REPO_ROOT
from tests.helpers.process import finish, start_cli

PRINT_ID = "from lvlm.utils.runtime import run_id; print(run_id())"


def _run_id_in_subprocess(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_", "MASTER_"))}
    out = subprocess.run([sys.executable, "-c", PRINT_ID], env={**clean, **env}, capture_output=True,
                         text=True, check=True, cwd=REPO_ROOT)  # fmt: skip
    return out.stdout.strip()


def test_run_ids_differ_between_processes_and_follow_slurm_and_torchrun():
    assert run_id() == run_id()  # stable within a process
    assert _run_id_in_subprocess() != _run_id_in_subprocess()
    assert _run_id_in_subprocess(SLURM_JOB_ID="4242") == "j4242"
    assert _run_id_in_subprocess(SLURM_JOB_ID="4242", SLURM_ARRAY_TASK_ID="3") == "j4242_3"
    torchrun = {"TORCHELASTIC_RUN_ID": "abc", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    assert _run_id_in_subprocess(**torchrun) == _run_id_in_subprocess(**torchrun)  # every rank agrees


@pytest.mark.parametrize("config", ["train", "evaluate"])
def test_default_run_and_sweep_dirs_carry_the_run_id(config):
    hydra_cfg = yaml.safe_load((REPO_ROOT / "conf" / f"{config}.yaml").read_text())["hydra"]
    assert hydra_cfg["run"]["dir"].endswith("_${lvlm_run_id:}")
    assert hydra_cfg["sweep"]["dir"].endswith("_${lvlm_run_id:}")


def test_claim_refuses_a_directory_of_another_run(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"run_id": "other", "status": "finished"}))
    with pytest.raises(ConfigError) as info:
        claim_run_dir(tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message and "run other (finished)" in message
    assert "hydra.run.dir" in message


def test_claim_refuses_results_without_a_run_record(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(ConfigError, match="another run's files"):
        claim_run_dir(tmp_path)


def test_claim_allows_a_fresh_dir_a_failed_run_and_a_resume_from_inside(tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".hydra").mkdir()  # Hydra writes its own files before the job starts
    assert claim_run_dir(fresh)["run_id"] == run_id()
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "run.json").write_text(json.dumps({"run_id": "old", "status": "failed"}))
    claim_run_dir(failed)
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    (resumed / "run.json").write_text(json.dumps({"run_id": "old", "status": "interrupted"}))
    record = claim_run_dir(resumed, resume_from=resumed / "checkpoints" / "last.ckpt")
    assert record["run_id"] == run_id() and record["previous_run_ids"] == ["old"]


@pytest.mark.slow
def test_two_train_py_runs_into_one_explicit_dir(tmp_path):
    run_dir = tmp_path / "shared"
    args = ["debug=fast", f"hydra.run.dir={run_dir}"]
    procs = [start_cli("train.py", *args, log_dir=tmp_path / f"log{i}") for i in range(2)]
    codes = sorted(finish(proc, timeout=600) for proc in procs)
    stderr = "".join((tmp_path / f"log{i}" / "stderr.txt").read_text() for i in range(2))
    assert codes == [0, 2], stderr[-3000:]
    (line,) = [x for x in stderr.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: {run_dir}: already holds run ") and "Traceback" not in stderr
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
