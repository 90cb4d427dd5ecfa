"""Item 6: missing, empty, truncated, non-checkpoint and mismatched checkpoint files given to
``ckpt_path``, ``init_from`` or ``evaluate.py model.kind=checkpoint`` are one line each (what is wrong with
which file, what to pass instead), found before the model and data are built."""

from __future__ import annotations

import pytest

from lvlm.models.checkpoint import CheckpointError, check_resume_setup, read_checkpoint
from tests.helpers.broken_files import write_broken_checkpoints
from tests.helpers.checkpoints import model_cfg_with, save_checkpoint, tiny_module
from tests.helpers.cli import run_cli

EXPECTED = {
    "missing": "not found",
    "empty": "is empty (0 bytes)",
    "not_torch": "is truncated or not a torch file",
    "truncated": "is truncated or not a torch file",
    "no_state_dict": "has no state_dict",
    "foreign": "not an lvlm checkpoint",
}
FINETUNE = {"vision": False, "projector": True, "llm": True}


@pytest.fixture(scope="module")
def good_ckpt(tiny_model_cfg, tmp_path_factory):
    return save_checkpoint(tiny_module(tiny_model_cfg), tmp_path_factory.mktemp("good") / "last.ckpt")


@pytest.fixture(scope="module")
def broken(good_ckpt, tmp_path_factory):
    return write_broken_checkpoints(tmp_path_factory.mktemp("broken"), good=good_ckpt)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_read_checkpoint_is_one_line_per_kind(broken, kind):
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(broken[kind], what="ckpt_path checkpoint")
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(broken[kind]))
    assert EXPECTED[kind] in message and "fix: pass a .ckpt file written by train.py" in message


def test_resume_from_another_model_config_says_so(tiny_model_cfg, good_ckpt):
    other = model_cfg_with(tiny_model_cfg, hidden_size=32)
    with pytest.raises(CheckpointError, match=r"another model config \(model\.llm\.config\.hidden_size"):
        check_resume_setup(read_checkpoint(good_ckpt), other, FINETUNE)


def test_resume_from_another_stage_says_so(tiny_model_cfg, good_ckpt):
    pretrain = {"vision": False, "projector": True, "llm": False}
    with pytest.raises(CheckpointError, match=r"trains llm, projector; this run trains projector"):
        check_resume_setup(read_checkpoint(good_ckpt), tiny_model_cfg, pretrain)


def test_resume_tolerates_runtime_only_switches(tiny_model_cfg, good_ckpt):
    changed = {**tiny_model_cfg, "recipe": {"finetune_lr": 1.0}, "gradient_checkpointing": True}
    check_resume_setup(read_checkpoint(good_ckpt), changed, FINETUNE)


def _error_line(result) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    return line


@pytest.mark.slow
@pytest.mark.parametrize(("arg", "kind"), [("ckpt_path", "truncated"), ("init_from", "empty")])
def test_train_py_checks_checkpoints_before_building_anything(broken, tmp_path, arg, kind):
    run_dir = tmp_path / "run"
    line = _error_line(run_cli("train.py", f"{arg}={broken[kind]}", "debug=fast", f"hydra.run.dir={run_dir}"))
    assert str(broken[kind]) in line and EXPECTED[kind] in line and "fix:" in line
    assert "trainable parameters" not in (run_dir / "train.log").read_text()  # the model was never built


@pytest.mark.slow
def test_train_py_resume_from_another_model_config_is_one_line(tiny_model_cfg, tmp_path):
    path = save_checkpoint(tiny_module(model_cfg_with(tiny_model_cfg, hidden_size=32)), tmp_path / "h.ckpt")
    line = _error_line(run_cli("train.py", f"ckpt_path={path}", "debug=fast", f"hydra.run.dir={tmp_path}/r"))
    assert "another model config (model.llm.config.hidden_size" in line and "init_from" in line


@pytest.mark.slow
def test_evaluate_py_broken_checkpoint_is_one_line(broken, tmp_path):
    args = ["model.kind=checkpoint", f"model.checkpoint={broken['not_torch']}", "wandb.enabled=false",
            f"hydra.run.dir={tmp_path}"]  # fmt: skip
    line = _error_line(run_cli("evaluate.py", *args))
    assert str(broken["not_torch"]) in line and EXPECTED["not_torch"] in line
