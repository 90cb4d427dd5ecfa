"""Issue #8 item 5: the parser decides the headline.

The generate scorer decodes up to 32 new tokens (stopping at EOS) and the parser reads the whole answer:
*lenient* (the headline) is the first verbalizer word found anywhere as a whole word, longest match first;
*strict* is the whole normalised answer equal to one word. Today's first-line reading stays available as
``eval.parse_scope=first_line``. results.json / results.md report, per label system and overall, the invalid
rate and how many answers were found only past the first line.
"""

from __future__ import annotations

import inspect
import json

import pytest
import torch

from lvlm.errors import ConfigError
from lvlm.eval.results.writer import BootstrapSettings, write_results
from lvlm.eval.scoring.generate import score_generate
from lvlm.eval.scoring.parsing import PARSE_SCOPES, parse
from lvlm.eval.scoring.scorers import run_scorer, settings_from_config
from lvlm.eval.tasks.definitions import load_eval_config
from lvlm.eval.types import INVALID, LABEL_SYSTEMS, PromptItem

SENTIMENT = ("positive", "negative")
QQP = ("duplicate", "not duplicate")
RTE = ("entailment", "not entailment")
NEUTRAL = ("foo", "bar")


@pytest.mark.parametrize(
    ("output", "words", "strict", "lenient"),
    [
        ("Sure! Here is my answer:\n\npositive", SENTIMENT, INVALID, 0),
        ("Sure! Here is my answer:\n\nnot duplicate", QQP, INVALID, 1),
        ("not duplicate", QQP, 1, 1),
        ("duplicate", QQP, 0, 0),
        ("The two questions are not duplicate.", QQP, INVALID, 1),
        ("not entailment", RTE, 1, 1),
        ("The answer is foo.", NEUTRAL, INVALID, 0),
        ('"bar"', NEUTRAL, 1, 1),
        ("barn", NEUTRAL, INVALID, INVALID),
        ("The barn is red.\nfood", NEUTRAL, INVALID, INVALID),
        ("positive\n\nExplanation: the review praises the film.", SENTIMENT, INVALID, 0),
        ("  Positive.\n", SENTIMENT, 0, 0),
        ("I think\nnegative", SENTIMENT, INVALID, 1),
        ("not\nduplicate", QQP, 1, 1),
    ],
)
def test_whole_answer_is_the_default_scope(output: str, words: tuple[str, str], strict: int, lenient: int):
    assert parse(output, words) == (strict, lenient)


def test_longest_word_first_whatever_the_word_order():
    assert parse("not duplicate", ("not duplicate", "duplicate")) == (0, 0)
    assert parse("Answer:\nnot duplicate", QQP) == (INVALID, 1)
    assert parse("Answer:\nnot entailment", ("not entailment", "entailment")) == (INVALID, 0)


def test_first_line_scope_keeps_todays_reading():
    assert PARSE_SCOPES == ("answer", "first_line")
    assert parse("Sure! Here is my answer:\n\npositive", SENTIMENT, scope="first_line") == (INVALID, INVALID)
    assert parse("\n\nnegative\nExplanation: positive", SENTIMENT, scope="first_line") == (1, 1)
    assert parse("anything", SENTIMENT, scope="sideways") == (INVALID, INVALID)  # never raises


def test_defaults_are_32_tokens_and_the_whole_answer():
    parameters = inspect.signature(score_generate).parameters
    assert parameters["max_new_tokens"].default == 32
    assert parameters["parse_scope"].default == "answer"
    eval_cfg = load_eval_config()
    assert (eval_cfg.max_new_tokens, eval_cfg.parse_scope) == (32, "answer")
    assert settings_from_config("generate", eval_cfg) == {"max_new_tokens": 32, "parse_scope": "answer"}


