"""Issue #8 item 7: ``evaluate.py model.kind=checkpoint`` honours ``model.dtype`` and ``model.device``."""

from __future__ import annotations

import pytest
import torch

from lvlm.errors import ConfigError
from lvlm.eval.models.registry import EVAL_MODELS
from lvlm.eval.scoring.scorers import run_scorer
from lvlm.eval.types import PromptItem
from tests.eval.tiny_checkpoint import write_tiny_checkpoint
from tests.helpers.cli import run_cli

PROMPT = 'If a movie review is positive, you need to output "foo". If it is negative, output "bar".\n'


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_cfg):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "last.ckpt", tiny_model_cfg)


def _build(path, dtype="float32", device="cpu", image_slot="none"):
    model = {"kind": "checkpoint", "checkpoint": str(path), "dtype": dtype, "device": device}
    return EVAL_MODELS.get("checkpoint")({"model": model, "eval": {"image_slot": image_slot}})


def _items() -> list[PromptItem]:
    reviews = ["lovely and poignant.", "bad .", "a gorgeous , witty movie ."]
    return [
        PromptItem("sst2", str(i), "neutral_foo_bar", "neutral", f"{PROMPT}Movie review: {r}\nAnswer:",
                   ("foo", "bar"), i % 2)
        for i, r in enumerate(reviews)
    ]  # fmt: skip


@pytest.mark.parametrize("image_slot", ["none", "blank"])
def test_bfloat16_checkpoint_has_bf16_parameters_and_predicts(checkpoint, image_slot):
    model = _build(checkpoint, "bfloat16", image_slot=image_slot)
    assert {p.dtype for p in model.lvlm.parameters()} == {torch.bfloat16}
    run = run_scorer("generate", model, _items(), batch_size=2, progress=False, max_new_tokens=3)
    assert len(run.predictions) == 3 and all(p.extra["n_tokens"] <= 3 for p in run.predictions)
    assert any(p.raw for p in run.predictions)
    assert model.fingerprint != _build(checkpoint, image_slot=image_slot).fingerprint


def test_float32_stays_the_default(checkpoint):
    assert {p.dtype for p in _build(checkpoint).lvlm.parameters()} == {torch.float32}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_clear_error_line(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match=r"model\.device=cuda but CUDA is not available on this machine"):
        _build(checkpoint, device="cuda")
    result = run_cli(
        "evaluate.py", "model.kind=checkpoint", f"model.checkpoint={checkpoint}", "model.device=cuda",
        "model.dtype=bfloat16", "wandb.enabled=false", f"hydra.run.dir={tmp_path}", timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "model.device=cuda but CUDA is not available" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
