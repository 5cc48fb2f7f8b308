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
        p_value = fisher_exact(e1, n1, e0, n0)
        method = "fisher"
    else:
        pbar = e / n
        se = math.sqrt(pbar * (1 - pbar) * (1 / n0 + 1 / n1))
        p_value = min(1.0, 2 * normal_sf(abs(d) / se)) if se > 0 else 1.0
        method = "z"
    return ProportionTest(p0, p1, d, max(-1.0, lower), min(1.0, upper), p_value, method)


def fisher_exact(a: int, n_a: int, b: int, n_b: int) -> float:
    """Two-sided Fisher exact test of a/n_a against b/n_b: the probability, under the hypergeometric
    law of the first cell given the margins, of tables no more likely than the observed one
    (relative slack 1e-7, as scipy and R)."""
    import numpy as np

    n = n_a + n_b
    k = a + b  # events in total
    lo, hi = max(0, n_a - (n - k)), min(k, n_a)
    xs = np.arange(lo, hi + 1)
    # log pmf by the ratio of consecutive terms, anchored at lo with lgamma.
    log0 = (_lchoose(k, lo) + _lchoose(n - k, n_a - lo) - _lchoose(n, n_a))
    if xs.size > 1:
        x = xs[:-1].astype(np.float64)
        ratios = np.log((k - x) * (n_a - x)) - np.log((x + 1) * (n - k - n_a + x + 1))
        logp = log0 + np.concatenate(([0.0], np.cumsum(ratios)))
    else:
        logp = np.array([log0])
    pmf = np.exp(logp - logp.max())
    observed = pmf[a - lo]
    return float(min(1.0, pmf[pmf <= observed * (1 + 1e-7)].sum() / pmf.sum()))


def _lchoose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


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
