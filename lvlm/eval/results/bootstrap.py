"""Vectorised percentile-bootstrap confidence intervals for the label-system F1s and All.

Resampling unit (looked up by name in ``BOOTSTRAP_UNITS``): by default the *example* (task, uid), taking
all its predictions under every verbalizer set together, because the 12 predictions of one example are
not independent; ``unit="prediction"`` resamples single predictions instead. Each cluster is reduced
once to its confusion counts per label system (gold 0/1 × predicted 0/1/invalid = 6 cells per system).
A resample is then a vector of cluster multiplicities (a ``bincount`` of drawn indices), and the counts
of all resamples are one matrix product, so 1,000 resamples of ~90k predictions take a fraction of a
second. F1 follows ``metrics.group_score``
(macro over classes 0 and 1, invalid matching neither).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from lvlm.errors import ConfigError
from lvlm.eval.results.metrics import gold_labels, predicted_labels
from lvlm.eval.types import LABEL_SYSTEMS, Prediction, PromptItem
from lvlm.registry import Registry

_CELLS = 6  # gold in {0, 1} × predicted in {0, 1, invalid}
_MAX_WEIGHT_ENTRIES = 8_000_000  # resample chunk size bound (float64 entries of the weight matrix)
_MAX_PATTERNS = 256  # up to this many distinct cluster patterns, draw multinomial pattern counts directly


@dataclass(frozen=True)
class ConfidenceInterval:
    low: float
    high: float


def macro_f1_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """Macro F1 over classes 0 and 1 from ``[..., 6]`` confusion cells (index = gold * 3 + predicted)."""
    cells = counts.reshape(*counts.shape[:-1], 2, 3)
    f1s = []
    for label in (0, 1):
        other = 1 - label
        true_positive = cells[..., label, label]
        false_positive = cells[..., other, label]
        false_negative = cells[..., label, :].sum(dim=-1) - true_positive
        denominator = 2 * true_positive + false_positive + false_negative
        f1s.append(torch.where(denominator > 0, 2 * true_positive / denominator.clamp(min=1e-12), 0.0))
    return (f1s[0] + f1s[1]) / 2


ClusterIds = Callable[[Sequence[PromptItem]], torch.Tensor]
BOOTSTRAP_UNITS: Registry[ClusterIds] = Registry("bootstrap unit")  # resampling unit → cluster id per item


@BOOTSTRAP_UNITS.register("example")
def example_clusters(items: Sequence[PromptItem]) -> torch.Tensor:
    """One cluster per example (task, uid): all its predictions under every verbalizer set together."""
    ids: dict[tuple[str, str], int] = {}
    return torch.tensor([ids.setdefault((item.task, item.uid), len(ids)) for item in items])


@BOOTSTRAP_UNITS.register("prediction")
def prediction_clusters(items: Sequence[PromptItem]) -> torch.Tensor:
    """Every prediction is its own cluster."""
    return torch.arange(len(items))


def cluster_counts(
    items: Sequence[PromptItem], predictions: Sequence[Prediction], mode: str, unit: str
) -> torch.Tensor:
    """Confusion counts ``[n_clusters, n_systems * 6]`` (float64) of every resampling cluster."""
    clusters = BOOTSTRAP_UNITS.get(unit)(items)
    systems = torch.tensor([LABEL_SYSTEMS.index(item.system) for item in items])
    cells = gold_labels(items) * 3 + predicted_labels(predictions, mode)
    n_clusters, width = int(clusters.max()) + 1, len(LABEL_SYSTEMS) * _CELLS
    flat = clusters * width + systems * _CELLS + cells
    return torch.bincount(flat, minlength=n_clusters * width).reshape(n_clusters, width).double()


def _multinomial_counts(multiplicity: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """``size`` draws of Multinomial(N, multiplicity / N), N = sum(multiplicity), by conditional binomials."""
    total = float(multiplicity.sum())
    remaining = torch.full((size,), total, dtype=torch.float64)
    remaining_share, columns = 1.0, []
    for index, share in enumerate((multiplicity.double() / total).tolist()):
        if index == len(multiplicity) - 1:
            columns.append(remaining.clone())
            break
        probability = torch.full((size,), min(1.0, share / remaining_share) if remaining_share > 0 else 0.0)
        drawn = torch.binomial(remaining, probability.double(), generator=generator)
        columns.append(drawn)
        remaining, remaining_share = remaining - drawn, remaining_share - share
    return torch.stack(columns, dim=1)


def _uniform_resample_counts(n_clusters: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``size`` resamples of ``n_clusters`` clusters with replacement, as multiplicities ``[size, n]``."""
    drawn = torch.randint(n_clusters, (size, n_clusters), generator=generator)
    offsets = torch.arange(size)[:, None] * n_clusters
    weights = torch.bincount((drawn + offsets).reshape(-1), minlength=size * n_clusters)
    return weights.reshape(size, n_clusters).double()


def resampled_system_f1(counts: torch.Tensor, n_resamples: int, seed: int) -> torch.Tensor:
    """F1 of each label system under ``n_resamples`` cluster resamples: ``[n_resamples, n_systems]``.

    Clusters with identical confusion counts are interchangeable, so when few distinct patterns exist
    (always for ``unit="prediction"``) a resample is drawn directly as multinomial pattern counts.
    """
    generator = torch.Generator().manual_seed(seed)
    patterns, multiplicity = torch.unique(counts, dim=0, return_counts=True)
    if len(patterns) <= _MAX_PATTERNS:
        weights = _multinomial_counts(multiplicity, n_resamples, generator)
        resampled = weights @ patterns
        return macro_f1_from_counts(resampled.reshape(n_resamples, len(LABEL_SYSTEMS), _CELLS))
    n_clusters = counts.shape[0]
    chunk = max(1, min(n_resamples, _MAX_WEIGHT_ENTRIES // n_clusters))
    results = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        resampled = _uniform_resample_counts(n_clusters, size, generator) @ counts
        results.append(macro_f1_from_counts(resampled.reshape(size, len(LABEL_SYSTEMS), _CELLS)))
    return torch.cat(results)


def bootstrap_cis(
    items: Sequence[PromptItem],
    predictions: Sequence[Prediction],
    *,
    mode: str = "lenient",
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    unit: str = "example",
) -> dict[str, ConfidenceInterval]:
    """Percentile CIs for each label system present and, when all three are, for ``"all"``."""
    if n_resamples < 1 or not 0 < confidence < 1:
        raise ConfigError(
            f"bootstrap needs n_resamples >= 1 and 0 < confidence < 1, got {n_resamples}, {confidence}"
        )
    if len(items) != len(predictions) or not items:
        raise ConfigError("bootstrap needs equally many (and at least one) items and predictions")
    counts = cluster_counts(items, predictions, mode, unit)
    f1 = resampled_system_f1(counts, n_resamples, seed)
    present = [
        index
        for index, system in enumerate(LABEL_SYSTEMS)
        if counts[:, index * _CELLS : (index + 1) * _CELLS].sum() > 0
    ]
    columns = {LABEL_SYSTEMS[index]: f1[:, index] for index in present}
    if len(present) == len(LABEL_SYSTEMS):
        columns["all"] = f1.mean(dim=1)
    tail = (1 - confidence) / 2
    levels = torch.tensor([tail, 1 - tail], dtype=torch.float64)
    intervals = {}
    for name, values in columns.items():
        low, high = torch.quantile(values, levels).tolist()
        intervals[name] = ConfidenceInterval(low, high)
    return intervals
