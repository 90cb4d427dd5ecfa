"""Chat templates: labels fall exactly on assistant tokens; mismatches and malformed turns raise."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from lvlm.constants import IGNORE_INDEX
from lvlm.data.conversation import encode_conversation, turns_from_llava
from lvlm.errors import DataError, UnknownNameError
from lvlm.templates import TEMPLATES, get_template

TURNS = [
    ("<image>\nWhat color is the circle?", "The circle is red."),
    ("How many objects are there?", "There are two objects, a circle and a square."),
    ("Anything else?", "No."),
]
IMAGE_TOKENS = 4


def _supervised_spans(labels: list[int]) -> list[list[int]]:
    spans, current = [], []
    for label in labels:
        if label == IGNORE_INDEX:
            if current:
                spans.append(current)
            current = []
        else:
            current.append(label)
    return spans + ([current] if current else [])


@pytest.mark.parametrize("name", TEMPLATES.names())
def test_supervised_tokens_decode_to_the_answers(name, tiny_tokenizer):
    tok = tiny_tokenizer
    image_id = tok.convert_tokens_to_ids("<image>")
    turns = TURNS[:1] if name == "plain" else TURNS  # plain (stage 1) is single-turn by definition
    enc = encode_conversation(tok, get_template(name), turns, IMAGE_TOKENS, image_id)
    spans = _supervised_spans(enc.labels)
    assert len(spans) == len(turns)
    for span, (_, answer) in zip(spans, turns, strict=True):
        assert span[-1] == tok.eos_token_id
        assert tok.decode(span[:-1]).strip() == answer
    assert enc.input_ids.count(image_id) == IMAGE_TOKENS
    assert enc.num_images == 1
    assert all(lab in (IGNORE_INDEX, tid) for lab, tid in zip(enc.labels, enc.input_ids, strict=True))


def test_llava_llama_2_layout(tiny_tokenizer):
    tok = tiny_tokenizer
    image_id = tok.convert_tokens_to_ids("<image>")
    enc = encode_conversation(tok, get_template("llava_llama_2"), TURNS[1:2], 0, image_id)
    text = tok.decode(enc.input_ids)
    assert text.startswith("<s>[INST] <<SYS>>\nYou are a helpful language and vision assistant.")
    assert text.endswith(
        "<</SYS>>\n\nHow many objects are there? [/INST] There are two objects, a circle and a square. </s>"
    )


def test_plain_template_keeps_only_the_image(tiny_tokenizer):
    tok = tiny_tokenizer
    image_id = tok.convert_tokens_to_ids("<image>")
    enc = encode_conversation(
        tok, get_template("plain"), [("<image>\nDescribe.", "A red circle.")], 2, image_id
    )
    assert tok.decode(enc.input_ids) == "<s><image><image>A red circle.</s>"


def test_plain_template_rejects_multi_turn(tiny_tokenizer):
    with pytest.raises(DataError, match="plain template takes one turn"):
        encode_conversation(tiny_tokenizer, get_template("plain"), TURNS, 1, 4, "x.json", 3)


def test_round_trip_mismatch_raises():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3, "<image>": 4, "hello": 5, "[INST]": 6, "[/INST]": 7}
    word = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    word.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=word, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    with pytest.raises(DataError, match="does not round-trip"):
        encode_conversation(tok, get_template("llama_2"), [("hello", "unknown words")], 0, 4, "x.json", 7)


def test_malformed_conversations_raise_with_record():
    with pytest.raises(DataError, match=r"x\.json: record r1: conversation has no assistant turn"):
        turns_from_llava([{"from": "human", "value": "hi"}], "x.json", "r1")
    with pytest.raises(DataError, match="has no user turn"):
        turns_from_llava([{"from": "gpt", "value": "hi"}], "x.json", "r2")
    with pytest.raises(DataError, match="malformed"):
        turns_from_llava([{"from": "robot", "value": "hi"}], "x.json", "r3")


def test_unknown_template_lists_valid_names():
    with pytest.raises(
        UnknownNameError, match="valid conversation template names: llama_2, llava_llama_2, plain"
    ):
        get_template("llava_v2")
