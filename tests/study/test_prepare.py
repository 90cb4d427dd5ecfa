"""Before a step runs, its earlier folder is moved aside — except a stopped training step with unchanged
inputs and a saved ``last.ckpt``, which is kept so that ``ckpt_path=auto`` continues it (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvlm.study.execute import Runner
from lvlm.study.graph import CHECKPOINT, build_steps
from lvlm.study.hydra_callback import MARKER
from lvlm.study.spec import load_study
from lvlm.study.state import PREVIOUS_DIR, make_plan, write_record
from tests.study.studies import tiny_study, write_study

STEP = "train/fovit/s0"


def stopped_attempt(tmp_path: Path, fingerprint: str | None, checkpoint: bool) -> tuple[Runner, Path]:
    """A runner for the tiny study and a folder of ``STEP`` left by an interrupted attempt."""
    study = load_study(write_study(tmp_path / "study", tiny_study()))
    out = tmp_path / "out"
    out.mkdir()
    steps = build_steps(study, out)
    runner = Runner(study, make_plan(steps, out), out, launcher="basic", print_fn=lambda text: None)
    directory = steps[STEP].directory(out)
    current = runner.plan[STEP].fingerprint
    write_record(directory, {"status": "interrupted", "fingerprint": fingerprint or current})
    (directory / MARKER).write_text('{"status": "failed"}')
    if checkpoint:
        (directory / CHECKPOINT).parent.mkdir(parents=True)
        (directory / CHECKPOINT).write_bytes(b"saved at SIGTERM")
    return runner, directory


def test_a_stopped_training_step_is_kept_for_ckpt_path_auto(tmp_path):
    runner, directory = stopped_attempt(tmp_path, fingerprint=None, checkpoint=True)
    runner.prepare(runner.plan[STEP].step)
    assert (directory / CHECKPOINT).read_bytes() == b"saved at SIGTERM"
    assert not (directory / MARKER).exists()  # the old attempt's marker must not end the new job
    assert f"resume {STEP} from {CHECKPOINT}" in (runner.out / "study.log").read_text()
    assert not (runner.out / PREVIOUS_DIR).exists()


@pytest.mark.parametrize(
    ("fingerprint", "checkpoint"), [("other inputs", True), (None, False)], ids=["changed", "no-checkpoint"]
)
def test_other_stopped_training_steps_are_moved_aside(tmp_path, fingerprint, checkpoint):
    runner, directory = stopped_attempt(tmp_path, fingerprint=fingerprint, checkpoint=checkpoint)
    runner.prepare(runner.plan[STEP].step)
    assert not directory.exists()
    (moved,) = (runner.out / PREVIOUS_DIR / "train" / "fovit").iterdir()
    assert moved.name.startswith("s0@") and (moved / "step.json").exists()
