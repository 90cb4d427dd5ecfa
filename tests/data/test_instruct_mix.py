"""``data=instruct_mix``: the miniature's task family generator and the base LLM's text instruction mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import lvlm.utils.runtime  # noqa: F401  (registers the ${lvlm_root:} resolver the paths use)
from lvlm.data.instruct_mix import (
    FAMILY_TASKS,
    all_objects,
    build_records,
    ensure_instruct_mix,
    evaluation_words,
    family_examples,
    split_objects,
    training_word_pool,
)
from lvlm.errors import UnknownNameError
from lvlm.utils.config import to_plain
from tests.helpers.cli import run_cli
from tests.helpers.paths import REPO_ROOT

EVAL_NEUTRAL = ("foo", "bar", "sfo", "lax", "lake", "river")


@pytest.fixture(scope="module")
def data_cfg() -> dict:
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["data=instruct_mix"])
    return to_plain(cfg.data)


def _small(cfg: dict, root: Path, **mix) -> dict:
    return {**cfg, "root": str(root), "mix": {**cfg["mix"], "num_train": 48, "num_val": 8, **mix}}


def test_family_generator_is_deterministic_by_seed():
    for task in FAMILY_TASKS:
        a = family_examples(task, "train", seed=1, count=40)
        assert a == family_examples(task, "train", seed=1, count=40)
        assert a != family_examples(task, "train", seed=2, count=40)
        assert family_examples(task, "eval") == family_examples(task, "eval")
    with pytest.raises(UnknownNameError, match="mini_colour"):
        family_examples("sst2", "eval")


def test_eval_split_is_disjoint_from_training_and_class_balanced():
    split = split_objects()
    train, held_out = {o.text for o in split["train"]}, {o.text for o in split["eval"]}
    assert not train & held_out
    assert train | held_out == {o.text for o in all_objects()} and len(held_out) == 243
    for task in FAMILY_TASKS:
        examples = family_examples(task, "eval")
        labels = [e.label for e in examples]
        assert labels.count(0) == labels.count(1) > 40
        assert {e.text for e in examples} <= held_out
        assert {e.text for e in family_examples(task, "train", seed=0, count=200)} <= train


def test_word_pool_excludes_every_evaluation_word(data_cfg, tiny_tokenizer):
    family = data_cfg["family"]
    excluded = evaluation_words(family)
    assert set(EVAL_NEUTRAL) | {"warm", "cool", "round", "angular", "1", "0", "yes", "no"} <= excluded
    mix = data_cfg["mix"]
    pool = training_word_pool(mix, family)
    assert len(pool) > 90 and not set(pool) & excluded  # the listed words (generated_words: 0 by default)
    assert set(pool) >= {"baz", "jfk", "pond"} and pool == training_word_pool(mix, family)
    generated = training_word_pool({**mix, "generated_words": 3000}, family)  # + seeded pseudo-words
    assert len(generated) > 2000 and set(generated) >= set(pool) and not set(generated) & excluded
    assert not [w for w in generated for e in EVAL_NEUTRAL if e in w]
    assert not [w for w in pool for e in EVAL_NEUTRAL if e in w]  # not even as a part of a word
    # ... the same filter holds when someone adds evaluation words to the listed pool
    extended = training_word_pool({**mix, "word_pool": [*mix["word_pool"], "foo", "Lake", "barn"]}, family)
    assert not {"foo", "Lake", "barn"} & set(extended)

    def pieces(word: str) -> set[str]:  # tokens of a word as it appears inside quotes
        ids = tiny_tokenizer(f'output "{word}".', add_special_tokens=False)["input_ids"]
        return set(tiny_tokenizer.convert_ids_to_tokens(ids)[2:-1])

    seen = set().union(*(pieces(w) for w in pool))
    for word in EVAL_NEUTRAL:  # unseen words, but made of pieces the base model has produced
        assert pieces(word) <= seen, (word, pieces(word) - seen)


def test_records_follow_the_benchmark_template(data_cfg):
    from lvlm.eval.tasks.definitions import task_spec_from_config
    from lvlm.eval.tasks.prompts import render_prompt
    from lvlm.eval.types import Example, VerbalizerSet

    family = data_cfg["family"]
    records = build_records(data_cfg, 64, seed=3)
    systems = {meta["system"] for _, meta in records}
    assert systems == {"natural", "neutral"}  # swapped sets are off by default
    pool = set(training_word_pool(data_cfg["mix"], family))
    for record, meta in records:
        spec = task_spec_from_config(meta["task"], family["task_defs"][meta["task"]], family)
        words = tuple(meta["words"])
        example = Example(meta["task"], meta["uid"], {"description": meta["text"]}, meta["label"])
        expected = render_prompt(spec, example, VerbalizerSet("x", "natural", words)).text
        human, gpt = record["conversations"]
        assert human == {"from": "human", "value": expected}
        assert gpt == {"from": "gpt", "value": f'"{words[meta["label"]]}"'}
        if meta["system"] == "neutral":
            assert set(words) <= pool
    record, meta = next((r, m) for r, m in records if m["task"] == "mini_size" and m["system"] == "natural")
    assert record["conversations"][0]["value"].splitlines()[1].startswith("Object: a ")


def test_mix_is_cached_deterministic_and_keyed(data_cfg, tmp_path):
    first = ensure_instruct_mix(_small(data_cfg, tmp_path / "a"))
    again = ensure_instruct_mix(_small(data_cfg, tmp_path / "b"))
    other = ensure_instruct_mix(_small(data_cfg, tmp_path / "c", seed=7))
    assert first.name == again.name != other.name
    assert (first / "train.json").read_bytes() == (again / "train.json").read_bytes()
    assert (first / "train.json").read_bytes() != (other / "train.json").read_bytes()
    assert ensure_instruct_mix(_small(data_cfg, tmp_path / "a")) == first  # cached
    card = json.loads((first / "card.json").read_text())
    assert card["records"] == {"train": 48, "val": 8} and "foo" in card["excluded_words"]
    meta = [json.loads(line) for line in (first / "meta.jsonl").read_text().splitlines()]
    held_out = {o.text for o in split_objects()["eval"]}
    assert len(meta) == 56 and not {m["text"] for m in meta} & held_out
    with_swaps = _small(data_cfg, tmp_path / "d", weights={"natural": 0.2, "neutral": 0.4, "unnatural": 0.4})
    assert "unnatural" in {m["system"] for _, m in build_records(with_swaps, 64, seed=0)}


@pytest.mark.slow
def test_instruct_mix_trains_a_few_steps(tmp_path):
    args = [
        "data=instruct_mix", "stage=text_finetune", "trainer.max_steps=3", "trainer.max_epochs=-1",
        "data.mix.num_train=48", "data.mix.num_val=8", f"data.root={tmp_path / 'data'}",
        "logger=none", "~callbacks.progress", f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    result = run_cli("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len([m for m in metrics if "train/loss" in m]) == 3
