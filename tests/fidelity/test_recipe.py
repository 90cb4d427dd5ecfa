"""The paper rows resolve to LLaVA v1's Llama-2 recipe, and the global batch holds on any device count.

Upstream reference: LLaVA v1 ``scripts/finetune_lora.sh`` + ``llava/train/train.py`` defaults — LoRA r 64,
alpha 16, dropout 0.05 on every linear layer of the LLM but lm_head; lr 2e-5 for LLM and projector; global
batch 128 (16 per device × 8 GPUs); 1 epoch; cosine, 3 % warmup; weight decay 0; max length 2048; bf16 +
tf32. Stage 1: lr 2e-3, global batch 128, projector only. See docs/model.md.
"""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import LlamaConfig, LlamaForCausalLM

from lvlm.cli.train import check_required, trainer_options
from lvlm.errors import ConfigError
from lvlm.models.llm import apply_lora, lora_target_modules
from lvlm.training.batching import accumulation_steps, apply_global_batch, device_count
from lvlm.training.freeze import apply_stage
from lvlm.utils.runtime import register_resolvers
from tests.helpers.cli import run_cli
from tests.helpers.paths import REPO_ROOT

LLAMA_LINEARS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


def _compose(*overrides: str):
    register_resolvers()
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def _resolved(*overrides: str) -> dict:
    """model, stage and data resolved; trainer as written (its run dir needs a running Hydra app)."""
    cfg = _compose(*overrides)
    out = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "stage", "data")}
    out["trainer"] = OmegaConf.to_container(cfg.trainer, resolve=False)
    out["init_from"] = cfg.get("init_from")
    return out


def _tiny_llama() -> LlamaForCausalLM:
    """A stand-in with Llama-2's module structure (q/k/v/o, gate/up/down, lm_head), two layers."""
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2)  # fmt: skip
    return LlamaForCausalLM(config)


def test_fovit_resolves_to_llavas_llama2_lora_recipe():
    cfg = _resolved("experiment=fovit", "init_from=/x.ckpt")
    model, stage, data, trainer = cfg["model"], cfg["stage"], cfg["data"], cfg["trainer"]
    assert model["peft"] == {"r": 64, "alpha": 16, "dropout": 0.05, "target_modules": "all-linear"}
    assert stage["name"] == "finetune"
    assert stage["train"] == {"vision": False, "projector": True, "llm": True}
    assert stage["optimizer"]["_target_"] == "torch.optim.AdamW"
    assert stage["optimizer"]["lr"] == 2e-5  # the LLM's parameter group
    assert stage["part_lr"] == {"projector": 2e-5}
    assert stage["optimizer"]["weight_decay"] == 0.0
    assert stage["scheduler"]["_target_"] == "lvlm.training.schedules.cosine_with_warmup"
    assert stage["scheduler"]["warmup_ratio"] == 0.03
    assert trainer["max_epochs"] == 1 and trainer["precision"] == "bf16-mixed" and trainer["tf32"] is True
    assert data["max_length"] == 2048
    assert (data["global_batch_size"], data["batch_size"]) == (128, 16)
    assert cfg["init_from"] == "/x.ckpt"


@pytest.mark.parametrize("row", ["nofovit", "foit", "nofoit"])
def test_other_stage_2_rows_share_the_recipe(row):
    cfg = _resolved(f"experiment={row}", "init_from=/x.ckpt")
    assert cfg["model"]["peft"]["r"] == 64 and cfg["stage"]["optimizer"]["lr"] == 2e-5
    assert (cfg["data"]["global_batch_size"], cfg["data"]["batch_size"], cfg["data"]["max_length"]) == (
        128, 16, 2048,
    )  # fmt: skip
    assert cfg["trainer"]["max_epochs"] == 1 and cfg["trainer"]["precision"] == "bf16-mixed"


def test_stage_1_row_is_llavas_pretraining_recipe():
    cfg = _resolved("experiment=pretrain_lcs558k")
    assert cfg["stage"]["train"] == {"vision": False, "projector": True, "llm": False}
    assert cfg["stage"]["optimizer"]["lr"] == 2e-3 and cfg["stage"]["template"] == "plain"
    assert (cfg["data"]["global_batch_size"], cfg["data"]["batch_size"]) == (128, 16)
    assert cfg["trainer"]["max_epochs"] == 1


