"""``eval=mini``: the miniature's synthetic task family through the benchmark's own code path."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir

from lvlm.data.instruct_mix import family_examples, split_objects
from lvlm.errors import DataError
from lvlm.eval.sources.loaders import load_examples, load_selected
from lvlm.eval.tasks.definitions import select_tasks
from lvlm.eval.tasks.prompts import render_prompt
from lvlm.eval.tasks.verbalizers import verbalizer_sets
from lvlm.utils.config import to_plain
from tests.helpers.cli import run_cli
from tests.helpers.paths import REPO_ROOT

TASKS = ["mini_colour", "mini_shape", "mini_size", "mini_row"]


def _eval_cfg(*overrides: str) -> dict:
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        return to_plain(compose("evaluate", overrides=list(overrides)).eval)


@pytest.fixture(scope="module")
def mini() -> dict:
    return _eval_cfg("eval=mini")


def test_mini_keeps_the_benchmark_protocol(mini):
    standard = _eval_cfg()
    assert mini["template"] == standard["template"]
    assert mini["verbalizer_sets"] == standard["verbalizer_sets"]  # the standard 12 sets
    assert mini["tasks"] == TASKS and mini["source"] == "synthetic_family"
    assert [spec.name for spec in select_tasks(mini)] == TASKS


def test_source_serves_the_held_out_split(mini):
    held_out = {o.text for o in split_objects()["eval"]}
    loads = load_selected({**mini, "limit": 10})
    for task in TASKS:
        load = loads[task]
        assert load.source == f"synthetic_family:{task}:eval" and not load.is_smoke
        assert load.available == len(family_examples(task, "eval"))
        assert [e.label for e in load.examples] == [0, 1] * 5  # any prefix is class-balanced
        assert all(
            set(e.inputs) == {"description"} and e.inputs["description"] in held_out for e in load.examples
        )
    reseeded = load_selected({**mini, "limit": 10, "seed": 1})
    assert [e.uid for e in reseeded["mini_row"].examples] != [e.uid for e in loads["mini_row"].examples]


def test_other_tasks_are_not_served_by_the_family_source():
    sst2 = select_tasks(_eval_cfg("eval.tasks=[sst2]"))[0]
    with pytest.raises(DataError, match="not a task of the synthetic family"):
        load_examples(sst2, source="synthetic_family")


def test_prompts_follow_the_template_exactly(mini):
    spec = next(s for s in select_tasks(mini) if s.name == "mini_colour")
    example = load_examples(spec, source="synthetic_family", limit=1).examples[0]
    sets = {v.name: v for v in verbalizer_sets(spec, mini)}
    assert len(sets) == 12
    line = f"Object: {example.inputs['description']}\nAnswer:"
    expected = {
        "natural_golden": 'If the object has a warm colour, you need to output "warm". If the object has a '
        'cool colour, you need to output "cool".',
        "neutral_lax_sfo": 'If the object has a warm colour, you need to output "lax". If the object has a '
        'cool colour, you need to output "sfo".',
        "unnatural_golden_swapped": 'If the object has a warm colour, you need to output "cool". If the '
        'object has a cool colour, you need to output "warm".',
    }
    for name, instruction in expected.items():
        assert render_prompt(spec, example, sets[name]).text == f"{instruction}\n{line}"
    assert example.inputs["description"] == "a small yellow triangle in the top center on a black background"


@pytest.mark.slow
def test_evaluate_eval_mini_end_to_end(tmp_path):
    args = ["eval=mini", "eval.limit=2", "cache.enabled=false", "wandb.enabled=false",
            "bootstrap.n_resamples=50", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    result = run_cli("evaluate.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["smoke_data"] is False and results["n_predictions"] == 4 * 12 * 2
    assert {k: results["data"][k]["source"] for k in TASKS} == {
        t: f"synthetic_family:{t}:eval" for t in TASKS
    }
    for system in ("natural", "neutral", "unnatural", "all"):
        assert 0.0 <= results["summary"][system]["f1"] <= 1.0
    assert "| Natural |" in (tmp_path / "results.md").read_text()
