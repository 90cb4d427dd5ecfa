"""Seeded, class-stratified sampling of a task's examples, and the ``limit`` dev knob.

The rule (the protocol leaves the sampling scheme to configuration; this is the default, also described in
``docs/evaluation.md``):

1. Group the examples by class, each group in source order.
2. Allocation: with ``cap`` ``None`` or at least the number of examples, every example is kept.
   Otherwise class ``c`` with ``n_c`` of ``N`` examples gets ``floor(cap * n_c / N)`` (exact integer
   arithmetic), and the ``cap - sum(floors)`` left over go one each to the classes with the largest
   remainders ``cap * n_c mod N`` (ties: lower class index first). Class proportions are thus preserved
   within one example.
3. Within each class, the examples are shuffled by ``random.Random("<seed>/<task>/<class>")`` (string
   seeds are hashed with SHA-512, so the draw is the same on every machine and Python process) and the
   first ``n_c`` are kept.
4. Order: the kept examples are interleaved by class, the ``k``-th kept example of class ``c`` taking
   position key ``(2k + 1) / (2 n_c)`` (ties: lower class first). Any prefix of the result is therefore
   itself stratified (within one example per class), which is what ``limit`` (take the first N) relies on.

Uncapped tasks go through the same shuffle and interleave, so every task's order depends only on
(seed, task, data) and changing the seed changes both the sample and the order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from fractions import Fraction

from lvlm.eval.types import Example


def allocate(class_counts: Mapping[int, int], cap: int | None) -> dict[int, int]:
    """How many examples of each class to keep (largest-remainder proportional allocation)."""
    total = sum(class_counts.values())
    if cap is None or cap >= total:
        return dict(class_counts)
    allocation = {label: cap * count // total for label, count in class_counts.items()}
    leftover = cap - sum(allocation.values())
    by_remainder = sorted(class_counts, key=lambda label: (-(cap * class_counts[label] % total), label))
    for label in by_remainder[:leftover]:
        allocation[label] += 1
    return allocation


def _class_rng(seed: int, task: str, label: int) -> random.Random:
    return random.Random(f"{seed}/{task}/{label}")


def _interleave(kept: Mapping[int, Sequence[Example]]) -> list[Example]:
    keyed = [
        (Fraction(2 * position + 1, 2 * len(group)), label, example)
        for label, group in kept.items()
        for position, example in enumerate(group)
    ]
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [example for _, _, example in keyed]


def stratified_sample(examples: Sequence[Example], cap: int | None, seed: int) -> list[Example]:
    """Keep ``cap`` examples (all when ``cap`` is None), class-stratified, seeded, interleaved."""
    by_class: dict[int, list[Example]] = {}
    for example in examples:
        by_class.setdefault(example.label, []).append(example)
    allocation = allocate({label: len(group) for label, group in by_class.items()}, cap)
    kept: dict[int, list[Example]] = {}
    for label in sorted(by_class):
        group = list(by_class[label])
        _class_rng(seed, group[0].task, label).shuffle(group)
        kept[label] = group[: allocation[label]]
    return _interleave({label: group for label, group in kept.items() if group})


def apply_limit(examples: Sequence[Example], limit: int | None) -> list[Example]:
    """The first ``limit`` examples (all when ``limit`` is None); deterministic given the order."""
    return list(examples) if limit is None else list(examples[:limit])
