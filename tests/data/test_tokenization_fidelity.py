"""Token ids at training equal token ids at inference, for every chat template.

Training (``encode_conversation``) and the evaluators (``LVLMScoringModel`` / ``HFScoringModel``:
``format_prompt`` then ``encode``) must give the same ids for the same text. With a SentencePiece tokenizer
like Llama-2's (dummy prefix ``▁``, byte fallback), tokenizing a conversation segment by segment gives a
segment start a ``▁`` that the whole string does not have. The test trains a small SentencePiece model with
Llama-2's settings and wraps it as transformers' ``LlamaTokenizer`` through the project's ``hf`` tokenizer
loader (both ``legacy`` modes), and also runs on the project's tiny byte-level BPE. Nothing downloads.
"""

from __future__ import annotations

import io
import json

import pytest

from lvlm.constants import IGNORE_INDEX, IMAGE_TOKEN
from lvlm.data.conversation import encode_conversation
from lvlm.eval.models.hf import HFScoringModel
from lvlm.eval.models.lvlm import LVLMScoringModel
from lvlm.models.presets import build_model
from lvlm.templates import LLAVA_SYSTEM_PROMPT, TEMPLATES, VICUNA_SYSTEM_PROMPT, get_template

spm = pytest.importorskip("sentencepiece")

QUESTIONS = [
    "What color is the circle?",
    "How many objects are there in the image?",
    "Describe the image briefly.",
    "Answer with at most 5 words: where is the red square?",
]
ANSWERS = [
    "The circle is red.",
    "There are 2 objects, a circle and a square.",
    "A small blue circle in the bottom right.",
    "Top left, near 3 triangles.",
]
PROMPT_TEXT = "[INST] [/INST] <<SYS>> <</SYS>> USER: ASSISTANT:"


def _corpus() -> list[str]:
    lines = [LLAVA_SYSTEM_PROMPT, VICUNA_SYSTEM_PROMPT, PROMPT_TEXT, *QUESTIONS, *ANSWERS]
    return [f"{line} {index}" for index in range(60) for line in lines]  # a few hundred lines


@pytest.fixture(scope="module")
def spm_dir(tmp_path_factory):
    """A SentencePiece BPE trained here with Llama-2's settings, saved like a hub snapshot."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()), model_writer=model, vocab_size=400, model_type="bpe",
        add_dummy_prefix=True, byte_fallback=True, split_digits=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2,
    )  # fmt: skip
    root = tmp_path_factory.mktemp("spm_llama")
    (root / "tokenizer.model").write_bytes(model.getvalue())
    return root


def _llama_snapshot(spm_dir, tmp_path, legacy: bool):
    config = {"tokenizer_class": "LlamaTokenizer", "legacy": legacy, "add_bos_token": True,
              "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}  # fmt: skip
    target = tmp_path / f"llama_legacy_{legacy}"
    target.mkdir()
    (target / "tokenizer.model").write_bytes((spm_dir / "tokenizer.model").read_bytes())
    (target / "tokenizer_config.json").write_text(json.dumps(config))
    return target


@pytest.fixture(params=["llama_sp", "llama_sp_legacy", "tiny_bpe"])
def built(request, spm_dir, tmp_path, tiny_model_cfg):
    """A tiny LVLM whose tokenizer is the SentencePiece Llama tokenizer (hf loader) or the project's own."""
    cfg = json.loads(json.dumps(tiny_model_cfg))
    if request.param != "tiny_bpe":
        path = _llama_snapshot(spm_dir, tmp_path, legacy=request.param.endswith("legacy"))
        cfg["tokenizer"] = {"kind": "hf", "name_or_path": str(path)}
    out = build_model(cfg)
    if request.param != "tiny_bpe":
        assert type(out.tokenizer).__name__ == "LlamaTokenizer"
        assert out.tokenizer.convert_ids_to_tokens(out.tokenizer("a b")["input_ids"])[1] == "▁a"
    return out


