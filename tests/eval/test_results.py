"""Tests of the benchmark result files (lvlm.eval.results.writer): schema, content and determinism."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from lvlm.eval.results.metrics import compute_metrics
from lvlm.eval.results.writer import BootstrapSettings, write_results
from lvlm.eval.types import INVALID, LABEL_SYSTEMS, Prediction, PromptItem

SETS = {"natural": ["golden", "digits"], "neutral": ["foo_bar", "bar_foo"], "unnatural": ["swapped"]}
WORDS = {
    "golden": ("positive", "negative"),
    "digits": ("1", "0"),
    "foo_bar": ("foo", "bar"),
    "bar_foo": ("bar", "foo"),
    "swapped": ("negative", "positive"),
}


def _run(seed: int = 0) -> tuple[list[PromptItem], list[Prediction]]:
    rng = random.Random(seed)
    items, predictions = [], []
    for task in ("sst2", "rte"):
        for uid in range(40):
            gold = rng.randint(0, 1)
            for system in LABEL_SYSTEMS:
                for set_name in SETS[system]:
                    words = WORDS[set_name]
                    items.append(
                        PromptItem(task, str(uid), set_name, system, f"{task}-{uid}: {words}", words, gold)
                    )
                    label = rng.choice([0, 1, INVALID])
                    raw = words[label] if label != INVALID else "I cannot say."
                    predictions.append(Prediction(strict=label, lenient=label, raw=f'"{raw}"\n'))
    return items, predictions


def _write(run_dir: Path, items: list[PromptItem], predictions: list[Prediction], **extra: object):
    return write_results(
        run_dir,
        items=items,
        predictions=predictions,
        config={"model": "tiny", "scorer": {"max_new_tokens": 8}},
        model_fingerprint="f" * 64,
        template_hash="t1",
        verbalizer_hash="v1",
        scorer="generate",
        bootstrap=BootstrapSettings(n_resamples=300, seed=1),
        commit="abc123",
        **extra,
    )


def test_results_json_schema(tmp_path: Path) -> None:
    items, predictions = _run()
    files = _write(tmp_path, items, predictions)
    results = json.loads(files.results_json.read_text())
    for key in (
        "config",
        "model_fingerprint",
        "git_hash",
        "hashes",
        "scorer",
        "parse_mode",
        "bootstrap",
        "summary",
        "summary_by_mode",
        "per_task",
        "per_set",
    ):
        assert key in results, key
    assert results["hashes"] == {"templates": "t1", "verbalizers": "v1"} and results["git_hash"] == "abc123"
    assert set(results["summary"]) == {"natural", "neutral", "unnatural", "all"}
    for name, entry in results["summary"].items():
        assert 0.0 <= entry["f1"] <= 1.0, name
        assert entry["f1_ci_low"] <= entry["f1"] <= entry["f1_ci_high"], name
        assert 0.0 <= entry["invalid_rate"] <= 1.0
    metrics = compute_metrics(items, predictions)
    assert results["summary"]["all"]["f1"] == pytest.approx(metrics.all_f1, abs=1e-6)
    assert results["summary"]["natural"]["f1"] == pytest.approx(
        metrics.by_system["natural"].pooled.f1, abs=1e-6
    )
    assert set(results["summary_by_mode"]) == {"strict", "lenient"}
    assert set(results["per_task"]) == {"sst2", "rte"}
    assert set(results["per_task"]["rte"]) == {*LABEL_SYSTEMS, "all"}
    assert len(results["per_set"]) == 2 * 5 and results["per_set"]["sst2/digits"]["words"] == ["1", "0"]
    assert results["n_predictions"] == len(items) and results["n_examples"] == 80


def test_samples_jsonl_has_one_line_per_prediction(tmp_path: Path) -> None:
    items, predictions = _run()
    files = _write(tmp_path, items, predictions)
    lines = [json.loads(line) for line in files.samples_jsonl.read_text().splitlines()]
    assert len(lines) == len(items)
    first = lines[0]
    assert {
        "prompt",
        "raw",
        "strict",
        "lenient",
        "strict_label",
        "lenient_label",
        "gold",
        "task",
        "set",
    } <= set(first)
    assert first["prompt"] == items[0].text and first["raw"] == predictions[0].raw
    invalid = next(line for line in lines if line["lenient"] == INVALID)
    assert invalid["lenient_label"] == "INVALID"


def test_results_are_byte_identical_for_the_same_predictions(tmp_path: Path) -> None:
    items, predictions = _run()
    first = _write(tmp_path / "a", items, predictions, volatile={"seconds": 1.5})
    second = _write(tmp_path / "b", items, predictions, volatile={"seconds": 9.0})
    for name in ("results.json", "samples.jsonl", "results.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert json.loads(first.run_info_json.read_text())["seconds"] == 1.5
    assert "written_at" not in first.results_json.read_text()
    changed = list(predictions)
    changed[0] = Prediction(1 - max(changed[0].strict, 0), 1 - max(changed[0].lenient, 0))
    third = _write(tmp_path / "c", items, changed)
    assert third.results_json.read_bytes() != second.results_json.read_bytes()


def test_markdown_table_shows_f1_times_100_with_ci(tmp_path: Path) -> None:
    items, predictions = _run()
    files = _write(tmp_path, items, predictions)
    text = files.results_md.read_text()
    summary = files.results["summary"]
    expected = f"| All | {100 * summary['all']['f1']:.1f} [{100 * summary['all']['f1_ci_low']:.1f}, "
    assert expected in text
    for system in ("Natural", "Neutral", "Unnatural"):
        assert f"| {system} |" in text
    assert "| sst2 |" in text and "| rte |" in text


def test_omegaconf_config_is_stored_resolved(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    items, predictions = _run()
    config = OmegaConf.create({"eval": {"max_new_tokens": 8, "tokens": "${eval.max_new_tokens}"}})
    files = write_results(
        tmp_path,
        items=items,
        predictions=predictions,
        config=config,
        model_fingerprint="f" * 64,
        template_hash="t1",
        verbalizer_hash="v1",
        scorer="loglikelihood",
        bootstrap=BootstrapSettings(n_resamples=50),
        commit="abc123",
    )
    stored = json.loads(files.results_json.read_text())["config"]
    assert stored == {"eval": {"max_new_tokens": 8, "tokens": 8}}
