"""The runner end to end on a tiny study: kill it, resume it, compare with an uninterrupted run, change a row.

Rows: ``base`` (text-only tuning of the tiny LLM), ``stage1`` (projector, not evaluated) and ``fovit``
(``llm_from: base`` through ``export.py``, ``init_from: stage1``). Slow: about ten processes of train.py,
export.py and evaluate.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml

from lvlm.study.graph import CHECKPOINT
from tests.helpers.cli import run_cli, subprocess_env
from tests.helpers.paths import REPO_ROOT
from tests.study.studies import TINY_STEPS, tiny_study, write_study

EVALS = ("eval/base/s0", "eval/fovit/s0")


def records(out: Path) -> dict[str, dict]:
    return {name: json.loads((out / name / "step.json").read_text())
            for name in TINY_STEPS if (out / name / "step.json").is_file()}  # fmt: skip


def last_invocation(out: Path) -> dict[str, set[str]]:
    """``event → steps`` of the last run recorded in ``study.log``."""
    lines = [line.split() for line in (out / "study.log").read_text().splitlines()]
    last = [fields[1] for fields in lines if fields[2] == "run-start"][-1]
    events: dict[str, set[str]] = {}
    for fields in lines:
        if fields[1] == last:
            events.setdefault(fields[2], set()).add(fields[3])
    return events


def status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        return None


def run_study(path: Path, out: Path) -> subprocess.CompletedProcess:
    result = run_cli("study.py", str(path), "--out", str(out), timeout=3600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def same_results(one: Path, other: Path) -> bool:
    """Byte-identical; if HEAD moved while the test ran (a commit landed), all but ``git_hash``."""
    first, second = one.read_bytes(), other.read_bytes()
    if first == second:
        return True
    a, b = json.loads(first), json.loads(second)
    if a.get("git_hash") != b.get("git_hash"):
        warnings.warn("HEAD moved during the test; results.json compared without git_hash", stacklevel=2)
        a.pop("git_hash"), b.pop("git_hash")
        return a == b
    return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_killed_study_resumes_and_matches_an_uninterrupted_run(tmp_path):
    path = write_study(tmp_path / "study", tiny_study())
    a, b = tmp_path / "a", tmp_path / "b"

    # 1. an uninterrupted run
    result = run_study(path, a)
    assert "LLM (tiny)" in result.stdout and "LVLM FOVIT (tiny)" in result.stdout  # the report table
    assert f"{a}/eval/fovit/s0/results.json" in result.stdout and f"{a}/study.log" in result.stdout
    assert all(r["status"] == "done" for r in records(a).values()) and len(records(a)) == len(TINY_STEPS)

    # 2. the same study elsewhere, SIGTERM to the runner's process group once its first training step is done
    log = (tmp_path / "b.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "study.py"), str(path), "--out", str(b)], cwd=REPO_ROOT,
        env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    first, second = b / "train/base/s0/step.json", b / "train/stage1/s0/_job.json"
    deadline = time.time() + 1800
    while not (status(first) == "done" and status(second) == "running"):  # stage1 runs in the same multirun
        assert proc.poll() is None, (tmp_path / "b.log").read_text()[-3000:]
        assert time.time() < deadline
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=300) == 128 + signal.SIGTERM
    assert "interrupted by signal 15" in (tmp_path / "b.log").read_text()
    killed = records(b)
    assert not [n for n, r in killed.items() if r["status"] == "running"], killed
    markers = [json.loads(p.read_text()) for p in b.rglob("_job.json")]
    time.sleep(1)
    assert not [m["pid"] for m in markers if alive(int(m["pid"])) and m["pid"] != os.getpid()]
    done_before = {n for n, r in killed.items() if r["status"] == "done"}
    assert "train/base/s0" in done_before and "report" not in done_before
    if "train/stage1/s0" not in done_before:  # the usual case: SIGTERM reached stage1 mid-job
        assert killed["train/stage1/s0"]["status"] == "interrupted"
    saved = {n for n, r in killed.items() if r["status"] == "interrupted" and (b / n / CHECKPOINT).is_file()}

    # 3. rerun: only what was not done runs; the results are byte-identical to the uninterrupted run
    run_study(path, b)
    events = last_invocation(b)
    assert events["start"] == set(TINY_STEPS) - done_before
    assert events["skip"] == done_before
    resumed = records(b)
    for name in done_before:
        assert resumed[name]["run_id"] == killed[name]["run_id"], name
    for name in EVALS:
        assert same_results(a / name / "results.json", b / name / "results.json"), name
    interrupted = {n for n, r in killed.items() if r["status"] == "interrupted"}
    assert interrupted <= events["start"]
    # a training step SIGTERM stopped after it saved last.ckpt continues in place; the others start over
    assert events.get("resume", set()) == saved and interrupted - saved <= events.get("moved-aside", set())
    for name in saved:  # it continued from the saved step (the results are checked against run a below)
        assert "ckpt_path=auto: resuming" in (b / name / "train.log").read_text(), name

    # W&B: one group per study, job types, the row's tags; study.json beside results.json
    train_cfg = yaml.safe_load((b / "train/fovit/s0/config.yaml").read_text())
    wandb = train_cfg["logger"]["wandb"]
    assert (wandb["group"], wandb["job_type"], wandb["tags"]) == ("tiny_study", "train", ["vit", "fo"])
    eval_cfg = yaml.safe_load((b / "eval/fovit/s0/config.yaml").read_text())
    assert (eval_cfg["wandb"]["group"], eval_cfg["wandb"]["job_type"], eval_cfg["wandb"]["tags"]) == (
        "tiny_study", "eval", ["vit", "fo"])  # fmt: skip
    assert json.loads((b / "eval/fovit/s0/study.json").read_text()) == {
        "name": "tiny_study", "row": "fovit", "label": "LVLM FOVIT (tiny)", "seed": 0,
        "condition_tags": ["vit", "fo"]}  # fmt: skip

    # 4. nothing to do on a third run; a changed row reruns that row, its dependents and the report only
    dry = run_cli("study.py", str(path), "--out", str(b), "--dry-run")
    assert "7 steps — 7 done, 0 stale, 0 to do" in dry.stdout and "nothing to run" in dry.stdout
    changed = tiny_study()
    changed["rows"]["fovit"]["train"] = ["stage=finetune", "trainer.max_steps=3"]
    write_study(tmp_path / "study", changed)
    run_study(path, a)
    assert last_invocation(a)["start"] == {"train/fovit/s0", "eval/fovit/s0", "report"}
    assert same_results(a / "eval/base/s0/results.json", b / "eval/base/s0/results.json")


@pytest.mark.slow
def test_joblib_launcher_runs_rows_in_parallel_processes(tmp_path):
    """Two evaluation-only rows (the in-process tiny LVLM) as one joblib multirun: one process per job."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    study = {
        "name": "tiny_joblib", "seeds": [0], "launcher": "joblib",
        "eval_defaults": ["eval.limit=1", "eval.tasks=[sst2]", "eval.label_systems=[natural]"],
        "rows": {"a": {"evaluate": ["model.kind=tiny"]},
                 "b": {"evaluate": ["model.kind=tiny", "eval.max_new_tokens=4"]}},
        "report": {"wandb": False},
    }  # fmt: skip
    path = write_study(tmp_path / "study", study)
    out = tmp_path / "out"
    result = run_cli("study.py", str(path), "--out", str(out), timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    markers = {row: json.loads((out / f"eval/{row}/s0/_job.json").read_text()) for row in ("a", "b")}
    assert all(m["status"] == "completed" for m in markers.values())
    launched = json.loads((out / "eval/a/s0/step.json").read_text())["command"]
    assert "hydra/launcher=joblib" in launched and "+study_eval=a,b" in launched
    assert markers["a"]["pid"] != markers["b"]["pid"], "joblib ran both jobs in one process"
