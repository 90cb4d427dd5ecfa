"""Seed statistics of the study table: mean, sample standard deviation and the t-interval of the mean.

The Student t quantile is computed here (no scipy dependency): the two-sided probability
``P(|T| <= t)`` of a t distribution with an integer number of degrees of freedom has a closed finite
series in ``θ = atan(t / sqrt(ν))`` (Abramowitz & Stegun 26.7.3–4), which is inverted by bisection.
``t_quantile(0.975, 1)`` is 12.706, ``t_quantile(0.975, 4)`` is 2.776.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def t_two_sided_mass(t: float, df: int) -> float:
    """``P(|T| <= t)`` for Student's t with ``df`` (a positive integer) degrees of freedom, ``t >= 0``."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df}")
    theta = math.atan(t / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:  # sinθ · (1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + …), df/2 terms
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= cos2 * (2 * k - 1) / (2 * k)
            total += term
        return sin * total
    if df == 1:
        return 2 * theta / math.pi
    term, total = 1.0, 1.0  # 2/π · (θ + sinθ cosθ (1 + 2/3 cos²θ + 2·4/(3·5) cos⁴θ + …)), (df-1)/2 terms
    for k in range(1, (df - 1) // 2):
        term *= cos2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + sin * math.cos(theta) * total)


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile (0.5 < p < 1) of Student's t with integer ``df``, by bisection."""
    if not 0.5 < probability < 1.0:
        raise ValueError(f"t_quantile needs 0.5 < probability < 1, got {probability}")
    mass = 2 * probability - 1
    low, high = 0.0, 1.0
    while t_two_sided_mass(high, df) < mass:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if t_two_sided_mass(middle, df) < mass:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)


def sample_std(values: Sequence[float]) -> float | None:
    """Standard deviation with ``n - 1`` in the denominator; ``None`` for fewer than two values."""
    if len(values) < 2:
        return None
    centre = mean(values)
    return math.sqrt(sum((value - centre) ** 2 for value in values) / (len(values) - 1))


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided ``confidence`` t-interval of the mean of ``values`` (needs at least two values)."""
    std = sample_std(values)
    if std is None:
        raise ValueError("a t-interval needs at least two values")
    centre = mean(values)
    half = t_quantile(1 - (1 - confidence) / 2, len(values) - 1) * std / math.sqrt(len(values))
    return centre - half, centre + half
