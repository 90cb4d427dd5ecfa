"""Tests of the eval task definitions: config composition, registry, verbalizer sets and sampling."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from lvlm.errors import ConfigError, UnknownNameError
from lvlm.eval.sources.loaders import load_selected
from lvlm.eval.sources.sampling import allocate, apply_limit, stratified_sample
from lvlm.eval.tasks.definitions import (
    CONF_DIR,
    GROUP_CONFIG,
    build_tasks,
    check_settings,
    load_eval_config,
    select_label_systems,
    select_tasks,
)
from lvlm.eval.tasks.verbalizers import verbalizer_hash, verbalizer_sets
from lvlm.eval.types import Example
from lvlm.utils.config import to_plain

ALL_TASKS = ["sst2", "fp", "emotion", "snli", "sick", "rte", "qqp", "mrpc", "subj"]
PROTOCOL_COUNTS = {
    "sst2": 872,
    "fp": 873,
    "emotion": 1000,
    "snli": 1000,
    "sick": 1000,
    "rte": 277,
    "qqp": 1000,
    "mrpc": 408,
    "subj": 1000,
}


@pytest.fixture(scope="module")
def eval_cfg():
    return load_eval_config(config_name=GROUP_CONFIG)


def test_defaults_match_the_brief(eval_cfg):
    assert list(eval_cfg.tasks) == ALL_TASKS
    assert list(eval_cfg.label_systems) == ["natural", "neutral", "unnatural"]
    assert eval_cfg.limit is None and eval_cfg.data_dir is None
    assert (eval_cfg.scorer, eval_cfg.batch_size, eval_cfg.seed) == ("generate", 8, 0)
    assert (eval_cfg.source, eval_cfg.image_slot, eval_cfg.max_new_tokens) == ("auto", "none", 32)
    assert eval_cfg.parse_scope == "answer"
    check_settings(eval_cfg)


def test_default_config_name_composes_the_eval_group():
    cfg = load_eval_config(["limit=3"])
    assert cfg.limit == 3 and "task_defs" in cfg and "verbalizer_sets" in cfg


def test_overrides_accept_group_relative_and_prefixed_keys():
    cfg = load_eval_config(
        ["limit=5", "eval.tasks=[rte,sst2]", "+verbalizer_sets.neutral.neutral_cat_dog=[cat,dog]"],
        config_name=GROUP_CONFIG,
    )
    assert cfg.limit == 5
    assert [spec.name for spec in select_tasks(cfg)] == ["rte", "sst2"]
    names = [vset.name for vset in verbalizer_sets(select_tasks(cfg)[0], cfg)]
    assert "neutral_cat_dog" in names and len(names) == 13


def test_task_specs_follow_the_protocol_table(eval_cfg):
    registry = build_tasks(eval_cfg)
    assert registry.names() == sorted(ALL_TASKS)
    rte = registry.get("rte")
    assert rte.conditions == (
        "the premise entails the hypothesis",
        "the premise does not entail the hypothesis",
    )
    assert rte.golden == ("entailment", "not entailment")
    assert rte.fields == (("premise", "Premise"), ("hypothesis", "Hypothesis"))
    assert registry.get("qqp").fields == (("question1", "Question 1"), ("question2", "Question 2"))
    assert registry.get("emotion").conditions == ("a tweet expresses joy", "a tweet expresses sadness")
    caps = {name: registry.get(name).cap for name in ALL_TASKS}
    assert caps == {name: (1000 if PROTOCOL_COUNTS[name] == 1000 else None) for name in ALL_TASKS}
    assert registry.get("fp").local.label.drop == ("neutral",)
    assert registry.get("snli").hub.ident == "stanfordnlp/snli:test"
    assert registry.get("sst2").hub.ident == "nyu-mll/glue/sst2:validation"
    assert sum(PROTOCOL_COUNTS.values()) == 7430


def test_unknown_names_list_the_valid_ones(eval_cfg):
    with pytest.raises(UnknownNameError) as err:
        select_tasks({**to_plain(eval_cfg), "tasks": ["sst2", "sst-2"]})
    assert "unknown task 'sst-2'" in str(err.value) and "mrpc" in str(err.value)
    with pytest.raises(UnknownNameError, match="valid label system names: natural, neutral, unnatural"):
        select_label_systems({**to_plain(eval_cfg), "label_systems": ["natural", "weird"]})
    with pytest.raises(UnknownNameError, match="label system 'weird'"):
        verbalizer_sets(build_tasks(eval_cfg).get("sst2"), eval_cfg, ["weird"])
    with pytest.raises(UnknownNameError, match=r"valid eval\.source value names: auto, hub, local, smoke"):
        load_selected({**to_plain(eval_cfg), "source": "web"})


def test_bad_task_definition_is_a_config_error(eval_cfg):
    plain = to_plain(eval_cfg)
    broken = {**plain["task_defs"]["sst2"], "golden": ["positive"]}
    with pytest.raises(ConfigError, match=r"eval.task_defs.sst2.golden: expected a list of two strings"):
        build_tasks({**plain, "task_defs": {"sst2": broken}})
    broken = {**plain["task_defs"]["sst2"], "cap": -3}
    with pytest.raises(ConfigError, match=r"eval\.task_defs\.sst2\.cap"):
        build_tasks({**plain, "task_defs": {"sst2": broken}})


def test_twelve_verbalizer_sets_with_golden_words_resolved(eval_cfg):
    registry = build_tasks(eval_cfg)
    rte_sets = verbalizer_sets(registry.get("rte"), eval_cfg)
    assert Counter(vset.system for vset in rte_sets) == {"natural": 3, "neutral": 6, "unnatural": 3}
    by_name = {vset.name: vset.words for vset in rte_sets}
    assert by_name["natural_golden"] == ("entailment", "not entailment")
    assert by_name["unnatural_golden_swapped"] == ("not entailment", "entailment")
    assert by_name["natural_1_0"] == ("1", "0") and by_name["unnatural_no_yes"] == ("no", "yes")
    assert by_name["neutral_lake_river"] == ("lake", "river")
    sst2_sets = verbalizer_sets(registry.get("sst2"), {**to_plain(eval_cfg), "label_systems": ["unnatural"]})
    assert [vset.name for vset in sst2_sets] == [
        "unnatural_golden_swapped",
        "unnatural_0_1",
        "unnatural_no_yes",
    ]
    assert sst2_sets[0].words == ("negative", "positive")
    assert verbalizer_hash(rte_sets) != verbalizer_hash(sst2_sets)
    assert verbalizer_hash(rte_sets) == verbalizer_hash(list(rte_sets))


def test_duplicate_or_degenerate_sets_are_rejected(eval_cfg):
    plain = to_plain(eval_cfg)
    spec = build_tasks(eval_cfg).get("sst2")
    dup = {"natural": {"x": ["a", "b"]}, "neutral": {"x": ["c", "d"]}}
    with pytest.raises(ConfigError, match="set 'x' appears under both natural and neutral"):
        verbalizer_sets(spec, {**plain, "verbalizer_sets": dup})
    same = {"natural": {"echo": ["{golden_0}", "positive"]}}
    with pytest.raises(ConfigError, match="must be two different non-empty words"):
        verbalizer_sets(spec, {**plain, "verbalizer_sets": same})


def test_conf_dir_is_the_repo_conf():
    assert (CONF_DIR / "eval" / "verbalizer.yaml").is_file()


# ---------------------------------------------------------------------------------------------- sampling


def _examples(task: str, counts: dict[int, int]) -> list[Example]:
    rows = [label for label, n in counts.items() for _ in range(n)]
    return [Example(task, f"{task}:{i}", {"text": f"t{i}"}, label) for i, label in enumerate(rows)]


def test_allocate_largest_remainder():
    assert allocate({0: 695, 1: 581}, 1000) == {0: 545, 1: 455}
    assert allocate({0: 1414, 1: 720}, 1000) == {0: 663, 1: 337}
    assert allocate({0: 1, 1: 1, 2: 1}, 2) == {0: 1, 1: 1, 2: 0}  # ties: lower class first
    assert allocate({0: 10, 1: 5}, None) == {0: 10, 1: 5}
    assert allocate({0: 10, 1: 5}, 100) == {0: 10, 1: 5}


@pytest.mark.parametrize("counts", [{0: 400, 1: 900}, {0: 1414, 1: 720}, {0: 3, 1: 2000}])
def test_stratified_sample_preserves_proportions(counts):
    examples = _examples("qqp", counts)
    sample = stratified_sample(examples, 1000, seed=0)
    assert len(sample) == 1000 and len({e.uid for e in sample}) == 1000
    total = sum(counts.values())
    got = Counter(e.label for e in sample)
    for label, n in counts.items():
        assert abs(got[label] - 1000 * n / total) <= 1


def test_sample_is_deterministic_and_seed_dependent():
    examples = _examples("snli", {0: 3368, 1: 3237})
    first = [e.uid for e in stratified_sample(examples, 1000, seed=0)]
    assert first == [e.uid for e in stratified_sample(examples, 1000, seed=0)]
    other = [e.uid for e in stratified_sample(examples, 1000, seed=1)]
    assert set(first) != set(other)
    assert Counter(e.label for e in stratified_sample(examples, 1000, seed=1)) == {0: 510, 1: 490}


def test_every_prefix_is_stratified_so_limit_stays_balanced():
    examples = _examples("subj", {0: 1000, 1: 1000})  # a file sorted by label, like LM-BFF SUBJ
    sample = stratified_sample(examples, 1000, seed=0)
    for n in (1, 2, 7, 20, 101, 999):
        got = Counter(e.label for e in apply_limit(sample, n))
        assert abs(got[0] - n / 2) <= 1 and abs(got[1] - n / 2) <= 1
    assert apply_limit(sample, 20) == sample[:20] and apply_limit(sample, None) == sample


def test_uncapped_task_keeps_every_example():
    examples = _examples("rte", {0: 146, 1: 131})
    sample = stratified_sample(examples, None, seed=3)
    assert sorted(e.uid for e in sample) == sorted(e.uid for e in examples)


def test_replace_keeps_specs_frozen(eval_cfg):
    spec = build_tasks(eval_cfg).get("sst2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.cap = 5  # type: ignore[misc]


def test_one_yaml_file_per_task_composed_into_task_defs(eval_cfg):
    files = {path.stem for path in (CONF_DIR / "eval" / "tasks").glob("*.yaml")}
    assert set(ALL_TASKS) <= files
    assert list(eval_cfg.task_defs) == ALL_TASKS  # defaults-list order, which is the order of eval.tasks


def test_adding_a_task_is_one_file_and_one_defaults_line(tmp_path):
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR / "eval", conf / "eval")
    sst2 = (conf / "eval" / "tasks" / "sst2.yaml").read_text()
    (conf / "eval" / "tasks" / "sst2_copy.yaml").write_text(sst2.replace("Movie review", "Review"))
    group = conf / "eval" / "verbalizer.yaml"
    group.write_text(
        group.read_text().replace(
            "  - tasks@task_defs.subj: subj\n",
            "  - tasks@task_defs.subj: subj\n  - tasks@task_defs.sst2_copy: sst2_copy\n",
        )
    )
    cfg = load_eval_config(["tasks=[sst2_copy]"], config_name=GROUP_CONFIG, conf_dir=conf)
    (spec,) = select_tasks(cfg)
    assert spec.name == "sst2_copy" and spec.fields == (("sentence", "Review"),)
