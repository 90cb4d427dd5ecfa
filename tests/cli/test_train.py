"""End-to-end training through ``train.py``: smoke, learning, resume, DDP, multirun, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import run_cli

pytestmark = pytest.mark.slow
QUIET = ["logger=none", "~callbacks.progress"]


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _ok(result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def test_fast_dev_run(tmp_path):
    result = run_cli("train.py", "debug=fast", f"hydra.run.dir={tmp_path}")
    _ok(result)
    assert (tmp_path / "config.yaml").exists()
    assert "run_dir" in result.stdout


def test_short_training_lowers_the_loss(tmp_path):
    _ok(
        run_cli(
            "train.py", "trainer.max_steps=60", "trainer.max_epochs=-1", *QUIET, f"hydra.run.dir={tmp_path}"
        )
    )
    losses = [m["train/loss"] for m in _metrics(tmp_path) if "train/loss" in m]
    assert len(losses) == 60
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, (first, last)


def test_resume_continues_at_the_saved_step(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    common = ["trainer.max_epochs=-1", "callbacks.checkpoint.every_n_train_steps=8", *QUIET]
    _ok(run_cli("train.py", "trainer.max_steps=8", *common, f"hydra.run.dir={first}"))
    ckpt = first / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["global_step"] == 8
    keys = list(state["state_dict"])
    assert keys and not any(k.startswith("model.vision.") for k in keys)  # trainable-only
    assert any(k.startswith("model.projector.") for k in keys) and any(
        k.startswith("model.llm.") for k in keys
    )
    _ok(run_cli("train.py", "trainer.max_steps=12", *common, f"ckpt_path={ckpt}", f"hydra.run.dir={second}"))
    steps = [m["step"] for m in _metrics(second) if "train/loss" in m]
    assert steps[0] == 9 and steps[-1] == 12


def test_ddp_two_cpu_processes(tmp_path):
    result = run_cli(
        "train.py",
        "trainer=ddp_cpu",
        "trainer.max_steps=4",
        "trainer.max_epochs=-1",
        *QUIET,
        f"hydra.run.dir={tmp_path}",
    )
    _ok(result)
    steps = [m["step"] for m in _metrics(tmp_path) if "train/loss" in m]
    assert steps == [1, 2, 3, 4]  # written once, by rank 0
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4


def test_multirun_gives_separate_dirs_and_wandb_runs(tmp_path):
    result = run_cli(
        "train.py",
        "--multirun",
        "seed=0,1",
        "trainer.max_steps=3",
        "trainer.max_epochs=-1",
        "~callbacks.progress",
        f"hydra.sweep.dir={tmp_path}",
    )
    _ok(result)
    job_dirs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and (p / "config.yaml").exists())
    assert [p.name for p in job_dirs] == ["0_tiny-synthetic-finetune-s0", "1_tiny-synthetic-finetune-s1"]
    runs = [list((p / "wandb").glob("offline-run-*")) for p in job_dirs]
    assert all(len(r) == 1 for r in runs)
    assert runs[0][0].name.split("-")[-1] != runs[1][0].name.split("-")[-1]


def test_bad_dataset_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "r0", "conversations": [{"from": "human", "value": "hi"}]}]))
    args = ["data=llava_instruct", f"data.train_json={bad}", f"data.image_root={tmp_path}", *QUIET]
    result = run_cli("train.py", *args, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {bad}: record r0: conversation has no assistant turn; fix: add a 'gpt' answer "
        "or drop the record"
    ]
    assert "Traceback" not in result.stderr


def test_skip_policy_reports_skipped_records(tmp_path):
    good = {"id": "g", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    bad = {"id": "b", "image": "missing.png", "conversations": good["conversations"]}
    data = tmp_path / "d.json"
    data.write_text(json.dumps([good] * 20 + [bad]))
    args = [
        "data=llava_instruct",
        f"data.train_json={data}",
        f"data.image_root={tmp_path}",
        "data.on_error=skip",
        "data.num_workers=0",
        "data.batch_size=4",
        "trainer.max_steps=2",
        "trainer.max_epochs=-1",
    ]
    _ok(run_cli("train.py", *args, *QUIET, f"hydra.run.dir={tmp_path / 'run'}"))
    report = json.loads((tmp_path / "run" / "skipped.json").read_text())
    assert report["total"] == 1 and "missing.png" in report["examples"]["image file not found"][0]


def test_eval_callback_logs_label_system_f1_to_the_logger(tmp_path):
    args = [
        "callbacks=with_eval",
        "logger=csv",
        "trainer.max_steps=4",
        "trainer.max_epochs=-1",
        "callbacks.verbalizer_eval.every_n_steps=2",
        "callbacks.verbalizer_eval.overrides.limit=2",
        "callbacks.verbalizer_eval.overrides.tasks=[sst2]",
        "~callbacks.progress",
    ]
    _ok(run_cli("train.py", *args, f"hydra.run.dir={tmp_path}"))
    rows = (next((tmp_path / "csv").rglob("metrics.csv"))).read_text().splitlines()
    header = rows[0].split(",")
    for name in ("eval/natural/f1", "eval/neutral/f1", "eval/unnatural/f1", "eval/all/f1"):
        assert name in header
    logged = [row.split(",") for row in rows[1:] if row.split(",")[header.index("eval/all/f1")]]
    assert {int(r[header.index("step")]) for r in logged} == {2, 4}
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["step_000002", "step_000004"]


@pytest.fixture(scope="module")
def tiny_stage1_projector(tmp_path_factory, tiny_model_cfg) -> Path:
    """A stage-1 checkpoint of the tiny preset (its projector only), as the VIT rows' ``init_from``."""
    from lvlm.models.checkpoint import checkpoint_metadata, frozen_fingerprint
    from lvlm.models.presets import build_model
    from lvlm.utils.seeding import seed_all

    seed_all(0)
    model = build_model(tiny_model_cfg).model
    state = {f"model.projector.{key}": value for key, value in model.projector.state_dict().items()}
    fingerprint = frozen_fingerprint(model, {key.removeprefix("model.") for key in state})
    base = {"model": tiny_model_cfg, "seed": 0, "template": "plain"}
    path = tmp_path_factory.mktemp("stage1") / "last.ckpt"
    torch.save({"state_dict": state, "lvlm": checkpoint_metadata(fingerprint, state, base)}, path)
    return path


@pytest.mark.parametrize("experiment", ["fovit", "nofovit", "foit", "nofoit", "pretrain_lcs558k"])
def test_fast_dev_run_of_every_experiment_on_tiny_stand_ins(tmp_path, experiment, request):
    args = [
        f"experiment={experiment}",
        "model=tiny",
        "trainer=cpu",
        "debug=fast",
        "data.num_workers=0",
        "data.batch_size=2",
        f"hydra.run.dir={tmp_path}",
    ]
    if experiment in ("fovit", "nofovit"):  # the VIT rows require the stage-1 projector (init_from: ???)
        args.append(f"init_from={request.getfixturevalue('tiny_stage1_projector')}")
    if experiment == "pretrain_lcs558k":  # the real LCS-558K sample (first 10 records and their images)
        shared_data = request.getfixturevalue("shared_data")
        args += [
            f"data.train_json={shared_data / 'llava/blip_laion_cc_sbu_558k_first10.json'}",
            f"data.image_root={shared_data / 'llava/lcs558k_images'}",
            "data.val_fraction=0.2",
        ]
    _ok(run_cli("train.py", *args))
    assert (tmp_path / "config.yaml").exists()
