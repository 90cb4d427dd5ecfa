"""Real presets through tiny stand-ins (same from_pretrained code paths), stage freeze policy, LoRA."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

from lvlm.models.presets import build_model
from lvlm.training.freeze import apply_stage
from lvlm.utils.runtime import register_resolvers
from tests.helpers.paths import REPO_ROOT


def _model_cfg(*overrides: str) -> dict:
    register_resolvers()
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    return OmegaConf.to_container(cfg.model, resolve=True)


@pytest.fixture(scope="module")
def stand_in_dir(tmp_path_factory, tiny_tokenizer):
    """A tiny Llama, its tokenizer and a tiny CLIP vision model saved like hub snapshots."""
    root = tmp_path_factory.mktemp("stand_ins")
    tiny_tokenizer.save_pretrained(root / "llm")
    config = LlamaConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)  # fmt: skip
    llm = LlamaForCausalLM(config)
    llm.save_pretrained(root / "llm")
    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=2, image_size=32, patch_size=8))  # fmt: skip
    clip.save_pretrained(root / "clip")
    return root


def test_paper_preset_loads_through_from_pretrained(stand_in_dir):
    cfg = _model_cfg(
        "model=llava_llama2_7b_chat",
        f"model.vision.name_or_path={stand_in_dir / 'clip'}",
        f"model.llm.name_or_path={stand_in_dir / 'llm'}",
        "model.llm.dtype=float32",
        f"model.tokenizer.name_or_path={stand_in_dir / 'llm'}",
        "model.peft.r=4",
        "model.peft.alpha=8",
    )
    assert cfg["peft"]["target_modules"] == "all-linear" and cfg["template"] == "llava_llama_2"
    built = build_model(cfg)
    assert built.model.num_image_tokens == 16 and built.model.vision.hidden_size == 32
    assert hasattr(built.model.llm, "peft_config")
    ids = torch.tensor([[built.tokenizer.bos_token_id] + [built.model.image_token_id] * 16 + [5, 6]])
    out = built.model(input_ids=ids, labels=ids, pixel_values=torch.randn(1, 3, 32, 32))
    assert torch.isfinite(out.loss)


def test_paper_preset_is_configured_as_the_spec_says():
    cfg = _model_cfg("model=llava_llama2_7b_chat")
    assert cfg["vision"] == {
        "kind": "hf_clip",
        "name_or_path": "openai/clip-vit-large-patch14",
        "config": None,
        "select_layer": -2,
        "hidden_act": "quick_gelu",
    }
    assert cfg["llm"]["name_or_path"] == "meta-llama/Llama-2-7b-chat-hf"
    assert cfg["projector"]["kind"] == "linear"
    assert (cfg["peft"]["r"], cfg["peft"]["alpha"], cfg["peft"]["dropout"]) == (64, 16, 0.05)
    assert cfg["peft"]["target_modules"] == "all-linear"
    assert cfg["recipe"]["finetune_lr"] == 2e-5


def _trainable(model, part: str) -> int:
    return sum(p.numel() for p in getattr(model, part).parameters() if p.requires_grad)


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("pretrain", {"vision": False, "projector": True, "llm": False}),
        ("finetune", {"vision": False, "projector": True, "llm": True}),
        ("text_finetune", {"vision": False, "projector": False, "llm": True}),
    ],
)
def test_stage_freeze_policy(stage, expected):
    register_resolvers()
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"stage={stage}"])
    built = build_model(cfg.model)
    counts = apply_stage(built.model, OmegaConf.to_container(cfg.stage.train))
    for part, trains in expected.items():
        assert (counts[part] > 0) == trains == (_trainable(built.model, part) > 0), part


def test_lora_trains_only_adapters():
    built = build_model(_model_cfg("model/peft=lora_tiny"))
    apply_stage(built.model, {"projector": True, "llm": True})
    names = [n for n, p in built.model.llm.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert _trainable(built.model, "projector") > 0
