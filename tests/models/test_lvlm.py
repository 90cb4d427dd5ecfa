"""The LVLM module: forward/backward on both vision presets, the image splice, mixed batches."""

from __future__ import annotations

import copy

import pytest
import torch

from lvlm.data.collate import ConversationCollator
from lvlm.data.conversation import encode_conversation
from lvlm.models.presets import build_model
from lvlm.templates import get_template

HF_VISION = {
    "kind": "hf_clip",
    "name_or_path": None,
    "config": {
        "hidden_size": 48,
        "intermediate_size": 96,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "image_size": 64,
        "patch_size": 16,
    },
    "select_layer": -2,
}


@pytest.fixture(scope="module", params=["open_clip", "hf_clip"])
def built(request, tiny_model_cfg):
    cfg = copy.deepcopy(tiny_model_cfg)
    if request.param == "hf_clip":
        cfg["vision"] = HF_VISION
    torch.manual_seed(0)
    return build_model(cfg)


def _batch(built, with_image: list[bool]):
    tok, model = built.tokenizer, built.model
    template = get_template("llava_llama_2")
    items = []
    for index, has_image in enumerate(with_image):
        question = ("<image>\n" if has_image else "") + f"What is shown number {index}?"
        enc = encode_conversation(
            tok, template, [(question, "A red circle.")], model.num_image_tokens, model.image_token_id
        )
        item = {"input_ids": torch.tensor(enc.input_ids), "labels": torch.tensor(enc.labels)}
        if has_image:
            item["pixel_values"] = torch.randn(3, 64, 64)
        items.append(item)
    return ConversationCollator(tok.pad_token_id)(items)


def test_forward_backward_both_towers(built):
    batch = _batch(built, [True, True])
    out = built.model(**batch)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in built.model.projector.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    built.model.zero_grad()


def test_image_features_land_exactly_at_placeholders(built):
    model = built.model.eval()
    batch = _batch(built, [True, False, True])
    with torch.no_grad():
        embeds = model.embed(batch["input_ids"], batch["pixel_values"])
        features = model.encode_images(batch["pixel_values"])
        tokens = model.llm.get_input_embeddings()(batch["input_ids"].clamp(max=len(built.tokenizer) - 1))
    mask = batch["input_ids"] == model.image_token_id
    assert mask.sum() == 2 * model.num_image_tokens
    assert mask[1].sum() == 0  # the text-only sample has no image slots
    assert torch.equal(embeds[0][mask[0]], features[0])
    assert torch.equal(embeds[2][mask[2]], features[1])
    assert torch.equal(embeds[~mask], tokens[~mask])


def test_text_only_and_image_sample_in_one_batch(built):
    batch = _batch(built, [False, True])
    assert batch["pixel_values"].shape[0] == 1
    out = built.model(**batch)
    assert torch.isfinite(out.loss)
    text_only = _batch(built, [False])
    assert text_only["pixel_values"] is None
    assert torch.isfinite(built.model(**text_only).loss)


def test_image_count_mismatch_raises(built):
    batch = _batch(built, [True, True])
    with pytest.raises(ValueError, match="every <image> placeholder needs exactly one image"):
        built.model.embed(batch["input_ids"], batch["pixel_values"][:1])


def test_second_to_last_layer_without_cls(built):
    vision = built.model.vision
    features = vision(torch.randn(2, 3, 64, 64))
    assert features.shape == (2, vision.num_patches, vision.hidden_size)
    assert vision.num_patches == (64 // 16) ** 2
