"""Point metrics of the verbalizer benchmark (``docs/evaluation.md``), computed with torchmetrics.

Labels are 0/1 for (label_0, label_1); an ``INVALID`` prediction becomes a third class 2 that matches
neither gold class, so F1 is a 3-class F1 macro-averaged over classes 0 and 1 only (the same as sklearn's
``f1_score(labels=[0, 1], average="macro")``). Reported:

* per (task × verbalizer set): F1, accuracy (invalid = wrong), invalid rate;
* per label system: F1 on all pooled examples of the system, and the mean F1 over its (task × set) groups;
* per task: pooled F1 of each label system and their mean;
* ``all_f1``: the unweighted mean of the three label systems' pooled F1 (``None`` unless all three ran).

``mode`` picks which parse is scored: ``"lenient"`` (default) or ``"strict"``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from lvlm.errors import ConfigError
from lvlm.eval.types import INVALID, LABEL_SYSTEMS, Prediction, PromptItem

PARSE_MODES = ("strict", "lenient")
INVALID_CLASS = 2


@dataclass(frozen=True)
class GroupScore:
    """Scores of one group of predictions."""

    n: int
    f1: float
    accuracy: float
    invalid_rate: float


@dataclass(frozen=True)
class SystemScore:
    """A label system: pooled scores and the mean F1 over its (task × set) groups."""

    pooled: GroupScore
    mean_set_f1: float
    n_sets: int


@dataclass(frozen=True)
class BenchmarkMetrics:
    """Every point metric of one evaluation in one parse mode."""

    mode: str
    by_set: dict[tuple[str, str], GroupScore]
    set_systems: dict[tuple[str, str], str]
    by_system: dict[str, SystemScore]
    by_task: dict[str, dict[str, GroupScore]]
    by_task_all: dict[str, float | None]
    all_f1: float | None
    all_mean_set_f1: float | None
    overall: GroupScore


def predicted_labels(predictions: Sequence[Prediction], mode: str) -> torch.Tensor:
    """Predicted classes 0/1, with ``INVALID`` mapped to class 2."""
    if mode not in PARSE_MODES:
        raise ConfigError(f"unknown parse mode '{mode}'; valid parse modes: {', '.join(PARSE_MODES)}")
    labels = torch.tensor([getattr(prediction, mode) for prediction in predictions], dtype=torch.long)
    return torch.where(labels == INVALID, torch.full_like(labels, INVALID_CLASS), labels)


def gold_labels(items: Sequence[PromptItem]) -> torch.Tensor:
    gold = torch.tensor([item.gold for item in items], dtype=torch.long)
    if gold.numel() and not bool(((gold == 0) | (gold == 1)).all()):
        raise ConfigError("gold labels must be 0 or 1; fix: check the task loader's label mapping")
    return gold


def group_score(gold: torch.Tensor, predicted: torch.Tensor) -> GroupScore:
    """F1 (macro over classes 0 and 1, invalid = class 2), accuracy and invalid rate of one group."""
    per_class = multiclass_f1_score(predicted, gold, num_classes=3, average="none", zero_division=0)
    accuracy = multiclass_accuracy(predicted, gold, num_classes=3, average="micro")
    invalid = (predicted == INVALID_CLASS).double().mean()
    return GroupScore(int(gold.numel()), float(per_class[:2].mean()), float(accuracy), float(invalid))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _indices_by(keys: Sequence[object]) -> dict[object, torch.Tensor]:
    groups: dict[object, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[key].append(index)
    return {key: torch.tensor(indices) for key, indices in groups.items()}


def _check_aligned(items: Sequence[PromptItem], predictions: Sequence[Prediction]) -> None:
    if len(items) != len(predictions):
        raise ConfigError(
            f"{len(items)} prompt items but {len(predictions)} predictions; they must align 1:1"
        )
    if not items:
        raise ConfigError("no predictions to score; fix: evaluate at least one task and verbalizer set")


def compute_metrics(
    items: Sequence[PromptItem], predictions: Sequence[Prediction], *, mode: str = "lenient"
) -> BenchmarkMetrics:
    """All point metrics of aligned ``items``/``predictions`` in parse ``mode``."""
    _check_aligned(items, predictions)
    gold, predicted = gold_labels(items), predicted_labels(predictions, mode)

    def score(indices: torch.Tensor) -> GroupScore:
        return group_score(gold[indices], predicted[indices])

    by_set = {
        key: score(index) for key, index in sorted(_indices_by([(i.task, i.set_name) for i in items]).items())
    }
    set_systems = {(item.task, item.set_name): item.system for item in items}
    by_system: dict[str, SystemScore] = {}
    for system, index in _indices_by([item.system for item in items]).items():
        set_f1s = [value.f1 for key, value in by_set.items() if set_systems[key] == system]
        by_system[system] = SystemScore(score(index), float(_mean(set_f1s)), len(set_f1s))
    by_task: dict[str, dict[str, GroupScore]] = defaultdict(dict)
    for (task, system), index in sorted(_indices_by([(i.task, i.system) for i in items]).items()):
        by_task[task][system] = score(index)
    complete = all(system in by_system for system in LABEL_SYSTEMS)
    return BenchmarkMetrics(
        mode=mode,
        by_set=by_set,
        set_systems=set_systems,
        by_system={system: by_system[system] for system in LABEL_SYSTEMS if system in by_system},
        by_task=dict(by_task),
        by_task_all={
            task: _mean([scores[s].f1 for s in LABEL_SYSTEMS])
            if all(s in scores for s in LABEL_SYSTEMS)
            else None
            for task, scores in by_task.items()
        },
        all_f1=_mean([by_system[s].pooled.f1 for s in LABEL_SYSTEMS]) if complete else None,
        all_mean_set_f1=_mean([by_system[s].mean_set_f1 for s in LABEL_SYSTEMS]) if complete else None,
        overall=score(torch.arange(len(items))),
    )
