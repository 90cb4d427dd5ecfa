"""Issue #8 item 8: the original LLaVA v1 release format loads into the project's LVLM.

The test writes a tiny release in exactly upstream's layout (haotian-liu/LLaVA ``llava/train/train.py``:
``config.json`` with the ``mm_*`` fields, a peft LoRA adapter with ``base_model.model.model.layers.N…``
keys, ``non_lora_trainables.bin`` with ``base_model.model.model.mm_projector.*`` keys, or
``mm_projector.bin`` with ``model.mm_projector.*`` keys) on a tiny random Llama and a tiny HF CLIP tower,
then checks the loaded model's logits against the same weights built the project's way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

from lvlm.errors import ConfigError, UnknownNameError
from lvlm.eval.models.llava_original import load_llava_original
from lvlm.eval.models.registry import EVAL_MODELS
from lvlm.eval.scoring.scorers import run_scorer
from lvlm.eval.types import PromptItem
from lvlm.models.presets import build_model
from lvlm.templates import LLAVA_SYSTEM_PROMPT

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RANK, ALPHA, LAYERS = 4, 8, 2


@pytest.fixture(scope="module")
def parts(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    """A tiny base Llama-2-chat stand-in (with tokenizer) and a tiny CLIP tower, saved as on the hub."""
    root = tmp_path_factory.mktemp("llava_parts")
    torch.manual_seed(0)
    tok = tiny_tokenizer
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=LAYERS,
                         num_attention_heads=2, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    clip = CLIPVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
                            image_size=32, patch_size=16, hidden_act="quick_gelu")  # fmt: skip
    CLIPVisionModel(clip).save_pretrained(root / "clip")
    return {"base": root / "base", "clip": root / "clip", "root": root}


def _lora_tensors(seed: int) -> dict[str, torch.Tensor]:
    """LoRA A/B of every linear layer, keyed as peft saves a PeftModel over LlavaLlamaForCausalLM."""
    generator = torch.Generator().manual_seed(seed)
    shapes = {"q_proj": (32, 32), "k_proj": (32, 32), "v_proj": (32, 32), "o_proj": (32, 32),
              "gate_proj": (64, 32), "up_proj": (64, 32), "down_proj": (32, 64)}  # fmt: skip
    tensors = {}
    for layer in range(LAYERS):
        for name, (out_features, in_features) in shapes.items():
            block = "self_attn" if name.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            key = f"base_model.model.model.layers.{layer}.{block}.{name}"
            tensors[f"{key}.lora_A.weight"] = 0.1 * torch.randn(RANK, in_features, generator=generator)
            tensors[f"{key}.lora_B.weight"] = 0.1 * torch.randn(out_features, RANK, generator=generator)
    return tensors


def _projector_tensors(kind: str, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    if kind == "linear":
        return {
            "weight": torch.randn(32, 48, generator=generator) * 0.1,
            "bias": torch.randn(32, generator=generator),
        }
    return {
        "0.weight": torch.randn(32, 48, generator=generator) * 0.1,
        "0.bias": torch.randn(32, generator=generator),
        "2.weight": torch.randn(32, 32, generator=generator) * 0.1,
        "2.bias": torch.randn(32, generator=generator),
    }


def write_release(
    parts: dict[str, Path], name: str, *, lora: bool, projector: str, **config_overrides: object
) -> tuple[Path, dict, dict]:
    """A release folder in upstream's layout; returns it with the LoRA and projector tensors it holds."""
    folder = parts["root"] / name
    folder.mkdir()
    config = json.loads((parts["base"] / "config.json").read_text())
    config |= {
        "architectures": ["LlavaLlamaForCausalLM"],
        "model_type": "llava",
        "mm_vision_tower": str(parts["clip"]),
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "mm_projector_type": projector,
        "mm_hidden_size": 48,
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "image_aspect_ratio": "square",
        "use_mm_proj": True,
        "tune_mm_mlp_adapter": False,
    }
    config |= config_overrides
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    lora_tensors = _lora_tensors(seed=1) if lora else {}
    projector_tensors = _projector_tensors(projector, seed=2)
    if lora:
        adapter = {
            "auto_mapping": None,
            "base_model_name_or_path": "./checkpoints/llama-2-7b-chat",
            "bias": "none",
            "fan_in_fan_out": False,
            "inference_mode": True,
            "init_lora_weights": True,
            "layers_pattern": None,
            "layers_to_transform": None,
            "lora_alpha": ALPHA,
            "lora_dropout": 0.05,
            "modules_to_save": None,
            "peft_type": "LORA",
            "r": RANK,
            "revision": None,
            "target_modules": TARGETS,
            "task_type": "CAUSAL_LM",
        }
        (folder / "adapter_config.json").write_text(json.dumps(adapter, indent=2))
        torch.save(lora_tensors, folder / "adapter_model.bin")
        extra = {f"base_model.model.model.mm_projector.{k}": v for k, v in projector_tensors.items()}
        torch.save(extra, folder / "non_lora_trainables.bin")
    else:
        torch.save(
            {f"model.mm_projector.{k}": v for k, v in projector_tensors.items()}, folder / "mm_projector.bin"
        )
    return folder, lora_tensors, projector_tensors


