"""Issue #8 item 10: export.py also writes the LLaVA layout of transformers (``out/llava_hf/``) when the tower
is HF CLIP and the projector ``mlp2x_gelu``; transformers alone reproduces the project's logits with an
image, and ``model.kind=hf_vlm`` on it predicts like ``model.kind=checkpoint``.

(``model.kind=hf`` on the exported merged LLM vs ``kind=checkpoint`` is pinned in
tests/export/test_export.py.)
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from lvlm.constants import IMAGE_TOKEN
from lvlm.eval.models.registry import EVAL_MODELS
from lvlm.eval.scoring.scorers import run_scorer
from lvlm.eval.types import PromptItem
from lvlm.export import export_checkpoint
from lvlm.models.checkpoint import load_lvlm_checkpoint
from lvlm.templates import get_template
from tests.eval.tiny_checkpoint import tiny_cfg, write_tiny_checkpoint

PROMPT = 'If the picture is red, you need to output "foo". Otherwise output "bar".\nAnswer:'


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_cfg):
    cfg = tiny_cfg(tiny_model_cfg, hf_clip=True, projector="mlp2x_gelu", lora=True)
    return write_tiny_checkpoint(tmp_path_factory.mktemp("llava_hf_ckpt") / "last.ckpt", cfg)


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    return export_checkpoint(checkpoint, tmp_path_factory.mktemp("llava_hf_out") / "model")


def test_llava_hf_layout_is_written_with_llava_config(exported, checkpoint):
    folder = exported.out / "llava_hf"
    assert exported.llava_hf == folder and folder in exported.files()
    for name in ("config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    built = load_lvlm_checkpoint(checkpoint)
    assert config["model_type"] == "llava" and config["architectures"] == ["LlavaForConditionalGeneration"]
    assert config["vision_feature_layer"] == -2 and config["vision_feature_select_strategy"] == "default"
    assert config["image_token_index"] == built.model.image_token_id
    assert config["vision_config"]["model_type"] == "clip_vision_model"
    assert config["text_config"]["model_type"] == "llama"
    assert json.loads((exported.out / "export.json").read_text())["llava_hf"] == "llava_hf"
    assert "`llava_hf/`" in (exported.out / "README.md").read_text()


def test_transformers_reproduces_the_project_logits_with_an_image(exported, checkpoint):
    from transformers import AutoModelForImageTextToText, AutoProcessor, LlavaForConditionalGeneration

    processor = AutoProcessor.from_pretrained(exported.llava_hf)
    llava = AutoModelForImageTextToText.from_pretrained(exported.llava_hf).eval()
    assert isinstance(llava, LlavaForConditionalGeneration)
    built = load_lvlm_checkpoint(checkpoint)
    lvlm = built.model.eval()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == get_template("llava_llama_2").generation_prompt(f"{IMAGE_TOKEN}\n{PROMPT}")
    noise = torch.randint(0, 256, (40, 48, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    image = Image.fromarray(noise.numpy())
    inputs = processor(text=[text], images=[image], add_special_tokens=False, return_tensors="pt")
    ids = built.tokenizer(text, add_special_tokens=False)["input_ids"]
    n = lvlm.num_image_tokens
    ids = [t for tok in ids for t in ([tok] * n if tok == lvlm.image_token_id else [tok])]
    assert inputs["input_ids"][0].tolist() == ids
    with torch.no_grad():
        theirs = llava(**inputs).logits
        ours = lvlm(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"]).logits
        with lvlm.llm.disable_adapter():
            without_lora = lvlm(input_ids=inputs["input_ids"], pixel_values=inputs["pixel_values"]).logits
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)
    assert (theirs - without_lora).abs().max() > 1e-3, "the merged LoRA weights had no effect"


def test_hf_vlm_kind_on_the_export_predicts_like_the_checkpoint(exported, checkpoint):
    items = [
        PromptItem("t", str(i), "s", "neutral", f"{PROMPT}\nReview: {review}", ("foo", "bar"), i % 2)
        for i, review in enumerate(["lovely.", "bad .", "fine"])
    ]
    rows = {}
    for kind, keys in {
        "hf_vlm": {"name_or_path": str(exported.llava_hf)},
        "checkpoint": {"checkpoint": str(checkpoint)},
    }.items():
        model_cfg = {"kind": kind, "dtype": "float32", "device": "cpu", "template": None}
        model = EVAL_MODELS.get(kind)({"model": model_cfg | keys, "eval": {"image_slot": "blank"}})
        rows[kind] = model
        rows[kind + "/raw"] = [
            p.raw for p in run_scorer("generate", model, items, progress=False, max_new_tokens=6).predictions
        ]
    assert rows["hf_vlm"].wrapping["rendered"] == rows["checkpoint"].wrapping["rendered"]
    assert rows["hf_vlm"].wrapping["system_prompt"] == rows["checkpoint"].wrapping["system_prompt"]
    assert rows["hf_vlm/raw"] == rows["checkpoint/raw"] and any(rows["checkpoint/raw"])


def test_other_towers_get_no_llava_hf_layout(tmp_path, tiny_model_cfg):
    ckpt = write_tiny_checkpoint(tmp_path / "ckpt" / "last.ckpt", tiny_model_cfg)  # open_clip + linear
    result = export_checkpoint(ckpt, tmp_path / "out")
    assert result.llava_hf is None and not (tmp_path / "out" / "llava_hf").exists()
    reason = json.loads((tmp_path / "out" / "export.json").read_text())["llava_hf"]
    assert reason.startswith("not written: vision tower OpenClipTower is not HF CLIP")
