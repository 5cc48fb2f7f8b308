"""The canary statistics against scipy and brute force on generated samples.

meshctl computes rank statistics on weighted (distinct value, count) samples and never imports scipy
at run time; these tests hold every figure against scipy's independent implementations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from analyzers.canary import mannwhitney as mw
from analyzers.canary import proportions as prop
from analyzers.canary.mannwhitney import WeightedSample


def _samples(seed: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(5, 400)), int(rng.integers(5, 400))
    if kind == "continuous":
        return rng.lognormal(3, 0.5, n) * 1.05, rng.lognormal(3, 0.5, m)
    if kind == "ties":  # whole milliseconds, as Envoy logs them
        return np.round(rng.lognormal(3, 0.5, n) * 1.1), np.round(rng.lognormal(3, 0.5, m))
    return rng.integers(0, 4, n).astype(float), rng.integers(0, 5, m).astype(float)  # heavy ties


KINDS = ["continuous", "ties", "heavy-ties"]
SEEDS = range(8)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_u_statistic_and_asymptotic_p_value_match_scipy(seed: int, kind: str) -> None:
    x, y = _samples(seed, kind)
    wx, wy = WeightedSample.from_values(x), WeightedSample.from_values(y)
    ref = sps.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    assert mw.rank_stats(wx, wy).u == ref.statistic
    assert mw.p_value_asymptotic(wx, wy) == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("seed", range(40))
def test_exact_p_value_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(1, 9)), int(rng.integers(1, 100))
    x, y = rng.normal(0.4, 1, m), rng.normal(0, 1, n)
    p, method = mw.p_value(WeightedSample.from_values(x), WeightedSample.from_values(y))
    assert method == "exact"
    assert p == pytest.approx(sps.mannwhitneyu(x, y, method="exact").pvalue, rel=1e-12)


def test_auto_p_value_follows_scipy_rule():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=20), rng.normal(size=30)
    p, method = mw.p_value(WeightedSample.from_values(x), WeightedSample.from_values(y))
    assert method == "asymptotic"
    assert p == pytest.approx(sps.mannwhitneyu(x, y).pvalue, rel=1e-9)
    xt = np.array([1.0, 1.0, 2.0])  # ties -> asymptotic, as scipy
    assert mw.p_value(WeightedSample.from_values(xt), WeightedSample.from_values(y))[1] == "asymptotic"


def _naive_wdiff(x: np.ndarray, y: np.ndarray, d: float, zq: float) -> float:
    """R's wdiff with a full ranking of the raw samples (scipy's rankdata), nothing weighted."""
    nx, ny = len(x), len(y)
    r = sps.rankdata(np.concatenate([x - d, y]))
    dz = r[:nx].sum() - nx * (nx + 1) / 2 - nx * ny / 2
    _, t = np.unique(r, return_counts=True)
    sigma = math.sqrt(nx * ny / 12 * ((nx + ny + 1) - (t**3 - t).sum() / ((nx + ny) * (nx + ny - 1))))
    return (dz - np.sign(dz) * 0.5) / sigma - zq


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(5))
def test_weighted_ranks_equal_a_full_ranking(seed: int, kind: str) -> None:
    x, y = _samples(seed, kind)
    wx, wy = WeightedSample.from_values(x), WeightedSample.from_values(y)
    for d in (-3.0, -0.5, 0.0, 0.25, 1.0, 2.5):
        assert mw.wilcoxon_diff(wx, wy, d, 1.5) == pytest.approx(_naive_wdiff(x, y, d, 1.5), abs=1e-9)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_interval_ends_are_where_the_test_switches(seed: int, kind: str) -> None:
    """The interval inverts the test: just outside each end the shifted samples differ at the
    confidence level (scipy's p-value below alpha), just inside they do not (or the end is clamped
    at the range of possible shifts). zeroin stops within ~1e-4 of the switch."""
    x, y = _samples(seed, kind)
    conf = 0.95
    ci = mw.shift_interval(WeightedSample.from_values(x), WeightedSample.from_values(y), conf)
    alpha = 1 - conf
    eps = 2.5e-4

    def p_at(d: float) -> float:
        return sps.mannwhitneyu(x - d, y, method="asymptotic", use_continuity=True).pvalue

    for end, outward in ((ci.lower, -1), (ci.upper, 1)):
        clamped = end in (ci.mu_min, ci.mu_max)
        if not clamped:
            assert p_at(end + outward * eps) < alpha + 1e-12 or p_at(end + 2 * outward * eps) < alpha
        # Inside the interval the p-value reaches alpha somewhere near the end.
        inside = [p_at(end - outward * k * eps) for k in (1, 2, 4, 8)]
        assert max(inside) >= alpha or clamped or ci.lower > ci.upper
    # The estimate is where the standardized statistic changes sign (Hodges-Lehmann-like).
    assert ci.mu_min <= ci.estimate <= ci.mu_max
    assert _naive_wdiff(x, y, ci.estimate - eps, 0.0) >= 0 >= _naive_wdiff(x, y, ci.estimate + eps, 0.0) or \
        abs(_naive_wdiff(x, y, ci.estimate, 0.0)) < 1e-9


def test_interval_covers_a_known_shift():
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(200):
        y = rng.normal(10, 2, 60)
        x = rng.normal(10, 2, 50) + 1.5
        ci = mw.shift_interval(WeightedSample.from_values(x), WeightedSample.from_values(y), 0.9)
        covered += ci.lower <= 1.5 <= ci.upper
    assert 0.84 <= covered / 200 <= 0.96  # 90% nominal


def test_estimate_is_close_to_hodges_lehmann():
    rng = np.random.default_rng(5)
    x, y = rng.normal(3, 1, 300), rng.normal(0, 1, 250)
    hl = np.median(np.subtract.outer(x, y))
    ci = mw.shift_interval(WeightedSample.from_values(x), WeightedSample.from_values(y), 0.98)
    assert ci.estimate == pytest.approx(hl, abs=0.02)


def test_cles_matches_u_over_nm():
    rng = np.random.default_rng(2)
    x, y = np.round(rng.normal(5, 2, 80)), np.round(rng.normal(4, 2, 70))
    u = sps.mannwhitneyu(x, y).statistic
    assert mw.cles(WeightedSample.from_values(x), WeightedSample.from_values(y)) == pytest.approx(u / (80 * 70))


def test_quantization_stays_within_its_resolution():
    rng = np.random.default_rng(4)
    raw = np.r_[rng.lognormal(3, 1.2, 300_000), -rng.lognormal(0, 1, 500), np.zeros(20)]
    exact = WeightedSample.from_values(raw)
    q = WeightedSample.from_values(raw, max_distinct=4096)
    assert q.values.size <= 4096 and q.n == exact.n and q.resolution > 0
    for p in (0.01, 0.5, 0.9, 0.99):
        assert q.quantile(p) == pytest.approx(exact.quantile(p), rel=q.resolution)
    assert np.all(np.diff(q.values) > 0)
    few = WeightedSample.from_values(np.round(raw), max_distinct=4096)  # few distinct values: exact
    assert few.resolution == 0.0


# ---- proportions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_fisher_exact_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n0, n1 = int(rng.integers(1, 5000)), int(rng.integers(1, 500))
    e0, e1 = int(rng.integers(0, min(n0, 15) + 1)), int(rng.integers(0, min(n1, 15) + 1))
    ref = sps.fisher_exact([[e1, n1 - e1], [e0, n0 - e0]])[1]
    assert prop.fisher_exact(e1, n1, e0, n0) == pytest.approx(ref, rel=1e-9, abs=1e-300)


def test_z_test_matches_chi_square_and_small_counts_use_fisher():
    t = prop.two_proportion(120, 10_000, 180, 10_000, 0.98)
    chi2 = sps.chi2_contingency([[180, 9820], [120, 9880]], correction=False)
    assert t.method == "z" and t.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    small = prop.two_proportion(0, 30, 2, 30, 0.98)
    assert small.method == "fisher"
    assert small.p_value == pytest.approx(sps.fisher_exact([[2, 28], [0, 30]])[1])


def test_newcombe_interval_reproduces_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80, method 10.
    t = prop.two_proportion(48, 80, 56, 70, 0.95)
    assert (t.lower, t.upper) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_proportion_power_matches_simulation():
    rng = np.random.default_rng(9)
    p0, p1, n0, n1 = 0.01, 0.02, 3000, 1500
    predicted = prop.power(p0, p1, n0, n1, 0.95)
    hits = 0
    reps = 400
    for _ in range(reps):
        e0, e1 = rng.binomial(n0, p0), rng.binomial(n1, p1)
        hits += prop.two_proportion(int(e0), n0, int(e1), n1, 0.95).p_value < 0.05
    assert abs(hits / reps - predicted) < 0.08


def test_rank_power_matches_simulation():
    rng = np.random.default_rng(8)
    base = WeightedSample.from_values(np.round(rng.lognormal(3, 0.5, 20_000)))
    p_alt = mw.scaled_cles(base, 1.1)
    n0, n1 = 400, 200
    predicted = mw.power(p_alt, n0, n1, 0.95)
    hits = 0
    reps = 300
    for _ in range(reps):
        y = np.round(rng.lognormal(3, 0.5, n0))
        x = np.round(rng.lognormal(3, 0.5, n1) * 1.1)
        hits += mw.p_value_asymptotic(WeightedSample.from_values(x), WeightedSample.from_values(y)) < 0.05
    assert abs(hits / reps - predicted) < 0.1


def test_more_needed_reaches_the_target_power():
    def at(k: float) -> float:
        return prop.power(0.001, 0.006, round(200 * k), round(100 * k), 0.98)

    add0, add1 = prop.more_needed(at, 200, 100, 0.8)
    assert add0 > 0 and add1 > 0 and add0 == pytest.approx(2 * add1, rel=0.01)
    assert prop.power(0.001, 0.006, 200 + add0, 100 + add1, 0.98) >= 0.8
    assert prop.power(0.001, 0.006, 200 + int(add0 * 0.95), 100 + int(add1 * 0.95), 0.98) < 0.8


def test_normal_quantile_matches_scipy():
    from scipy.special import ndtri

    for p in (1e-300, 1e-12, 1e-4, 0.01, 0.025, 0.3, 0.5, 0.8, 0.99, 1 - 1e-10):
        assert mw.normal_quantile(p) == pytest.approx(float(ndtri(p)), abs=1e-12)
