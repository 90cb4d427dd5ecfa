"""Issue #8 item 9: ``model.kind=hf_vlm`` scores any Hugging Face VLM (here a tiny random
``LlavaForConditionalGeneration`` saved with a ``LlavaProcessor``) through evaluate.py and records its
wrapping; text-only prompts by default, a blank image as the ablation."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from lvlm.eval.models.hf_vlm import HFVLMScoringModel
from lvlm.eval.models.registry import EVAL_MODELS
from tests.helpers.cli import run_cli

# LLaVA-1.5-hf's chat template, shortened: images first, then the text, then "ASSISTANT:"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% for c in message['content'] %}{{ c['text'] }} {% endfor %}"
    "{% else %}{{ message['role'].upper() + ': ' }}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}{{ c['text'] + ' ' }}"
    "{% endfor %}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
HF_VLM_KEYS = {"kind": "hf_vlm", "dtype": "float32", "device": "cpu", "system_prompt": None, "template": None}


@pytest.fixture(scope="module")
def saved_vlm(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("tiny_llava_hf")
    torch.manual_seed(0)
    tok = tiny_tokenizer
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
                       bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
    vision = CLIPVisionConfig(hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                              num_attention_heads=4, image_size=32, patch_size=16)  # fmt: skip
    image_id = tok.convert_tokens_to_ids("<image>")
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_id,
                         vision_feature_layer=-2, vision_feature_select_strategy="default")  # fmt: skip
    LlavaForConditionalGeneration(config).save_pretrained(path)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(images, tok, patch_size=16, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)  # fmt: skip
    processor.save_pretrained(path)
    return path


def _build(path, image_slot="none", **model) -> HFVLMScoringModel:
    keys = HF_VLM_KEYS | {"name_or_path": str(path)} | model
    return EVAL_MODELS.get("hf_vlm")({"model": keys, "eval": {"image_slot": image_slot}})


def test_text_only_prompt_in_the_processor_chat_template(saved_vlm):
    model = _build(saved_vlm)
    assert model.wrapping == {"template": "processor chat template", "system_prompt": None,
                              "image_slot": "none", "rendered": "USER: {prompt} ASSISTANT:"}  # fmt: skip
    text = model.format_prompt("Answer:")
    ids = model.encode(text)
    assert ids == model.processor(text=[text])["input_ids"][0] and model.image_token_id not in ids
    llava = _build(saved_vlm, system_prompt="llava")
    assert llava.format_prompt("{prompt}").startswith("You are a helpful language and vision assistant.")
    assert llava.fingerprint != model.fingerprint


def test_blank_image_ablation_matches_the_models_own_forward(saved_vlm):
    model = _build(saved_vlm, "blank")
    assert model.format_prompt("{prompt}") == "USER: <image>\n{prompt} ASSISTANT:"
    ids = model.encode(model.format_prompt("Answer:"))
    assert ids.count(model.image_token_id) == (32 // 16) ** 2  # CLS dropped ("default" strategy)
    ours, _ = model.forward(model.embed(torch.tensor([ids])), torch.ones(1, len(ids), dtype=torch.long),
                            torch.arange(len(ids))[None])  # fmt: skip
    text = model.format_prompt("Answer:")
    inputs = model.processor(text=[text], images=[model._blank_image()], return_tensors="pt")
    assert inputs["input_ids"][0].tolist() == ids
    with torch.no_grad():
        reference = model.model(**inputs).logits
    assert torch.allclose(ours, reference, atol=1e-5), (ours - reference).abs().max()
    assert model.fingerprint != _build(saved_vlm).fingerprint


def test_evaluate_py_runs_hf_vlm_end_to_end(saved_vlm, tmp_path):
    result = run_cli(
        "evaluate.py", "model.kind=hf_vlm", f"model.name_or_path={saved_vlm}", "eval.tasks=[sst2]",
        "eval.limit=2", "eval.label_systems=[natural]", "eval.max_new_tokens=4", "bootstrap.n_resamples=20",
        "cache.enabled=false", "wandb.enabled=false", f"hydra.run.dir={tmp_path}", timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["n_predictions"] == 2 * 3
    assert results["wrapping"] == {"template": "processor chat template", "system_prompt": None,
                                   "image_slot": "none", "rendered": "USER: {prompt} ASSISTANT:"}  # fmt: skip
    assert "Wrapping: template `processor chat template`" in (tmp_path / "results.md").read_text()