def _supervised(labels: list[int]) -> list[int]:
    return [index for index, label in enumerate(labels) if label != IGNORE_INDEX]


@pytest.mark.parametrize("template_name", TEMPLATES.names())
@pytest.mark.parametrize("image_slot", ["none", "blank"])
def test_training_prompt_ids_equal_the_evaluators(built, template_name, image_slot):
    tok, model, template = built.tokenizer, built.model, get_template(template_name)
    if template_name == "plain" and image_slot == "none":
        pytest.skip("plain (stage 1) prompts are the image alone")
    lvlm_eval = LVLMScoringModel(model, tok, template, image_slot, fingerprint="test")
    llm_eval = HFScoringModel(model.llm, tok, template=template, fingerprint="test")
    for question, answer in zip(QUESTIONS, ANSWERS, strict=True):
        user = f"{IMAGE_TOKEN}\n{question}" if image_slot == "blank" else question
        enc = encode_conversation(
            tok, template, [(user, answer)], model.num_image_tokens, model.image_token_id
        )
        prompt_ids = lvlm_eval.encode(lvlm_eval.format_prompt(question))
        supervised = _supervised(enc.labels)
        # the conversation up to the answer is exactly what the evaluator feeds the model
        assert enc.input_ids[: len(prompt_ids)] == prompt_ids, (template_name, question)
        # labels cover exactly the rest: the answer's tokens and EOS
        assert supervised == list(range(len(prompt_ids), len(enc.input_ids)))
        assert enc.input_ids[-1] == tok.eos_token_id
        assert tok.decode(enc.input_ids[len(prompt_ids) : -1]).strip() == answer
        if image_slot == "none":  # the text-only LLM row with the same template
            assert llm_eval.encode(llm_eval.format_prompt(question)) == prompt_ids


@pytest.mark.parametrize("template_name", [name for name in TEMPLATES.names() if name != "plain"])
def test_multi_turn_ids_are_the_whole_rendered_conversation(built, template_name):
    tok, model, template = built.tokenizer, built.model, get_template(template_name)
    turns = [(f"{IMAGE_TOKEN}\n{QUESTIONS[0]}", ANSWERS[0]), *zip(QUESTIONS[1:], ANSWERS[1:], strict=True)]
    enc = encode_conversation(tok, template, turns, model.num_image_tokens, model.image_token_id)
    rendered = template.render(turns, tok.bos_token, tok.eos_token)
    whole = tok(rendered.text, add_special_tokens=False)["input_ids"]
    expanded = [
        t for i in whole for t in ([i] * model.num_image_tokens if i == model.image_token_id else [i])
    ]
    assert enc.input_ids == expanded and enc.num_images == 1
    spans, current = [], []
    for index in [*_supervised(enc.labels), -1]:
        if current and index != current[-1] + 1:
            spans.append(current)
            current = []
        current.append(index)
    assert len(spans) == len(turns)
    for span, (_, answer) in zip(spans, turns, strict=True):
        ids = [enc.input_ids[i] for i in span]
        assert ids[-1] == tok.eos_token_id and tok.decode(ids[:-1]).strip() == answer
        assert tok(tok.decode(ids[:-1]), add_special_tokens=False)["input_ids"]  # decodable text


def test_segment_by_segment_tokenization_differs_on_llama(spm_dir, tmp_path):
    """Why whole-string tokenization matters: a segment tokenized alone gains a dummy-prefix ``▁``."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(_llama_snapshot(spm_dir, tmp_path, legacy=False))
    whole = tok("<s>[INST] hi [/INST]", add_special_tokens=False)["input_ids"]
    pieces = [tok.bos_token_id, *tok("[INST] hi [/INST]", add_special_tokens=False)["input_ids"]]
    assert whole != pieces
    assert tok.convert_ids_to_tokens(pieces[1]).startswith("▁")
    assert not tok.convert_ids_to_tokens(whole[1]).startswith("▁")
