"""Tests of the batched scorers, the HF adapter and the prediction cache (lvlm.eval.scoring, models.hf).

A tiny random Llama (float32) with a byte-level BPE tokenizer trained in-process stands in for a real
model; a scripted character-level model checks the stopping rules of the decode loop exactly.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lvlm.errors import ConfigError, UnknownNameError
from lvlm.eval.models.hf import HFScoringModel, load_hf_scoring_model
from lvlm.eval.scoring.batching import common_prefix_length, left_pad, length_sorted_batches, prefill
from lvlm.eval.scoring.generate import generate_batch, score_generate
from lvlm.eval.scoring.loglik import build_request
from lvlm.eval.scoring.scorers import get_scorer, run_scorer, settings_from_config
from lvlm.eval.types import PromptItem

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %} {{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}"
)
REVIEWS = [
    "lovely and poignant.",
    "a gorgeous , witty , seductive movie .",
    "it 's slow -- very , very slow .",
    "the acting , costumes , music , cinematography and sound are all astounding given the production 's "
    "austere locales .",
    "unflinchingly bleak and desperate",
    "a sometimes tedious film .",
    "it 's a charming and often affecting journey .",
    "the story is also as unoriginal as they come , already having been recycled more times than i 'd care "
    "to count .",
    "not a bad way to spend an hour or two .",
    "bad .",
    "exhilarating but blatantly biased .",
]
WORD_SETS = [("positive", "negative"), ("foo", "bar"), ("not duplicate", "duplicate"), ("sfo", "lax")]


def _tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads; one thread avoids spin-waiting on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny() -> HFScoringModel:
    torch.manual_seed(0)
    tokenizer = _tokenizer([*REVIEWS, *(w for pair in WORD_SETS for w in pair)] * 4)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=128,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return HFScoringModel(LlamaForCausalLM(config).float().eval(), tokenizer)


@pytest.fixture(scope="module")
def items() -> list[PromptItem]:
    rendered = []
    for index, review in enumerate(REVIEWS):
        for set_index, words in enumerate(WORD_SETS):
            text = (
                f'If a movie review is positive, you need to output "{words[0]}". If a movie review is '
                f'negative, you need to output "{words[1]}".\nMovie review: {review}\nAnswer:'
            )
            rendered.append(
                PromptItem("sst2", str(index), f"set{set_index}", "neutral", text, words, index % 2)
            )
    return rendered


def test_batched_logits_equal_unbatched_logits(tiny: HFScoringModel, items: list[PromptItem]) -> None:
    prompts = [tiny.encode(tiny.format_prompt(item.text)) for item in items[:8]]
    assert len({len(p) for p in prompts}) > 3, "prompts must differ in length to exercise left padding"
    batch = left_pad(prompts, tiny.pad_token_id)
    batched, _ = tiny.forward(tiny.embed(batch.input_ids), batch.attention_mask, batch.position_ids)
    for row, prompt in enumerate(prompts):
        single = left_pad([prompt], tiny.pad_token_id)
        alone, _ = tiny.forward(tiny.embed(single.input_ids), single.attention_mask, single.position_ids)
        real = batched[row, batch.input_ids.shape[1] - len(prompt) :]
        assert torch.allclose(real, alone[0], atol=1e-5), (real - alone[0]).abs().max()


def test_shared_prefix_prefill_equals_unbatched_logits(tiny: HFScoringModel, items: list[PromptItem]) -> None:
    same_set = [item for item in items if item.set_name == "set1"][:6]
    prompts = [tiny.encode(tiny.format_prompt(item.text)) for item in same_set]
    shared = common_prefix_length(prompts)
    assert shared >= 8, "prompts of one verbalizer set must share their instruction tokens"
    state = prefill(tiny, prompts, tiny.pad_token_id)
    assert state.attention_mask.shape[1] == max(len(p) for p in prompts)
    for row, prompt in enumerate(prompts):
        alone = left_pad([prompt], tiny.pad_token_id)
        logits, _ = tiny.forward(tiny.embed(alone.input_ids), alone.attention_mask, alone.position_ids)
        assert torch.allclose(state.last_logits[row], logits[0, -1], atol=1e-5)
        assert int(state.position_ids[row, -1]) == len(prompt) - 1
    # continuing from the shared-prefix cache gives the same next-step logits as continuing alone
    next_ids = state.last_logits.argmax(-1)
    mask = torch.cat([state.attention_mask, torch.ones(len(prompts), 1, dtype=torch.long)], dim=1)
    step, _ = tiny.forward(
        tiny.embed(next_ids[:, None]), mask, state.position_ids[:, -1:] + 1, state.past_key_values
    )
    for row, prompt in enumerate(prompts):
        ids = torch.tensor([[*prompt, int(next_ids[row])]])
        with torch.no_grad():
            full = tiny.model(input_ids=ids).logits[0, -1]
        assert torch.allclose(step[row, -1], full, atol=1e-5)


def test_decode_loop_matches_hf_generate(tiny: HFScoringModel, items: list[PromptItem]) -> None:
    prompts = [tiny.encode(tiny.format_prompt(item.text)) for item in items[:6]]
    ours = generate_batch(tiny, prompts, max_new_tokens=6)
    for prompt, tokens in zip(prompts, ours, strict=True):
        expected = tiny.model.generate(
            torch.tensor([prompt]),
            max_new_tokens=len(tokens),
            do_sample=False,
            pad_token_id=tiny.pad_token_id,
        )[0, len(prompt) :].tolist()
        assert tokens == [t for t in expected if t not in tiny.eos_token_ids][: len(tokens)]


@pytest.mark.parametrize("name", ["generate", "loglikelihood"])
def test_predictions_do_not_depend_on_batch_size(
    tiny: HFScoringModel, items: list[PromptItem], name: str
) -> None:
    one = run_scorer(name, tiny, items, batch_size=1, progress=False).predictions
    eight = run_scorer(name, tiny, items, batch_size=8, progress=False).predictions
    assert [(p.strict, p.lenient, p.raw) for p in one] == [(p.strict, p.lenient, p.raw) for p in eight]
    if name == "loglikelihood":
        for a, b in zip(one, eight, strict=True):
            assert a.loglikelihoods == pytest.approx(b.loglikelihoods, abs=1e-5)
    else:
        assert any(p.raw for p in one), "the tiny model should generate some text"


def test_loglikelihood_matches_full_forward(tiny: HFScoringModel, items: list[PromptItem]) -> None:
    predictions = run_scorer("loglikelihood", tiny, items, batch_size=5, progress=False).predictions
    assert any(n > 1 for p in predictions for n in p.extra["n_tokens"]), "need multi-token words"
    for item, prediction in zip(items, predictions, strict=True):
        request = build_request(tiny, item, None)
        for word_index, continuation in enumerate(request.continuation_ids):
            ids = torch.tensor([request.context_ids + continuation])
            with torch.no_grad():
                logits = tiny.model(input_ids=ids).logits[0].log_softmax(-1)
            start = len(request.context_ids)
            expected = sum(float(logits[start - 1 + j, t]) for j, t in enumerate(continuation))
            assert prediction.loglikelihoods[word_index] == pytest.approx(expected, abs=1e-4)
        assert (
            prediction.strict
            == prediction.lenient
            == int(prediction.loglikelihoods[1] > prediction.loglikelihoods[0])
        )


def test_continuation_tokens_follow_the_joint_encoding(tiny: HFScoringModel, items: list[PromptItem]) -> None:
    request = build_request(tiny, items[0], None)
    context = tiny.format_prompt(items[0].text)
    assert request.context_ids == tiny.encode(context)
    assert request.context_ids + request.continuation_ids[0] == tiny.encode(context + " positive")


class ScriptedModel:
    """Character-level ``ScoringModel`` that answers the text after '|' in the prompt, then EOS."""

    eos_token_ids = frozenset({3})
    pad_token_id = 0
    fingerprint = "scripted"

    def __init__(self) -> None:
        self.forward_calls = 0

    def format_prompt(self, prompt: str) -> str:
        return prompt + "=>"

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids if i not in (0, 3))

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return input_ids.float().unsqueeze(-1)

    def forward(self, inputs_embeds, attention_mask, position_ids, past_key_values=None):
        self.forward_calls += 1
        ids = inputs_embeds[..., 0].round().long()
        history = ids if past_key_values is None else torch.cat([past_key_values, ids], dim=1)
        logits = torch.zeros(ids.shape[0], ids.shape[1], 128)
        for row in range(ids.shape[0]):
            text = self.decode(history[row][attention_mask[row] == 1].tolist())
            prompt, _, generated = text.partition("=>")
            script = prompt.split("|", 1)[1]
            logits[row, -1, ord(script[len(generated)]) if len(generated) < len(script) else 3] = 10.0
        return logits, history


def test_generation_stops_at_line_end_and_eos_and_exits_early() -> None:
    model = ScriptedModel()
    answers = ["|yes\nmore text", "|no", "|\n\nok\nmore", "|a long answer that never ends"]
    items = [
        PromptItem("t", str(i), "s", "natural", text, ("yes", "no"), 0) for i, text in enumerate(answers)
    ]
    first_line = {"parse_scope": "first_line", "progress": False}  # stops at the end of the first line
    predictions = score_generate(model, items, batch_size=4, max_new_tokens=12, **first_line)
    assert [p.raw for p in predictions] == ["yes\n", "no", "\n\nok\n", "a long answe"]
    assert [(p.strict, p.lenient) for p in predictions] == [(0, 0), (1, 1), (-1, -1), (-1, -1)]
    model.forward_calls = 0
    score_generate(model, items[:2], batch_size=4, max_new_tokens=50, **first_line)
    assert model.forward_calls == 4  # prefill + 3 steps: "yes\n" is done after 4 tokens, "no" sees EOS at 3


def test_scorer_registry_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="generate, loglikelihood"):
        get_scorer("beam")
    with pytest.raises(ConfigError, match="valid settings: max_new_tokens"):
        run_scorer("generate", ScriptedModel(), [], temperature=0.7)


def test_scorer_settings_come_from_the_eval_keys_of_the_same_name() -> None:
    eval_cfg = {"scorer": "generate", "max_new_tokens": 5, "batch_size": 8, "limit": None}
    assert settings_from_config("generate", eval_cfg) == {"max_new_tokens": 5}
    assert settings_from_config("loglikelihood", eval_cfg) == {}
    assert settings_from_config("loglikelihood", {"target_delimiter": " "}) == {"target_delimiter": " "}


def test_length_sorted_batches_cover_every_index_once() -> None:
    batches = length_sorted_batches([3, 9, 1, 9, 4], batch_size=2)
    assert batches == [[1, 3], [4, 0], [2]]
    grouped = length_sorted_batches([3, 9, 1, 9, 4], batch_size=2, groups=["b", "a", "b", "b", "a"])
    assert grouped == [[1, 4], [3, 0], [2]]


def test_cache_resume_computes_only_missing_items(
    tiny: HFScoringModel, items: list[PromptItem], tmp_path
) -> None:
    reference = run_scorer("generate", tiny, items, batch_size=4, progress=False).predictions
    half = len(items) // 2
    first = run_scorer("generate", tiny, items[:half], batch_size=4, cache_dir=tmp_path, progress=False)
    assert (first.n_cached, first.n_computed) == (0, half)
    with first.cache_path.open("a") as handle:
        handle.write('{"key": "half-written line of a killed run", "stri')  # no newline: killed mid-write
    resumed = run_scorer("generate", tiny, items, batch_size=4, cache_dir=tmp_path, progress=False)
    assert (resumed.n_cached, resumed.n_computed) == (half, len(items) - half)
    assert resumed.predictions == reference
    lines = first.cache_path.read_text().splitlines()
    assert len(lines) == len(items) + 1 and all(
        json.loads(line) for line in lines if "half-written" not in line
    )
    again = run_scorer("generate", tiny, items, batch_size=4, cache_dir=tmp_path, progress=False)
    assert (again.n_cached, again.n_computed) == (len(items), 0) and again.predictions == reference
    other = run_scorer("generate", tiny, items[:4], cache_dir=tmp_path, progress=False, max_new_tokens=3)
    assert other.n_computed == 4 and other.cache_path != first.cache_path


def test_killed_run_loses_at_most_one_batch(tiny: HFScoringModel, items: list[PromptItem], tmp_path) -> None:
    class Killed(Exception):
        pass

    original = tiny.forward

    def dying_forward(*args, **kwargs):
        if any(path.stat().st_size for path in tmp_path.rglob("*.jsonl")):  # the first batch is on disk
            raise Killed  # die in the middle of the second batch
        return original(*args, **kwargs)

    settings = {"batch_size": 4, "cache_dir": tmp_path, "progress": False, "max_new_tokens": 2}
    tiny.forward = dying_forward
    try:
        with pytest.raises(Killed):
            run_scorer("generate", tiny, items, **settings)
    finally:
        del tiny.forward
    resumed = run_scorer("generate", tiny, items, **settings)
    assert (resumed.n_cached, resumed.n_computed) == (4, len(items) - 4)
    reference = run_scorer("generate", tiny, items, batch_size=4, progress=False, max_new_tokens=2)
    assert resumed.predictions == reference.predictions


def test_hf_adapter_wrapping_fingerprint_and_loading(tiny: HFScoringModel, tmp_path) -> None:
    assert tiny.format_prompt("hi") == "<s>[INST] hi [/INST]"
    plain = HFScoringModel(tiny.model, tiny.tokenizer, use_chat_template=False)
    assert plain.format_prompt("hi") == "hi" and plain.fingerprint != tiny.fingerprint
    assert tiny.eos_token_ids == {tiny.tokenizer.eos_token_id}
    tiny.model.save_pretrained(tmp_path / "tiny")
    tiny.tokenizer.save_pretrained(tmp_path / "tiny")
    loaded = load_hf_scoring_model(str(tmp_path / "tiny"), dtype="float32")
    assert loaded.fingerprint == tiny.fingerprint
    with torch.no_grad():
        loaded.model.model.norm.weight[0] += 1e-3
    assert HFScoringModel(loaded.model, loaded.tokenizer).fingerprint != tiny.fingerprint


def test_loading_an_unknown_hub_id_offline_fails_clearly() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(ConfigError, match="cannot load model/tokenizer") as error:
        load_hf_scoring_model("no-such-org/no-such-model")
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="valid dtype names"):
        load_hf_scoring_model("x", dtype="float8")