def test_all_linear_means_every_llm_linear_but_lm_head():
    llm = _tiny_llama()
    assert lora_target_modules(llm, "all-linear") == LLAMA_LINEARS
    wrapped = apply_lora(llm, {"r": 4, "alpha": 16, "dropout": 0.05, "target_modules": "all-linear"})
    adapted = [name for name, module in wrapped.named_modules() if hasattr(module, "lora_A")]
    layers = wrapped.base_model.model.model.layers
    assert len(adapted) == len(LLAMA_LINEARS) * len(layers)
    assert {name.rsplit(".", 1)[-1] for name in adapted} == set(LLAMA_LINEARS)
    assert not any("lm_head" in name for name, _ in wrapped.named_parameters() if "lora_" in name)
    assert wrapped.peft_config["default"].lora_dropout == 0.05


def test_full_fine_tuning_is_available():
    cfg = _compose("experiment=fovit", "init_from=/x.ckpt", "model/peft=none")
    peft = OmegaConf.to_container(cfg.model, resolve=True).get("peft")
    assert not peft
    llm = apply_lora(_tiny_llama(), peft or None)
    assert not hasattr(llm, "peft_config")
    from lvlm.models.lvlm import LVLM

    model = LVLM(torch.nn.Identity(), torch.nn.Linear(4, 32), llm, image_token_id=3)
    model.vision = torch.nn.Linear(1, 1)
    counts = apply_stage(model, OmegaConf.to_container(cfg.stage.train))
    assert counts["llm"] == sum(p.numel() for p in llm.parameters())


@pytest.mark.parametrize(("devices", "accumulate"), [(1, 8), (2, 4), (8, 1)])
def test_global_batch_128_on_1_2_8_devices(devices, accumulate):
    assert accumulation_steps(128, 16, devices) == accumulate
    cfg = _compose("experiment=fovit", "init_from=/x.ckpt", f"trainer.devices={devices}")
    assert apply_global_batch(cfg) == accumulate
    assert cfg.trainer.accumulate_grad_batches == accumulate
    per_step = cfg.data.batch_size * device_count(cfg.trainer) * cfg.trainer.accumulate_grad_batches
    assert per_step == 128


def test_global_batch_counts_nodes_and_device_lists():
    assert accumulation_steps(128, 16, 2, num_nodes=2) == 2
    assert device_count({"accelerator": "gpu", "devices": [0, 1, 2, 3]}) == 4
    assert device_count({"accelerator": "gpu", "devices": "0,1"}) == 2
    assert device_count({"accelerator": "cpu", "devices": "auto"}) == 1
    cfg = _compose("experiment=fovit", "init_from=/x.ckpt", "trainer=ddp")
    assert device_count(cfg.trainer) == max(torch.cuda.device_count(), 1)  # devices=-1: every GPU


def test_global_batch_that_does_not_divide_is_one_line():
    cfg = _compose("experiment=fovit", "init_from=/x.ckpt", "trainer.devices=3")
    with pytest.raises(ConfigError, match=r"global_batch_size=128 is not a multiple of .* = 48") as err:
        apply_global_batch(cfg)
    assert "\n" not in str(err.value)


def test_contradicting_accumulation_is_an_error_and_null_means_no_constraint():
    cfg = _compose("experiment=fovit", "init_from=/x.ckpt", "trainer.accumulate_grad_batches=4")
    with pytest.raises(ConfigError, match=r"contradicts data\.global_batch_size=128"):
        apply_global_batch(cfg)
    cfg = _compose("data.global_batch_size=null", "trainer.accumulate_grad_batches=3")
    assert apply_global_batch(cfg) is None and cfg.trainer.accumulate_grad_batches == 3


def test_tf32_is_switched_on_and_not_passed_to_the_trainer():
    cfg = _compose("experiment=fovit", "init_from=/x.ckpt", "trainer.default_root_dir=/tmp/x")
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        options = trainer_options(cfg)
        assert "tf32" not in options and options["precision"] == "bf16-mixed"
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("row", ["fovit", "nofovit"])
def test_vit_rows_require_the_stage_1_projector(row):
    cfg = _compose(f"experiment={row}")
    assert OmegaConf.is_missing(cfg, "init_from")
    with pytest.raises(ConfigError, match=r"missing required value\(s\): init_from; fix: .*init_from=") as e:
        check_required(cfg)
    assert "\n" not in str(e.value)


def test_vit_row_without_init_from_stops_with_one_line(tmp_path):
    result = run_cli("train.py", "experiment=fovit", "model=tiny", "trainer=cpu", f"hydra.run.dir={tmp_path}",
                     timeout=300)  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("error: missing required value(s): init_from;")
    assert "Traceback" not in result.stderr
