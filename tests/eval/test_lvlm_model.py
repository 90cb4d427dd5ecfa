"""The LVLM scoring adapter (no image by default, blank-image ablation), the model-kind registry and W&B
metric names."""

from __future__ import annotations

import pytest
import torch

from lvlm.errors import ConfigError, UnknownNameError
from lvlm.eval.models.lvlm import LVLMScoringModel
from lvlm.eval.models.registry import EVAL_MODELS
from lvlm.eval.results.wandb_log import summary_metrics
from lvlm.models.presets import build_model
from lvlm.templates import get_template


@pytest.fixture(scope="module")
def built(tiny_model_cfg):
    torch.manual_seed(0)
    return build_model(tiny_model_cfg)


def test_text_only_by_default_and_blank_image_ablation(built):
    template = get_template("llava_llama_2")
    plain = LVLMScoringModel(built.model, built.tokenizer, template, "none")
    blank = LVLMScoringModel(built.model, built.tokenizer, template, "blank")
    prompt = 'If a movie review is positive, you need to output "yes".\nAnswer:'
    image_id, n = built.model.image_token_id, built.model.num_image_tokens
    plain_ids, blank_ids = (
        plain.encode(plain.format_prompt(prompt)),
        blank.encode(blank.format_prompt(prompt)),
    )
    assert image_id not in plain_ids and blank_ids.count(image_id) == n
    assert plain.format_prompt(prompt).startswith("<s>[INST] <<SYS>>\nYou are a helpful language and vision")
    embeds = blank.embed(torch.tensor([blank_ids]))
    expected = built.model.encode_images(blank.blank.unsqueeze(0))[0]
    mask = torch.tensor(blank_ids) == image_id
    assert torch.allclose(embeds[0][mask], expected.detach(), atol=1e-5)
    assert plain.fingerprint != blank.fingerprint
    with pytest.raises(ConfigError, match="valid image_slot names: none, blank"):
        LVLMScoringModel(built.model, built.tokenizer, template, "noise")


def test_model_kinds_are_registered_builders():
    assert EVAL_MODELS.names() == ["checkpoint", "hf", "hf_vlm", "llava_original", "tiny"]
    names = r"valid model\.kind names: checkpoint, hf, hf_vlm, llava_original, tiny"
    with pytest.raises(UnknownNameError, match=names):
        EVAL_MODELS.get("onnx")
    with pytest.raises(ConfigError, match=r"model\.kind=hf needs model\.name_or_path"):
        EVAL_MODELS.get("hf")({"model": {"kind": "hf", "name_or_path": None}})
    with pytest.raises(ConfigError, match=r"model\.kind=checkpoint needs model\.checkpoint"):
        EVAL_MODELS.get("checkpoint")({"model": {"kind": "checkpoint", "checkpoint": None}, "eval": {}})


def test_tiny_kind_builds_the_preset_with_the_image_slot(tiny_model_cfg, tmp_path):
    cfg = {"seed": 0, "model": {"kind": "tiny", "preset": tiny_model_cfg},
           "paths": {"cache_dir": str(tmp_path)}, "eval": {"image_slot": "blank"}}  # fmt: skip
    model = EVAL_MODELS.get("tiny")(cfg)
    assert isinstance(model, LVLMScoringModel) and model.image_slot == "blank"


def test_summary_metric_names():
    results = {
        "summary": {k: {"f1": 0.5, "invalid_rate": 0.1, "n": 3} for k in ("natural", "neutral", "unnatural")}
        | {"all": {"f1": 0.5}}
    }
    metrics = summary_metrics(results)
    for name in (
        "eval/natural/f1",
        "eval/neutral/f1",
        "eval/unnatural/f1",
        "eval/all/f1",
        "eval/natural/invalid_rate",
    ):
        assert metrics[name] == pytest.approx(0.5 if name.endswith("f1") else 0.1)
