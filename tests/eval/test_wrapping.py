"""Issue #8 item 6: compared rows are wrapped the same way, and every row records its wrapping.

Paper A's convention (docs/evaluation.md): LLM rows in the Llama-2 chat template without a system prompt,
LVLM rows in ``llava_llama_2`` with LLaVA's system prompt; the other choice is one override
(``model.template`` / ``model.system_prompt``) for ``kind=hf`` and ``kind=checkpoint``.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from lvlm.errors import UnknownNameError
from lvlm.eval.models.registry import EVAL_MODELS
from lvlm.eval.runner import evaluate
from lvlm.eval.tasks.definitions import load_eval_config
from lvlm.templates import LLAVA_SYSTEM_PROMPT
from tests.eval.tiny_checkpoint import write_tiny_checkpoint

LLAMA_2 = "<s>[INST] {prompt} [/INST]"
LLAVA_LLAMA_2 = f"<s>[INST] <<SYS>>\n{LLAVA_SYSTEM_PROMPT}\n<</SYS>>\n\n{{prompt}} [/INST]"
HF_KEYS = {"kind": "hf", "dtype": "float32", "device": "cpu", "use_chat_template": True,
           "system_prompt": None, "template": None}  # fmt: skip


@pytest.fixture(scope="module")
def saved_hf(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("hf_llm")
    torch.manual_seed(0)
    tok = tiny_tokenizer
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_cfg):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "last.ckpt", tiny_model_cfg)


def _hf(path, **model):
    return EVAL_MODELS.get("hf")({"model": HF_KEYS | {"name_or_path": str(path)} | model})


def _ckpt(path, image_slot="none", **model):
    keys = {"kind": "checkpoint", "checkpoint": str(path), "dtype": "float32", "device": "cpu"}
    return EVAL_MODELS.get("checkpoint")({"model": keys | model, "eval": {"image_slot": image_slot}})


def test_hf_row_records_the_tokenizer_template_and_no_system_prompt(saved_hf):
    model = _hf(saved_hf)
    assert model.wrapping == {"template": "tokenizer chat template", "system_prompt": None,
                              "image_slot": "none", "rendered": LLAMA_2}  # fmt: skip


def test_hf_overrides_system_prompt_or_template(saved_hf):
    plain = _hf(saved_hf)
    llava = _hf(saved_hf, system_prompt="llava")
    assert llava.format_prompt("{prompt}") == LLAVA_LLAMA_2
    assert llava.wrapping["template"] == "tokenizer chat template"
    assert llava.wrapping["system_prompt"] == LLAVA_SYSTEM_PROMPT
    named = _hf(saved_hf, template="llava_llama_2")
    assert named.wrapping == {"template": "llava_llama_2", "system_prompt": LLAVA_SYSTEM_PROMPT,
                              "image_slot": "none", "rendered": LLAVA_LLAMA_2}  # fmt: skip
    prompt = 'If a movie review is positive, you need to output "foo".\nAnswer:'
    assert named.encode(named.format_prompt(prompt)) == llava.encode(llava.format_prompt(prompt))
    custom = _hf(saved_hf, template="llama_2", system_prompt="Answer with one word.")
    expected = "<s>[INST] <<SYS>>\nAnswer with one word.\n<</SYS>>\n\n{prompt} [/INST]"
    assert custom.format_prompt("{prompt}") == expected
    assert len({plain.fingerprint, llava.fingerprint, named.fingerprint, custom.fingerprint}) == 4
    with pytest.raises(UnknownNameError, match="valid conversation template names: llama_2, llava_llama_2"):
        _hf(saved_hf, template="chatml")


def test_checkpoint_row_defaults_to_its_training_template(checkpoint):
    model = _ckpt(checkpoint)
    assert model.wrapping == {"template": "llava_llama_2", "system_prompt": LLAVA_SYSTEM_PROMPT,
                              "image_slot": "none", "rendered": LLAVA_LLAMA_2}  # fmt: skip


def test_checkpoint_overrides_change_the_rendered_prompt_as_documented(checkpoint, saved_hf):
    llm_row = _ckpt(checkpoint, template="llama_2")  # paper A: FOIT / NoFOIT rows
    assert llm_row.wrapping == {"template": "llama_2", "system_prompt": None, "image_slot": "none",
                                "rendered": LLAMA_2}  # fmt: skip
    base_row = _hf(saved_hf)
    assert llm_row.format_prompt("{prompt}") == base_row.format_prompt("{prompt}")  # same as the base row
    no_system = _ckpt(checkpoint, system_prompt="none")
    assert no_system.format_prompt("{prompt}") == LLAMA_2 and no_system.wrapping["system_prompt"] is None
    blank = _ckpt(checkpoint, "blank", system_prompt="Be brief.")
    expected = "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n<image>\n{prompt} [/INST]"
    assert blank.format_prompt("{prompt}") == expected
    assert blank.wrapping["image_slot"] == "blank" and blank.wrapping["template"] == "llava_llama_2"
    fingerprints = {m.fingerprint for m in (_ckpt(checkpoint), llm_row, no_system, blank)}
    assert len(fingerprints) == 4


def test_results_json_and_md_record_the_wrapping(saved_hf, checkpoint, tmp_path):
    eval_cfg = load_eval_config(["tasks=[sst2]", "limit=2", "label_systems=[natural]", "max_new_tokens=2"])
    for name, model in (("hf", _hf(saved_hf)), ("ckpt", _ckpt(checkpoint, template="llama_2"))):
        files, _ = evaluate(eval_cfg, model, tmp_path / name, cache_dir=None, config={}, progress=False)
        results = json.loads(files.results_json.read_text())
        assert results["wrapping"] == model.wrapping
        table = files.results_md.read_text()
        template = model.wrapping["template"]
        assert f"Wrapping: template `{template}`, system prompt none, image slot `none`." in table
