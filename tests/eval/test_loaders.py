"""Tests of the eval loaders: real original-format files, bad input, hub mapping/fallback, smoke sets."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from pathlib import Path

import pytest

from lvlm.errors import ConfigError, DataError, UnknownNameError
from lvlm.eval.sources import hub
from lvlm.eval.sources.loaders import AUTO_ORDER, DATA_SOURCES, load_examples, load_selected
from lvlm.eval.sources.local import LOCAL_READERS
from lvlm.eval.tasks.definitions import GROUP_CONFIG, LOCAL_FORMATS, build_tasks, load_eval_config
from tests.helpers.paths import SHARED_DATA

SHARED = SHARED_DATA
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared evaluation data not found at {SHARED}")

# (examples after sampling, examples available before sampling, class counts of full tasks)
EXPECTED = {
    "sst2": (872, 872, {0: 444, 1: 428}),
    "fp": (873, 873, {0: 570, 1: 303}),
    "emotion": (1000, 1276, {0: 545, 1: 455}),
    "snli": (1000, 6605, {0: 510, 1: 490}),
    "sick": (1000, 2134, {0: 663, 1: 337}),
    "rte": (277, 277, {0: 146, 1: 131}),
    "qqp": (100, 100, {0: 30, 1: 70}),  # only a 100-row sample of GLUE dev ships in the shared folder
    "mrpc": (408, 408, {0: 279, 1: 129}),
    "subj": (1000, 2000, {0: 500, 1: 500}),
}


@pytest.fixture(scope="module")
def eval_cfg():
    return load_eval_config(config_name=GROUP_CONFIG)


@pytest.fixture(scope="module")
def tasks(eval_cfg):
    return build_tasks(eval_cfg)


def _with_local(spec, **changes):
    return dataclasses.replace(spec, local=dataclasses.replace(spec.local, **changes))


def _write(root: Path, task: str, name: str, content: str | bytes) -> Path:
    path = root / task / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_sources_and_local_formats_are_registries():
    assert {"auto", "hub", "local", "smoke"} <= set(DATA_SOURCES)
    assert AUTO_ORDER == ("local", "hub", "smoke") and set(AUTO_ORDER) < set(DATA_SOURCES)
    assert sorted(LOCAL_READERS) == sorted(LOCAL_FORMATS)


def test_explicit_local_source_needs_a_data_dir(tasks):
    with pytest.raises(ConfigError, match=r"eval\.source=local needs eval\.data_dir; fix: set"):
        load_examples(tasks.get("rte"), source="local", data_dir=None)
    with pytest.raises(UnknownNameError, match=r"unknown eval\.source value 'web'"):
        load_examples(tasks.get("rte"), source="web")


# ------------------------------------------------------------------------------------------ real files


@needs_shared
@pytest.mark.parametrize("task", list(EXPECTED))
def test_real_files_give_spec_counts(tasks, task):
    result = load_examples(tasks.get(task), data_dir=SHARED, source="local", seed=0)
    n, available, classes = EXPECTED[task]
    assert (len(result.examples), result.available) == (n, available)
    assert dict(Counter(e.label for e in result.examples)) == classes
    assert result.source.startswith("local:") and result.source.endswith(tasks.get(task).local.file)
    assert not result.is_smoke and result.skipped == {}
    assert len({e.uid for e in result.examples}) == n


@needs_shared
def test_real_files_drop_classes_by_definition(tasks):
    dropped = {
        t: load_examples(tasks.get(t), data_dir=SHARED, source="local").dropped for t in ("fp", "sick")
    }
    assert dropped == {"fp": {"neutral": 1391}, "sick": {"NEUTRAL": 2793}}
    emotion = load_examples(tasks.get("emotion"), data_dir=SHARED, source="local")
    assert emotion.dropped == {"anger": 275, "fear": 224, "love": 159, "surprise": 66}


@needs_shared
def test_real_text_is_read_verbatim(tasks):
    sst2 = load_examples(tasks.get("sst2"), data_dir=SHARED, source="local")
    assert {"sentence": "lovely and poignant ."} in [e.inputs for e in sst2.examples]
    mrpc = {e.uid: e for e in load_examples(tasks.get("mrpc"), data_dir=SHARED, source="local").examples}
    first = mrpc["mrpc:0"]  # first data row after the BOM-prefixed header; quotes are literal text
    assert first.label == 0 and first.inputs["sentence2"].startswith('" The foodservice pie business')
    rte = {e.uid: e for e in load_examples(tasks.get("rte"), data_dir=SHARED, source="local").examples}
    assert (
        rte["rte:0"].inputs["hypothesis"] == "Christopher Reeve had an accident." and rte["rte:0"].label == 1
    )


def _qqp_fixture(root: Path, file: str, duplicates: int, others: int) -> None:
    rows = [
        {
            "question1": f"q{i} a?",
            "question2": f"q{i} b?",
            "label": "duplicate" if i < duplicates else "not duplicate",
            "id": f"test_{i}",
        }
        for i in range(duplicates + others)
    ]
    _write(root, "qqp", file, "".join(json.dumps(row) + "\n" for row in rows))


@needs_shared
def test_total_of_7430_with_a_full_size_qqp(tmp_path, eval_cfg, tasks):
    for task in EXPECTED:
        if task != "qqp":
            (tmp_path / task).symlink_to(SHARED / task, target_is_directory=True)
    _qqp_fixture(tmp_path, tasks.get("qqp").local.file, duplicates=470, others=830)
    cfg = load_eval_config([f"data_dir={tmp_path}", "source=local"], config_name=GROUP_CONFIG)
    results = load_selected(cfg)
    counts = {task: len(result.examples) for task, result in results.items()}
    assert counts == {
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
    assert sum(counts.values()) == 7430
    assert Counter(e.label for e in results["qqp"].examples) == {0: 362, 1: 638}  # 470:830 of 1,300


@needs_shared
def test_sick_header_variant_and_iso_fp_files(tasks):
    sick = _with_local(tasks.get("sick"), file="SICK_test_from_full.tsv")
    result = load_examples(sick, data_dir=SHARED, source="local")
    assert (result.available, len(result.examples)) == (1404 + 712, 1000)
    fp = tasks.get("fp")
    fallback = load_examples(_with_local(fp, file="Sentences_50Agree.txt"), data_dir=SHARED, source="local")
    assert fallback.encoding == "iso-8859-1"  # not valid UTF-8: read as ISO-8859-1 (tests/reliability)
    latin = load_examples(
        _with_local(fp, file="Sentences_50Agree.txt", encoding="iso-8859-1"), data_dir=SHARED, source="local"
    )
    assert len(latin.examples) == 1363 + 604 and latin.dropped == {"neutral": 2879}
    assert [e.inputs for e in fallback.examples] == [e.inputs for e in latin.examples]


@needs_shared
def test_limit_and_seed_apply_after_sampling(tasks):
    subj = tasks.get("subj")
    a = load_examples(subj, data_dir=SHARED, source="local", seed=0, limit=10)
    b = load_examples(subj, data_dir=SHARED, source="local", seed=0)
    c = load_examples(subj, data_dir=SHARED, source="local", seed=1)
    assert a.examples == b.examples[:10] and Counter(e.label for e in a.examples) == {0: 5, 1: 5}
    assert {e.uid for e in b.examples} != {e.uid for e in c.examples}


# ------------------------------------------------------------------------------------------ bad input


SST2_HEADER = "sentence\tlabel\tindex\n"


def test_missing_column_names_file_and_line(tmp_path, tasks):
    path = _write(tmp_path, "sst2", "becel_sst2_validation.tsv", SST2_HEADER + "good .\t1\t0\nbroken .\t0\n")
    with pytest.raises(DataError) as err:
        load_examples(tasks.get("sst2"), data_dir=tmp_path, source="local")
    message = str(err.value)
    assert message.startswith(f"{path}: record line 3: expected 3 tab-separated columns")
    assert "\n" not in message and "fix:" in message


def test_header_without_configured_column_is_fatal(tmp_path, tasks):
    path = _write(tmp_path, "sst2", "becel_sst2_validation.tsv", "text\tlabel\nfine .\t1\n")
    with pytest.raises(DataError, match=r"record line 1: no column \['sentence'\]") as err:
        load_examples(tasks.get("sst2"), data_dir=tmp_path, source="local", on_error="skip")
    assert str(path) in str(err.value)


def test_unknown_label_names_file_line_and_value(tmp_path, tasks):
    path = _write(tmp_path, "sst2", "becel_sst2_validation.tsv", SST2_HEADER + "ok .\t1\t0\nodd .\t2\t1\n")
    with pytest.raises(DataError) as err:
        load_examples(tasks.get("sst2"), data_dir=tmp_path, source="local")
    assert str(err.value).startswith(f"{path}: record line 3: unknown label '2' in column 'label'")
    assert "eval.task_defs.sst2.local.labels" in str(err.value)


def test_bad_encoding_names_line(tmp_path, tasks):
    content = b"Sales rose 5 % .@positive\n" + "Profit at Lappeenranta m\xe4ker fell .@negative\n".encode(
        "latin-1"
    )
    path = _write(tmp_path, "fp", "Sentences_AllAgree.txt", content)
    ascii_fp = _with_local(tasks.get("fp"), encoding="ascii")  # explicit encodings are strict
    with pytest.raises(DataError) as err:
        load_examples(ascii_fp, data_dir=tmp_path, source="local")
    assert str(err.value).startswith(
        f"{path}: record line 2: cannot decode as ascii (byte 0xe4 at column 25)"
    )
    fixed = load_examples(
        _with_local(tasks.get("fp"), encoding="iso-8859-1"), data_dir=tmp_path, source="local"
    )
    assert "Profit at Lappeenranta m\u00e4ker fell ." in [e.inputs["sentence"] for e in fixed.examples]
    skipped = load_examples(ascii_fp, data_dir=tmp_path, source="local", on_error="skip")
    assert len(skipped.examples) == 1 and skipped.skipped == {"bad encoding": 1}
    default = load_examples(tasks.get("fp"), data_dir=tmp_path, source="local")  # utf-8 → ISO-8859-1
    assert [e.inputs for e in default.examples] == [e.inputs for e in fixed.examples]


def test_skip_mode_counts_each_reason(tmp_path, tasks):
    lines = [SST2_HEADER.rstrip("\n"), "a .\t1\t0", "b .\t7\t1", "c .\t0", "", "  \t1\t3", "d .\t0\t4"]
    _write(tmp_path, "sst2", "becel_sst2_validation.tsv", "\n".join(lines) + "\n")
    result = load_examples(tasks.get("sst2"), data_dir=tmp_path, source="local", on_error="skip")
    assert [e.uid for e in sorted(result.examples, key=lambda e: e.uid)] == ["sst2:0", "sst2:4"]
    assert result.skipped == {"unknown label": 1, "missing column": 1, "blank line": 1, "empty text": 1}


def test_jsonl_problems(tmp_path, tasks):
    rows = [
        '{"question1": "a?", "question2": "b?", "label": "duplicate"}',
        "{not json",
        '{"question1": "c?", "label": "not duplicate"}',
        '{"question1": "d?", "question2": "e?", "label": 1}',
    ]
    path = _write(tmp_path, "qqp", tasks.get("qqp").local.file, "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"record line 2: invalid JSON") as err:
        load_examples(tasks.get("qqp"), data_dir=tmp_path, source="local")
    assert str(path) in str(err.value)
    result = load_examples(tasks.get("qqp"), data_dir=tmp_path, source="local", on_error="skip")
    assert len(result.examples) == 1
    assert result.skipped == {"bad json": 1, "missing column": 1, "unknown label": 1}


def test_emotion_with_and_without_header(tmp_path, tasks):
    body = "i feel great today;joy\ni feel low;sadness\ni am scared;fear\n"
    spec = tasks.get("emotion")
    for content in (body, "text;label_name\n" + body):
        _write(tmp_path, "emotion", "emotion_test.txt", content)
        result = load_examples(spec, data_dir=tmp_path, source="local")
        assert sorted(e.label for e in result.examples) == [0, 1] and result.dropped == {"fear": 1}


def test_bom_header_and_csv_quoting(tmp_path, tasks):
    mrpc = (
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        '1\t1\t2\t" A quoted start .\tB .\n0\t3\t4\tC .\tD .\n'
    )
    _write(tmp_path, "mrpc", "glue_mrpc_dev_original.tsv", mrpc)
    result = load_examples(tasks.get("mrpc"), data_dir=tmp_path, source="local")
    assert {e.uid: e.inputs["sentence1"] for e in result.examples}["mrpc:0"] == '" A quoted start .'
    subj = '0,"a line, with a comma ."\n1,"a field\nover two lines ."\n1,plain text .\n0,bad,extra\n'
    path = _write(tmp_path, "subj", "lmbff_subj_test.csv", subj)
    with pytest.raises(DataError, match=r"record line 5: expected 2 comma-separated columns") as err:
        load_examples(tasks.get("subj"), data_dir=tmp_path, source="local")
    assert str(path) in str(err.value)
    ok = load_examples(tasks.get("subj"), data_dir=tmp_path, source="local", on_error="skip")
    assert {e.uid: e.inputs["text"] for e in ok.examples}["subj:1"] == "a field\nover two lines ."
    assert ok.skipped == {"extra column": 1}


def test_local_source_without_file_is_reported(tmp_path, tasks):
    with pytest.raises(DataError, match="no such file"):
        load_examples(tasks.get("rte"), data_dir=tmp_path, source="local")


# ------------------------------------------------------------------------------------------ hub and smoke


def test_hub_offline_fails_fast_and_auto_falls_back_to_smoke(monkeypatch, caplog, tasks):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(DataError, match=r"hub:nyu-mll/glue/rte:validation: the hub is not reachable"):
        load_examples(tasks.get("rte"), source="hub")
    with monkeypatch.context() as patch:  # past the reachability check, the datasets client itself refuses
        patch.setattr(hub, "hub_reachable", lambda: True)
        with pytest.raises(DataError, match=r"hub:nyu-mll/glue/rte:validation: could not load"):
            load_examples(tasks.get("rte"), source="hub")
    with caplog.at_level(logging.WARNING, logger="lvlm.eval.sources.loaders"):
        result = load_examples(tasks.get("rte"), source="auto", data_dir=None)
    assert time.monotonic() - start < 15
    assert result.is_smoke and result.source == "smoke" and len(result.examples) == 24
    assert any(
        "SMOKE DATA for task 'rte'" in rec.message and rec.levelno == logging.WARNING
        for rec in caplog.records
    )


def test_hub_mapping_with_classlabel_names(monkeypatch, tasks):
    import datasets

    features = datasets.Features(
        {
            "premise": datasets.Value("string"),
            "hypothesis": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
        }
    )
    table = {
        "premise": ["p0", "p1", "p2", "p3", "p4"],
        "hypothesis": ["h0", "h1", "h2", "h3", "h4"],
        "label": [0, 1, 2, -1, 2],
    }
    calls = []

    def fake_load_dataset(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        return datasets.Dataset.from_dict(table, features=features)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    result = load_examples(tasks.get("snli"), source="hub")
    assert calls == [("stanfordnlp/snli", None, {"split": "test"})]
    assert result.source == "hub:stanfordnlp/snli:test" and not result.is_smoke
    assert sorted((e.uid, e.inputs["premise"], e.label) for e in result.examples) == [
        ("snli:0", "p0", 0),
        ("snli:2", "p2", 1),
        ("snli:4", "p4", 1),
    ]
    assert result.dropped == {"neutral": 1, "-1": 1}


def test_hub_string_labels_and_missing_column(monkeypatch, tasks):
    import datasets

    table = {"text": ["s0", "o1", "s2"], "label": [1, 0, 1], "label_text": ["subjective", "objective", "odd"]}
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_dict(table))
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    with pytest.raises(DataError, match=r"hub:SetFit/subj:test: record row 2: unknown label 'odd'"):
        load_examples(tasks.get("subj"), source="hub")
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_dict({"text": ["x"]}))
    with pytest.raises(DataError, match=r"no column \['label_text'\]"):
        load_examples(tasks.get("subj"), source="hub")
    assert hub.HubUnavailable.__mro__[1].__name__ == "LvlmError"


@pytest.mark.parametrize("task", list(EXPECTED))
def test_smoke_sets_are_balanced_and_well_formed(tasks, task):
    result = load_examples(tasks.get(task), source="smoke")
    assert result.is_smoke and result.source == "smoke" and result.skipped == {}
    assert len(result.examples) >= 24
    assert Counter(e.label for e in result.examples) == {0: 12, 1: 12}
    assert all(set(e.inputs) == set(tasks.get(task).field_names) for e in result.examples)
    assert all(e.uid.startswith(f"{task}:smoke:") for e in result.examples)
