"""Tests of the benchmark metrics (``lvlm.eval.results.metrics``) and bootstrap CIs (``.bootstrap``)."""

from __future__ import annotations

import random
import time

import pytest
import torch
from sklearn.metrics import f1_score

from lvlm.errors import ConfigError, UnknownNameError
from lvlm.eval.results.bootstrap import (
    bootstrap_cis,
    cluster_counts,
    macro_f1_from_counts,
    resampled_system_f1,
)
from lvlm.eval.results.metrics import compute_metrics
from lvlm.eval.types import INVALID, LABEL_SYSTEMS, Prediction, PromptItem

SETS = [("natural", "n0"), ("neutral", "u0"), ("neutral", "u1"), ("unnatural", "x0")]


def _item(task: str, uid: str, set_name: str, system: str, gold: int) -> PromptItem:
    return PromptItem(task, uid, set_name, system, f"{task} {uid} {set_name}", ("a", "b"), gold)


def _random_run(seed: int, n_examples: int = 60, tasks: int = 3) -> tuple[list[PromptItem], list[Prediction]]:
    rng = random.Random(seed)
    items, predictions = [], []
    for task in range(tasks):
        for uid in range(n_examples):
            gold = rng.randint(0, 1)
            for system, set_name in SETS:
                items.append(_item(f"t{task}", str(uid), set_name, system, gold))
                label = rng.choice([0, 1, INVALID]) if rng.random() < 0.6 else gold
                predictions.append(Prediction(strict=INVALID if rng.random() < 0.2 else label, lenient=label))
    return items, predictions


def _sklearn_f1(items: list[PromptItem], predictions: list[Prediction], mode: str = "lenient") -> float:
    gold = [item.gold for item in items]
    predicted = [2 if getattr(p, mode) == INVALID else getattr(p, mode) for p in predictions]
    return float(f1_score(gold, predicted, labels=[0, 1], average="macro", zero_division=0))