class ScriptedChat:
    """Character-level model that answers the text after '|' in the prompt, then EOS."""

    eos_token_ids = frozenset({3})
    pad_token_id = 0
    fingerprint = "scripted-chat"

    def format_prompt(self, prompt: str) -> str:
        return prompt + "=>"

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids if i not in (0, 3))

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return input_ids.float().unsqueeze(-1)

    def forward(self, inputs_embeds, attention_mask, position_ids, past_key_values=None):
        ids = inputs_embeds[..., 0].round().long()
        history = ids if past_key_values is None else torch.cat([past_key_values, ids], dim=1)
        logits = torch.zeros(ids.shape[0], ids.shape[1], 128)
        for row in range(ids.shape[0]):
            text = self.decode(history[row][attention_mask[row] == 1].tolist())
            prompt, _, generated = text.partition("=>")
            script = prompt.split("|", 1)[1]
            logits[row, -1, ord(script[len(generated)]) if len(generated) < len(script) else 3] = 10.0
        return logits, history


ANSWERS = {  # (system, gold, scripted answer)
    "a": ("natural", 0, "Sure! Here is my answer:\n\nfoo"),
    "b": ("natural", 1, "bar"),
    "c": ("neutral", 0, "Sure!\nfoo"),
    "d": ("neutral", 1, "Well,\nthe barn"),
    "e": ("unnatural", 0, "foo\nbar"),
    "f": ("unnatural", 1, "hmm\nbar is it"),
}


def _items() -> list[PromptItem]:
    return [
        PromptItem("t", uid, f"{system}_set", system, f"{uid}|{answer}", NEUTRAL, gold)
        for uid, (system, gold, answer) in ANSWERS.items()
    ]


def test_generation_reads_past_the_first_line_and_stops_at_eos():
    predictions = score_generate(ScriptedChat(), _items(), batch_size=3, progress=False)
    assert [p.raw for p in predictions] == [answer for _, _, answer in ANSWERS.values()]
    assert [p.lenient for p in predictions] == [0, 1, 0, INVALID, 0, 1]
    assert [p.strict for p in predictions] == [INVALID, 1, INVALID, INVALID, INVALID, INVALID]
    first_line = score_generate(ScriptedChat(), _items(), parse_scope="first_line", progress=False)
    assert [p.raw for p in first_line] == ["Sure! Here is my answer:\n", "bar", "Sure!\n", "Well,\n",
                                           "foo\n", "hmm\n"]  # fmt: skip
    assert [p.lenient for p in first_line] == [INVALID, 1, INVALID, INVALID, 0, INVALID]
    with pytest.raises(ConfigError, match="valid parse scopes: answer, first_line"):
        score_generate(ScriptedChat(), _items(), parse_scope="sideways", progress=False)


def test_results_count_answers_found_only_past_the_first_line(tmp_path):
    items = _items()
    run = run_scorer("generate", ScriptedChat(), items, cache_dir=tmp_path / "cache", progress=False)
    again = run_scorer("generate", ScriptedChat(), items, cache_dir=tmp_path / "cache", progress=False)
    assert again.n_cached == len(items) and again.predictions == run.predictions  # survives the cache
    files = write_results(
        tmp_path / "run", items=items, predictions=run.predictions, config={}, model_fingerprint="f" * 64,
        template_hash="t", verbalizer_hash="v", scorer="generate", commit="abc", parse_scope="answer",
        bootstrap=BootstrapSettings(n_resamples=20),
    )  # fmt: skip
    results = json.loads(files.results_json.read_text())
    summary = results["summary"]
    # a (natural) and c, f are found only past line 1; e's first line already holds "foo"; d is invalid
    assert {s: summary[s]["n_past_first_line"] for s in LABEL_SYSTEMS} == {
        "natural": 1, "neutral": 1, "unnatural": 1,
    }  # fmt: skip
    assert summary["all"]["n_past_first_line"] == 3
    assert summary["neutral"]["invalid_rate"] == 0.5 and summary["all"]["invalid_rate_pooled"] == 0.166667
    strict = results["summary_by_mode"]["strict"]
    assert strict["all"]["n_past_first_line"] == 0 and strict["natural"]["invalid_rate"] == 0.5
    assert results["parse_scope"] == "answer"
    table = files.results_md.read_text()
    assert "| label system | F1 [CI] | mean F1 over task × set | invalid % | past line 1 |" in table
    assert "| All |" in table and "| 3 |" in table
