"""Tests of prompt rendering: the SST-2 example of docs/evaluation.md, snapshots of every task × label
system, hashes.

Regenerate the snapshot after an intended template change with
``UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/eval/test_prompts.py`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from lvlm.errors import DataError
from lvlm.eval.sources.loaders import load_examples
from lvlm.eval.tasks.definitions import GROUP_CONFIG, build_tasks, load_eval_config
from lvlm.eval.tasks.prompts import build_prompts, render_prompt, template_hash, templates_hash
from lvlm.eval.tasks.verbalizers import verbalizer_sets
from lvlm.eval.types import Example, VerbalizerSet

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "eval_prompts.txt"
ONE_SET_PER_SYSTEM = ("natural_golden", "neutral_foo_bar", "unnatural_golden_swapped")
DOCUMENTED_SST2 = (
    'If a movie review is positive, you need to output "positive". If a movie review is negative, you need '
    'to output "negative".\nMovie review: lovely and poignant.\nAnswer:'
)


@pytest.fixture(scope="module")
def eval_cfg():
    return load_eval_config(config_name=GROUP_CONFIG)


@pytest.fixture(scope="module")
def tasks(eval_cfg):
    return build_tasks(eval_cfg)


def test_sst2_prompt_is_spec_example_verbatim(eval_cfg, tasks):
    spec = tasks.get("sst2")
    golden = verbalizer_sets(spec, eval_cfg, ["natural"])[0]
    example = Example("sst2", "sst2:573", {"sentence": "lovely and poignant."}, 0)
    item = render_prompt(spec, example, golden)
    assert item.text == DOCUMENTED_SST2
    assert (item.task, item.uid, item.set_name, item.system, item.words, item.gold) == (
        "sst2",
        "sst2:573",
        "natural_golden",
        "natural",
        ("positive", "negative"),
        0,
    )


def _render_snapshot(eval_cfg, tasks) -> str:
    blocks = []
    for name in eval_cfg.tasks:
        spec = tasks.get(name)
        example = {e.uid: e for e in load_examples(spec, source="smoke").examples}[f"{name}:smoke:0"]
        chosen = [s for s in verbalizer_sets(spec, eval_cfg) if s.name in ONE_SET_PER_SYSTEM]
        assert [s.system for s in chosen] == ["natural", "neutral", "unnatural"]
        for vset in chosen:
            item = render_prompt(spec, example, vset)
            blocks.append(f"### {name} | {vset.system} | {vset.name} | {example.uid}\n{item.text}\n")
    return "\n".join(blocks)


def test_prompt_snapshots_for_every_task_and_label_system(eval_cfg, tasks):
    rendered = _render_snapshot(eval_cfg, tasks)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(rendered, encoding="utf-8")
    assert SNAPSHOT.is_file(), f"missing {SNAPSHOT}; run with UPDATE_SNAPSHOTS=1 to create it"
    assert rendered == SNAPSHOT.read_text(encoding="utf-8")
    assert rendered.count("### ") == 27


def test_pair_task_layout(eval_cfg, tasks):
    spec = tasks.get("mrpc")
    swapped = next(s for s in verbalizer_sets(spec, eval_cfg) if s.name == "unnatural_golden_swapped")
    item = render_prompt(
        spec, Example("mrpc", "mrpc:1", {"sentence1": "A .", "sentence2": "B ."}, 1), swapped
    )
    assert item.text.splitlines() == [
        'If the two sentences are equivalent, you need to output "not equivalent". '
        'If the two sentences are not equivalent, you need to output "equivalent".',
        "Sentence 1: A .",
        "Sentence 2: B .",
        "Answer:",
    ]


def test_braces_in_example_text_are_not_formatted(tasks):
    spec = tasks.get("qqp")
    vset = VerbalizerSet("neutral_foo_bar", "neutral", ("foo", "bar"))
    example = Example("qqp", "qqp:7", {"question1": "What is {word_0}?", "question2": "{0} {}"}, 0)
    lines = render_prompt(spec, example, vset).text.splitlines()
    assert lines[1:3] == ["Question 1: What is {word_0}?", "Question 2: {0} {}"]


def test_missing_field_names_task_and_uid(tasks):
    with pytest.raises(DataError, match=r"task rte: record rte:3: example has no field 'hypothesis'"):
        render_prompt(
            tasks.get("rte"),
            Example("rte", "rte:3", {"premise": "p"}, 0),
            VerbalizerSet("natural_yes_no", "natural", ("yes", "no")),
        )


def test_build_prompts_covers_tasks_sets_and_examples(eval_cfg, tasks):
    specs = [tasks.get("sst2"), tasks.get("snli")]
    examples = {s.name: load_examples(s, source="smoke", limit=5).examples for s in specs}
    sets = {s.name: verbalizer_sets(s, eval_cfg) for s in specs}
    prompts = build_prompts(specs, examples, sets)
    assert len(prompts) == 2 * 12 * 5
    assert [p.task for p in prompts[:60]] == ["sst2"] * 60
    assert [p.set_name for p in prompts[:6]] == ["natural_golden"] * 5 + ["natural_1_0"]
    assert prompts[60].words == ("entailment", "contradiction")
    assert all(p.gold in (0, 1) for p in prompts)


def test_template_hash_tracks_the_template(tasks):
    spec = tasks.get("sst2")
    assert template_hash(spec) == template_hash(
        build_tasks(load_eval_config(config_name=GROUP_CONFIG)).get("sst2")
    )
    assert len(template_hash(spec)) == 64
    changed = dataclasses.replace(spec, conditions=("a film review is positive", spec.conditions[1]))
    assert template_hash(changed) != template_hash(spec)
    assert template_hash(tasks.get("snli")) != template_hash(tasks.get("sick"))
    pair = [tasks.get("sst2"), tasks.get("rte")]
    assert templates_hash(pair) == templates_hash(pair[::-1]) != templates_hash([changed, tasks.get("rte")])
