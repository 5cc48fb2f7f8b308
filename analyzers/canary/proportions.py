"""Two-proportion comparison (error rates, quantile exceedances) and power.

The test is Fisher's exact test when a cell of the 2x2 table is expected to hold fewer than five
requests, and the pooled two-proportion z-test (Pearson's chi-square) otherwise. The interval for
the difference of the rates is Newcombe's hybrid score interval (from two Wilson intervals), which
behaves at rates of zero and one where the Wald interval does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from analyzers.canary.mannwhitney import normal_quantile, normal_sf


@dataclass(frozen=True)
class ProportionTest:
    p0: float  # baseline rate
    p1: float  # canary rate
    diff: float  # p1 - p0
    lower: float  # interval for the difference
    upper: float
    p_value: float
    method: str  # fisher | z


def wilson(events: int, trials: int, z: float) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    p = events / trials
    z2 = z * z
    den = 1 + z2 / trials
    center = (p + z2 / (2 * trials)) / den
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / den
    return max(0.0, center - half), min(1.0, center + half)


def two_proportion(e0: int, n0: int, e1: int, n1: int, confidence: float) -> ProportionTest:
    """Baseline e0 events of n0 against canary e1 of n1 (both n > 0), two-sided."""
    p0, p1 = e0 / n0, e1 / n1
    z = -normal_quantile((1 - confidence) / 2)
    l0, u0 = wilson(e0, n0, z)
    l1, u1 = wilson(e1, n1, z)
    d = p1 - p0
    lower = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    n = n0 + n1
    e = e0 + e1
    expected_min = min(e, n - e) * min(n0, n1) / n
    if expected_min < 5:
        from scipy.stats import fisher_exact

        p_value = float(fisher_exact([[e1, n1 - e1], [e0, n0 - e0]], alternative="two-sided")[1])
        method = "fisher"
    else:
        pbar = e / n
        se = math.sqrt(pbar * (1 - pbar) * (1 / n0 + 1 / n1))
        p_value = min(1.0, 2 * normal_sf(abs(d) / se)) if se > 0 else 1.0
        method = "z"
    return ProportionTest(p0, p1, d, max(-1.0, lower), min(1.0, upper), p_value, method)


def power(p0: float, p1: float, n0: int, n1: int, confidence: float) -> float:
    """Power of the two-sided two-proportion test to tell rate p1 (canary) from p0 (baseline)."""
    if n0 <= 0 or n1 <= 0:
        return 0.0
    p1 = min(max(p1, 0.0), 1.0)
    if p1 == p0:
        return 1.0 - confidence
    z = -normal_quantile((1 - confidence) / 2)
    pbar = (n0 * p0 + n1 * p1) / (n0 + n1)
    se0 = math.sqrt(max(pbar * (1 - pbar), 0.0) * (1 / n0 + 1 / n1))
    se1 = math.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
    if se1 == 0:
        return 1.0
    return 1.0 - normal_sf((abs(p1 - p0) - z * se0) / se1)


def more_needed(power_at: Callable[[float], float], n0: int, n1: int, target: float,
                limit: float = 1e7) -> tuple[int, int] | None:
    """Extra baseline and canary samples (at the current split) for power_at(scale) to reach
    target, where power_at(k) is the power with k*n0 and k*n1 samples. None if even `limit` times
    the data would not do."""
    if n0 <= 0 or n1 <= 0:
        return None
    if power_at(1.0) >= target:
        return 0, 0
    hi = 2.0
    while power_at(hi) < target:
        hi *= 2
        if hi > limit:
            return None
    lo = 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if power_at(mid) >= target:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-4 * hi:
            break
    return math.ceil(n0 * hi - n0), math.ceil(n1 * hi - n1)