def test_hand_computed_case() -> None:
    # natural: gold 0,0,1,1 predicted 0,invalid,1,0 → class0 tp1 fp1 fn1 → 0.5; class1 tp1 fp0 fn1 → 2/3
    golds = [0, 0, 1, 1]
    natural = [0, INVALID, 1, 0]
    neutral = [1, 1, 0, 0]  # all wrong → 0
    unnatural = [0, 0, 1, 1]  # all right → 1
    items, predictions = [], []
    for system, labels in zip(LABEL_SYSTEMS, (natural, neutral, unnatural), strict=True):
        for uid, (gold, label) in enumerate(zip(golds, labels, strict=True)):
            items.append(_item("sst2", str(uid), f"{system}-0", system, gold))
            predictions.append(Prediction(label, label))
    metrics = compute_metrics(items, predictions)
    natural_f1 = (0.5 + 2 / 3) / 2
    assert metrics.by_system["natural"].pooled.f1 == pytest.approx(natural_f1, abs=1e-6)
    assert metrics.by_system["natural"].pooled.accuracy == pytest.approx(0.5)
    assert metrics.by_system["natural"].pooled.invalid_rate == pytest.approx(0.25)
    assert metrics.by_system["neutral"].pooled.f1 == pytest.approx(0.0)
    assert metrics.by_system["unnatural"].pooled.f1 == pytest.approx(1.0)
    assert metrics.all_f1 == pytest.approx((natural_f1 + 0.0 + 1.0) / 3, abs=1e-6)
    assert metrics.by_task_all["sst2"] == pytest.approx(metrics.all_f1, abs=1e-6)
    assert metrics.overall.invalid_rate == pytest.approx(1 / 12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_f1_matches_sklearn_on_random_predictions(seed: int, mode: str) -> None:
    items, predictions = _random_run(seed)
    metrics = compute_metrics(items, predictions, mode=mode)
    system_f1 = {}
    for system in LABEL_SYSTEMS:
        index = [i for i, item in enumerate(items) if item.system == system]
        expected = _sklearn_f1([items[i] for i in index], [predictions[i] for i in index], mode)
        system_f1[system] = expected
        assert metrics.by_system[system].pooled.f1 == pytest.approx(expected, abs=1e-6)
    assert metrics.all_f1 == pytest.approx(sum(system_f1.values()) / 3, abs=1e-6)
    for (task, set_name), score in metrics.by_set.items():
        index = [i for i, item in enumerate(items) if (item.task, item.set_name) == (task, set_name)]
        assert score.n == len(index)
        assert score.f1 == pytest.approx(
            _sklearn_f1([items[i] for i in index], [predictions[i] for i in index], mode)
        )
    neutral_sets = [s.f1 for key, s in metrics.by_set.items() if metrics.set_systems[key] == "neutral"]
    assert metrics.by_system["neutral"].mean_set_f1 == pytest.approx(sum(neutral_sets) / len(neutral_sets))


def test_all_is_none_when_a_label_system_is_missing() -> None:
    items, predictions = _random_run(0)
    keep = [i for i, item in enumerate(items) if item.system != "unnatural"]
    metrics = compute_metrics([items[i] for i in keep], [predictions[i] for i in keep])
    assert metrics.all_f1 is None and "unnatural" not in metrics.by_system
    cis = bootstrap_cis([items[i] for i in keep], [predictions[i] for i in keep], n_resamples=50)
    assert set(cis) == {"natural", "neutral"}


def test_metric_input_errors_are_config_errors() -> None:
    items, predictions = _random_run(0, n_examples=2, tasks=1)
    with pytest.raises(ConfigError, match="must align"):
        compute_metrics(items, predictions[:-1])
    with pytest.raises(ConfigError, match="valid parse modes"):
        compute_metrics(items, predictions, mode="fuzzy")
    with pytest.raises(UnknownNameError, match="valid bootstrap unit names: example, prediction"):
        bootstrap_cis(items, predictions, n_resamples=10, unit="task")


def test_f1_from_counts_matches_point_metric() -> None:
    items, predictions = _random_run(3)
    counts = cluster_counts(items, predictions, "lenient", "example").sum(dim=0).reshape(3, 6)
    metrics = compute_metrics(items, predictions)
    for index, system in enumerate(LABEL_SYSTEMS):
        assert float(macro_f1_from_counts(counts[index])) == pytest.approx(
            metrics.by_system[system].pooled.f1
        )


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    items, predictions = _random_run(4)
    first = bootstrap_cis(items, predictions, n_resamples=400, seed=7)
    again = bootstrap_cis(items, predictions, n_resamples=400, seed=7)
    other = bootstrap_cis(items, predictions, n_resamples=400, seed=8)
    assert first == again and first != other
    metrics = compute_metrics(items, predictions)
    estimates = {s: metrics.by_system[s].pooled.f1 for s in LABEL_SYSTEMS} | {"all": metrics.all_f1}
    for name, interval in first.items():
        assert interval.low < estimates[name] < interval.high
        assert interval.high - interval.low < 0.4


def test_pattern_sampler_matches_plain_resampling() -> None:
    """The multinomial shortcut (few distinct clusters) must give the same spread as index resampling."""
    items, predictions = _random_run(5, n_examples=400)
    counts = cluster_counts(items, predictions, "lenient", "prediction")
    shortcut = resampled_system_f1(counts, 3000, seed=0)
    jitter = torch.arange(counts.shape[0], dtype=torch.float64)[:, None] * 1e-9  # all rows distinct
    plain = resampled_system_f1(counts + jitter, 3000, seed=0)
    assert torch.allclose(shortcut.mean(0), plain.mean(0), atol=2e-3)
    assert torch.allclose(shortcut.std(0), plain.std(0), rtol=0.1)


def test_bootstrap_is_fast_on_a_full_sized_run() -> None:
    items, predictions = _random_run(6, n_examples=1860, tasks=4)  # 29,760 predictions on 7,440 examples
    big_items = items * 3  # ~89k predictions, same clusters counted three times
    big_predictions = predictions * 3
    start = time.perf_counter()
    cis = bootstrap_cis(big_items, big_predictions, n_resamples=1000)
    by_prediction = bootstrap_cis(big_items, big_predictions, n_resamples=1000, unit="prediction")
    elapsed = time.perf_counter() - start
    assert set(cis) == set(by_prediction) == {*LABEL_SYSTEMS, "all"}
    assert elapsed < 5.0, f"bootstrap of ~89k predictions took {elapsed:.2f}s"