def project_way(parts: dict[str, Path], lora: dict, projector_kind: str, projector: dict):
    """The same weights loaded the project's way: build_model + peft LoRA + projector state dict."""
    cfg = {
        "tokenizer": {"kind": "hf", "name_or_path": str(parts["base"])},
        "vision": {"kind": "hf_clip", "name_or_path": str(parts["clip"]), "config": None, "select_layer": -2},
        "llm": {"name_or_path": str(parts["base"]), "dtype": "float32"},
        "projector": {"kind": projector_kind},
        "peft": {"r": RANK, "alpha": ALPHA, "dropout": 0.0, "target_modules": TARGETS} if lora else None,
        "template": "llava_llama_2",
    }
    built = build_model(cfg)
    state = {"projector." + key: value for key, value in projector.items()}
    for key, value in lora.items():  # peft's saved key -> the project's module path (adapter "default")
        module = key.removeprefix("base_model.model.").replace(".weight", ".default.weight")
        state[f"llm.base_model.model.{module}"] = value
    missing = set(state) - set(built.model.state_dict())
    assert not missing, sorted(missing)[:3]
    built.model.load_state_dict(state, strict=False)
    return built.model.eval()


def _logits(model, tokenizer) -> torch.Tensor:
    text = "<s>[INST] <image>\nIf a movie review is positive, output foo.\nAnswer: [/INST]"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    n = model.num_image_tokens
    ids = [t for tok in ids for t in ([tok] * n if tok == model.image_token_id else [tok])]
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), pixel_values=pixels).logits


@pytest.mark.parametrize(("lora", "projector"), [(True, "mlp2x_gelu"), (True, "linear"), (False, "linear")])
def test_release_logits_equal_the_project_build(parts, lora, projector):
    folder, lora_tensors, projector_tensors = write_release(parts, f"llava-lora{lora}-{projector}", lora=lora,
                                                            projector=projector)  # fmt: skip
    loaded = load_llava_original(str(folder), str(parts["base"]))
    assert type(loaded.model.llm).__name__ == "LlamaForCausalLM"  # LoRA merged, no peft wrapper left
    assert loaded.model.vision.select_layer == -2 and loaded.template == "llava_llama_2"
    reference = project_way(parts, lora_tensors, projector, projector_tensors)
    ours, theirs = _logits(loaded.model, loaded.tokenizer), _logits(reference, loaded.tokenizer)
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()
    if lora:  # the adapter really changed the LLM
        plain = project_way(parts, {}, projector, projector_tensors)
        assert not torch.allclose(_logits(plain, loaded.tokenizer), ours, atol=1e-3)


def test_llava_original_kind_scores_with_llava_wrapping(parts):
    folder, _, _ = write_release(parts, "llava-kind", lora=True, projector="mlp2x_gelu")
    keys = {"kind": "llava_original", "path": str(folder), "base": str(parts["base"]), "dtype": "float32",
            "device": "cpu", "template": None, "system_prompt": None}  # fmt: skip
    model = EVAL_MODELS.get("llava_original")({"model": keys, "eval": {"image_slot": "blank"}})
    assert (
        model.wrapping["template"] == "llava_llama_2"
        and model.wrapping["system_prompt"] == LLAVA_SYSTEM_PROMPT
    )
    assert model.wrapping["image_slot"] == "blank"
    items = [PromptItem("sst2", "0", "s", "neutral", 'Output "foo" or "bar".\nAnswer:', ("foo", "bar"), 0)]
    run = run_scorer("generate", model, items, progress=False, max_new_tokens=3)
    assert len(run.predictions) == 1
    bf16 = EVAL_MODELS.get("llava_original")(
        {"model": keys | {"dtype": "bfloat16"}, "eval": {"image_slot": "none"}}
    )
    assert {p.dtype for p in bf16.lvlm.parameters()} == {torch.bfloat16}


def test_unsupported_or_broken_releases_are_one_line_errors(parts):
    start_end, _, _ = write_release(
        parts, "llava-startend", lora=False, projector="linear", mm_use_im_start_end=True
    )
    with pytest.raises(ConfigError, match="mm_use_im_start_end=True is not supported") as error:
        load_llava_original(str(start_end), str(parts["base"]))
    assert "\n" not in str(error.value)
    odd, _, _ = write_release(
        parts, "llava-resampler", lora=False, projector="linear", mm_projector_type="qformer"
    )
    with pytest.raises(ConfigError, match="mm_projector_type='qformer' has no project projector"):
        load_llava_original(str(odd), str(parts["base"]))
    with pytest.raises(ConfigError, match="not a LLaVA release folder"):
        load_llava_original(str(parts["root"] / "nowhere"), str(parts["base"]))
    with pytest.raises(ConfigError, match=r"needs model\.path=.* and model\.base="):
        EVAL_MODELS.get("llava_original")({"model": {"path": None, "base": None}, "eval": {}})
    with pytest.raises(UnknownNameError):
        EVAL_MODELS.get("llava")
