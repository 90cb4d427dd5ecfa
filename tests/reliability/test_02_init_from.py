"""Item 2: ``init_from`` never loads nothing (or the wrong thing) silently.

It loads exactly the tensors this stage trains, fails with one line when shapes differ, when the
checkpoint lacks a tensor the stage trains, or when its tensors are named for another model (LoRA vs
full weights), and it never touches frozen weights (those are rebuilt from the model config when the
checkpoint is evaluated, so loading them would train on a model nobody can rebuild).
"""

from __future__ import annotations

import copy
import re

import pytest
import torch

from lvlm.models.checkpoint import CheckpointError, init_from
from tests.helpers.checkpoints import model_cfg_with, save_checkpoint, tiny_module
from tests.helpers.cli import run_cli


@pytest.fixture(scope="module")
def finetune_ckpt(tiny_model_cfg, tmp_path_factory):
    module = tiny_module(tiny_model_cfg, "finetune", seed=1)
    return save_checkpoint(module, tmp_path_factory.mktemp("ft") / "last.ckpt")


def test_loads_only_what_this_stage_trains(tiny_model_cfg, finetune_ckpt):
    module = tiny_module(tiny_model_cfg, "pretrain")
    frozen_before = {k: v.clone() for k, v in module.state_dict().items() if k.startswith("model.llm.")}
    counts = init_from(module, finetune_ckpt, module.trainable_keys)
    saved = torch.load(finetune_ckpt, weights_only=False)["state_dict"]
    projector = [k for k in saved if k.startswith("model.projector.")]
    assert counts["loaded"] == len(projector) == len(module.trainable_keys)
    assert counts["not_trained_here"] == len(saved) - len(projector) > 0
    after = module.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen_before.items())  # frozen LLM untouched
    assert all(torch.equal(after[k], saved[k]) for k in projector)


def test_other_hidden_size_is_one_line(tiny_model_cfg, tmp_path):
    other = tiny_module(model_cfg_with(tiny_model_cfg, hidden_size=32, intermediate_size=88))
    path = save_checkpoint(other, tmp_path / "h32.ckpt")
    module = tiny_module(tiny_model_cfg)
    with pytest.raises(CheckpointError, match=r"has shape .* but this model's is") as info:
        init_from(module, path, module.trainable_keys)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_trained_tensor_is_one_line(tiny_model_cfg, finetune_ckpt, tmp_path):
    state = torch.load(finetune_ckpt, weights_only=False)["state_dict"]
    dropped = next(k for k in state if k.startswith("model.llm.") and k.endswith("o_proj.weight"))
    module = tiny_module(tiny_model_cfg)
    path = save_checkpoint(tiny_module(tiny_model_cfg, seed=2), tmp_path / "partial.ckpt", drop=(dropped,))
    with pytest.raises(CheckpointError, match=re.escape(f"lacks '{dropped}'")):
        init_from(module, path, module.trainable_keys)


def test_tensors_named_for_another_model_are_one_line(tiny_model_cfg, tmp_path):
    lora_cfg = copy.deepcopy(tiny_model_cfg)
    lora_cfg["peft"] = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    path = save_checkpoint(tiny_module(lora_cfg), tmp_path / "lora.ckpt")
    module = tiny_module(tiny_model_cfg)  # full-weight LLM: the LoRA names match nothing in it
    with pytest.raises(CheckpointError, match=re.escape("lacks 'model.llm.")):
        init_from(module, path, module.trainable_keys)


@pytest.mark.slow
def test_train_py_init_from_other_hidden_size_exits_2_with_one_line(tiny_model_cfg, tmp_path):
    other = tiny_module(model_cfg_with(tiny_model_cfg, hidden_size=32, intermediate_size=88))
    path = save_checkpoint(other, tmp_path / "h32.ckpt")
    result = run_cli("train.py", f"init_from={path}", "debug=fast", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert str(path) in line and "shape" in line and "fix:" in line
