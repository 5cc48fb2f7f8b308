"""Wilcoxon rank-sum (Mann-Whitney) statistics on weighted samples.

The confidence interval for the location shift (canary minus baseline) is the one R's
`wilcox.test(x, y, conf.int=TRUE, exact=FALSE, correct=TRUE)` computes and Kayenta's NetflixACAJudge
ports: the asymptotic, tie-corrected, continuity-corrected standardized rank statistic `wdiff(d)` of
`x - d` against `y`, and its roots found with Brent's zeroin (absolute tolerance 1e-4, at most 1000
iterations). A root that the normal quantile cannot reach is clamped to `min(x) - max(y)` or
`max(x) - min(y)`. The point estimate is the zeroin root of `wdiff(d) = 0`, with the continuity
correction kept as Kayenta does (R drops it there).

Samples are `WeightedSample`s: sorted distinct values with counts. Ranks, rank sums and tie counts
of the pooled sample follow from a merge of the two sorted arrays, so one evaluation of `wdiff`
costs O(k log k) in the number k of *distinct* values instead of O(n log n) in the number of
requests, and every figure is exactly what a full ranking of the raw samples gives. Envoy writes
durations in whole milliseconds, so millions of requests have a few thousand distinct values; for
continuous data with very many distinct values, `WeightedSample.from_values(max_distinct=...)`
quantizes on a logarithmic grid whose relative step it reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# Beyond this many distinct values a sample is quantized to a log grid (see WeightedSample.quantized):
# one evaluation of the rank statistic then stays well under a millisecond.
MAX_DISTINCT = 32768
ZEROIN_TOL = 1e-4
ZEROIN_MAXIT = 1000
_EPS = 2.220446049250313e-16


@dataclass(frozen=True)
class WeightedSample:
    """A sample as sorted distinct values and their multiplicities (NaN-free)."""

    values: np.ndarray  # float64, strictly increasing
    counts: np.ndarray  # int64, > 0
    resolution: float = 0.0  # relative grid step when quantized, 0 when exact

    @staticmethod
    def from_values(values: Sequence[float] | np.ndarray, *, max_distinct: int | None = None) -> WeightedSample:
        """Build from raw values (NaNs must already be handled). With `max_distinct`, samples with more
        distinct values are quantized to a log grid fine enough to stay under it."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if arr.size and np.isnan(arr).any():
            raise ValueError("NaN in sample: apply the NaN strategy first")
        return WeightedSample.from_sorted(np.sort(arr) if arr.size > 1 else arr, max_distinct=max_distinct)

    @staticmethod
    def from_sorted(sorted_values: np.ndarray, *, max_distinct: int | None = None) -> WeightedSample:
        v = np.asarray(sorted_values, dtype=np.float64)
        if max_distinct is not None and v.size > max_distinct:
            distinct = int(np.count_nonzero(v[1:] != v[:-1])) + 1
            if distinct > max_distinct:
                # Straight from the sorted requests to the grid: no per-request run-length pass.
                return _quantize_sorted(v, None, max_distinct)
        vals, counts = run_lengths(v)
        return WeightedSample(vals, counts)

    @staticmethod
    def from_counts(values: np.ndarray, counts: np.ndarray) -> WeightedSample:
        """From (value, count) pairs in any order, possibly repeated."""
        v = np.asarray(values, dtype=np.float64)
        c = np.asarray(counts, dtype=np.int64)
        keep = c > 0
        v, c = v[keep], c[keep]
        order = np.argsort(v, kind="stable")
        v, c = v[order], c[order]
        if v.size > 1:
            starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
            c = np.add.reduceat(c, starts)
            v = v[starts]
        return WeightedSample(v, c)

    def quantized(self, max_distinct: int) -> WeightedSample:
        """The sample on a log grid with at most about `max_distinct` points (see _quantize_sorted)."""
        return _quantize_sorted(self.values, self.counts, max_distinct)

    @cached_property
    def n(self) -> int:
        return int(self.counts.sum())

    @cached_property
    def cum(self) -> np.ndarray:
        """0, then the running total of counts (cum[i] = number of values below values[i])."""
        return np.concatenate(([0], np.cumsum(self.counts)))

    @cached_property
    def tie_term(self) -> float:
        """Sum of t^3 - t over the sample's own tie groups."""
        t = self.counts.astype(np.float64)
        return float(np.sum(t**3 - t))

    @property
    def empty(self) -> bool:
        return self.values.size == 0

    def mean(self) -> float:
        return self._mean

    @cached_property
    def _mean(self) -> float:
        n = self.n
        return float(np.dot(self.values, self.counts) / n) if n else float("nan")

    def std(self) -> float:
        """Sample (n-1) standard deviation."""
        return self._std

    @cached_property
    def _std(self) -> float:
        n = self.n
        if n < 2:
            return 0.0
        m = self.mean()
        return float(math.sqrt(np.dot(self.counts, (self.values - m) ** 2) / (n - 1)))

    def quantile(self, q: float) -> float:
        """R-7 / numpy 'linear' quantile of the expanded sample."""
        n = self.n
        if n == 0:
            return float("nan")
        h = (n - 1) * q
        lo = math.floor(h)
        hi = min(lo + 1, n - 1)
        cum = self.cum[1:]
        v_lo = self.values[int(np.searchsorted(cum, lo, side="right"))]
        v_hi = self.values[int(np.searchsorted(cum, hi, side="right"))]
        return float(v_lo + (h - lo) * (v_hi - v_lo))

    def expand(self) -> np.ndarray:
        return np.repeat(self.values, self.counts)

    def same_as(self, other: WeightedSample) -> bool:
        return (self.values.size == other.values.size and bool(np.array_equal(self.values, other.values))
                and bool(np.array_equal(self.counts, other.counts)))

    def count_above(self, threshold: float) -> int:
        i = int(np.searchsorted(self.values, threshold, side="right"))
        return int(self.counts[i:].sum())

    def fraction_above(self, threshold: float) -> float:
        n = self.n
        return self.count_above(threshold) / n if n else float("nan")


def run_lengths(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and counts of a sorted array (-0.0 and 0.0 are one value). A sort and a
    run-length pass cost ~0.1 s for 5M values whatever their number of distinct values (hash-based
    counting degrades badly with many)."""
    v = np.asarray(sorted_values, dtype=np.float64)
    if v.size == 0:
        return np.empty(0, np.float64), np.empty(0, np.int64)
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
    counts = np.diff(np.r_[starts, v.size]).astype(np.int64)
    return v[starts], counts


def _quantize_sorted(v: np.ndarray, counts: np.ndarray | None, max_distinct: int) -> WeightedSample:
    """Sorted values (with counts, or one each) on a log grid: |v| becomes the grid point exp(j * r)
    nearest on the log scale, zeros and signs are kept, and the relative step r (chosen so that at
    most about `max_distinct` points are used) is reported as `resolution`. The values are sorted,
    so the grid's bin edges are found by binary search: O(grid log n), not O(n) logarithms."""
    i0 = int(np.searchsorted(v, 0.0, side="left"))
    i1 = int(np.searchsorted(v, 0.0, side="right"))
    if i0 == 0 and i1 == v.size:  # all zeros
        vals, cnts = run_lengths(v) if counts is None else (v, counts)
        return WeightedSample(vals, cnts)
    lo = min(([-v[i0 - 1]] if i0 else []) + ([v[i1]] if i1 < v.size else []))
    hi = max(([-v[0]] if i0 else []) + ([v[-1]] if i1 < v.size else []))
    step = max((math.log(hi) - math.log(lo)) * 2.0 / max(max_distinct - 2, 1), 1e-12)
    if counts is None:
        def at(i: np.ndarray | int) -> np.ndarray | int:  # one request per value: the position is the count
            return i
    else:
        cum = np.concatenate(([0], np.cumsum(counts)))

        def at(i: np.ndarray | int) -> np.ndarray | int:
            return cum[i]
    parts_v, parts_c = [], []
    if i0:
        neg = -v[:i0][::-1]  # magnitudes, ascending
        gv, bounds = _log_grid(neg, step)
        # Positions in the reversed slice map back to v as i0 - position.
        gc = at(i0 - bounds[:-1]) - at(i0 - bounds[1:])
        keep = gc > 0
        parts_v.append(-gv[keep][::-1])
        parts_c.append(gc[keep][::-1])
    if i1 > i0:
        parts_v.append(np.zeros(1))
        parts_c.append(np.array([at(i1) - at(i0)]))
    if i1 < v.size:
        gv, bounds = _log_grid(v[i1:], step)
        gc = at(i1 + bounds[1:]) - at(i1 + bounds[:-1])
        keep = gc > 0
        parts_v.append(gv[keep])
        parts_c.append(gc[keep])
    return WeightedSample(np.concatenate(parts_v), np.concatenate(parts_c).astype(np.int64), step)


def _log_grid(v: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid points exp(j * step) spanning sorted positive values v, and the bounds (indices into v,
    len(points) + 1 of them) of the values nearest to each point on the log scale."""
    j0 = math.floor(math.log(v[0]) / step + 0.5)
    j1 = math.floor(math.log(v[-1]) / step + 0.5)
    js = np.arange(j0, j1 + 1, dtype=np.float64)
    edges = np.exp((js[1:] - 0.5) * step)  # upper edge of every grid point but the last
    bounds = np.concatenate(([0], np.searchsorted(v, edges, side="left"), [v.size]))
    return np.exp(js * step), bounds


# ---- rank statistics ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RankStats:
    """Rank-sum figures of x (shifted by d) against y in the pooled sample."""

    u: float  # Mann-Whitney U of x: #{x_i - d > y_j} + 0.5 #{x_i - d == y_j}
    dz: float  # U - nx*ny/2 (= rank sum of x - nx(nx+1)/2 - nx*ny/2)
    ties: float  # sum over tie groups of t^3 - t
    sigma: float  # tie-corrected standard deviation of U under H0


def rank_stats(x: WeightedSample, y: WeightedSample, d: float = 0.0) -> RankStats:
    nx, ny = x.n, y.n
    xm = x.values - d if d != 0.0 else x.values
    xc = x.counts
    # Shifting can make neighbouring distinct values equal (rounding): merge them into tie groups.
    if xm.size > 1 and (xm[1:] == xm[:-1]).any():
        starts = np.flatnonzero(np.r_[True, xm[1:] != xm[:-1]])
        xc = np.add.reduceat(xc, starts)
        xm = xm[starts]
    ycum = y.cum
    lo = np.searchsorted(y.values, xm, side="left")
    hi = np.searchsorted(y.values, xm, side="right")
    yless = ycum[lo]
    yeq = ycum[hi] - yless  # 0 or the count of the single equal distinct y value
    u2 = int(np.dot(xc, 2 * yless + yeq))  # exact in int64 for any realistic n
    dz = (u2 - nx * ny) / 2.0
    # Tie groups: every distinct y value, with the x values that landed on it folded in.
    ties = y.tie_term
    t = (xc + yeq).astype(np.float64)
    te = yeq.astype(np.float64)
    ties += float(np.sum((t**3 - t) - (te**3 - te)))
    n = float(nx + ny)
    sigma = math.sqrt((nx * ny / 12.0) * ((n + 1) - ties / (n * (n - 1)))) if n > 1 else 0.0
    return RankStats(u=u2 / 2.0, dz=dz, ties=ties, sigma=sigma)


def wilcoxon_diff(x: WeightedSample, y: WeightedSample, d: float, zq: float, *, correct: bool = True) -> float:
    """Standardized rank statistic of `x - d` against `y`, minus `zq` (R's `wdiff`)."""
    rs = rank_stats(x, y, d)
    if rs.sigma == 0.0:
        raise AllTiedError("cannot compute confidence interval when all observations are tied")
    corr = (0.5 * math.copysign(1.0, rs.dz) if rs.dz != 0 else 0.0) if correct else 0.0
    return (rs.dz - corr) / rs.sigma - zq


class AllTiedError(ArithmeticError):
    """Every observation in the pooled sample is equal: the rank statistic has no variance."""


def zeroin(f: Callable[[float], float], ax: float, bx: float, fa: float, fb: float,
           tol: float = ZEROIN_TOL, maxit: int = ZEROIN_MAXIT) -> float:
    """Brent's zeroin root search on [ax, bx], given f(ax) and f(bx) (R's R_zeroin2 semantics).

    Combines bisection, secant and inverse quadratic interpolation; stops when the bracket is
    within 2*eps*|b| + tol/2 or f(b) == 0. Returns the last iterate when maxit is reached.
    """
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            # Keep b the best approximation so far.
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _EPS * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:  # two points: secant
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:  # three points: inverse quadratic interpolation
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


@dataclass(frozen=True)
class ShiftInterval:
    lower: float
    upper: float
    estimate: float
    confidence: float
    mu_min: float
    mu_max: float


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_quantile(p: float) -> float:
    """Inverse of the standard normal cdf, to machine precision: the Abramowitz-Stegun 26.2.23
    starting point (error < 4.5e-4) refined by Halley steps on the erfc-based cdf."""
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        raise ValueError(f"probability out of range: {p}")
    q = min(p, 1.0 - p)
    t = math.sqrt(-2.0 * math.log(q))
    x = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t**3)
    x = -x  # the quantile of q <= 0.5
    for _ in range(4):
        err = normal_cdf(x) - q
        pdf = math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        if pdf == 0.0:
            break
        step = err / pdf
        x -= step / (1.0 + 0.5 * x * step)  # Halley
    return x if p <= 0.5 else -x


def shift_interval(x: WeightedSample, y: WeightedSample, confidence: float) -> ShiftInterval:
    """Asymptotic two-sided confidence interval and estimate of the shift x - y (Kayenta / R).

    Raises AllTiedError when every observation is equal and ValueError on an empty sample.
    """
    if x.empty or y.empty:
        raise ValueError("both samples need data")
    alpha = 1.0 - confidence
    mu_min = float(x.values[0] - y.values[-1])
    mu_max = float(x.values[-1] - y.values[0])

    def f(zq: float) -> Callable[[float], float]:
        return lambda d: wilcoxon_diff(x, y, d, zq)

    def root(zq: float) -> float:
        f_lower = wilcoxon_diff(x, y, mu_min, zq)
        f_upper = wilcoxon_diff(x, y, mu_max, zq)
        if f_lower <= 0:
            return mu_min
        if f_upper >= 0:
            return mu_max
        return zeroin(f(zq), mu_min, mu_max, f_lower, f_upper)

    zq = normal_quantile(alpha / 2)  # negative
    lower = root(-zq)
    upper = root(zq)
    est = zeroin(f(0.0), mu_min, mu_max, wilcoxon_diff(x, y, mu_min, 0.0), wilcoxon_diff(x, y, mu_max, 0.0))
    return ShiftInterval(lower, upper, est, confidence, mu_min, mu_max)


def p_value_asymptotic(x: WeightedSample, y: WeightedSample) -> float:
    """Two-sided p-value, normal approximation with tie and continuity correction (R, scipy)."""
    rs = rank_stats(x, y)
    if rs.sigma == 0.0:
        return 1.0
    corr = 0.5 * math.copysign(1.0, rs.dz) if rs.dz != 0 else 0.0
    z = (rs.dz - corr) / rs.sigma
    return min(1.0, 2.0 * normal_sf(abs(z)))


def has_ties(x: WeightedSample, y: WeightedSample) -> bool:
    if (x.counts > 1).any() or (y.counts > 1).any():
        return True
    return bool(np.isin(x.values, y.values).any())


EXACT_MAX_SMALL = 8  # scipy's rule: exact when a sample has at most 8 observations and nothing is tied
EXACT_MAX_LARGE = 100  # and (meshctl) the other at most 100, so the counts stay exact in int64


def p_value(x: WeightedSample, y: WeightedSample, method: str = "auto") -> tuple[float, str]:
    """Two-sided p-value and the method used. `auto` takes the exact null distribution of U when
    one sample has at most 8 observations, the other at most 100 and nothing is tied; the normal
    approximation (tie and continuity corrected, as R and Kayenta's interval) otherwise."""
    if (method == "auto" and min(x.n, y.n) <= EXACT_MAX_SMALL and max(x.n, y.n) <= EXACT_MAX_LARGE
            and not has_ties(x, y)):
        return p_value_exact(x, y), "exact"
    return p_value_asymptotic(x, y), "asymptotic"


def u_distribution(m: int, n: int) -> np.ndarray:
    """Number of arrangements of m x's and n y's by U = #{x after y} (index u = 0..m*n)."""
    small, large = (m, n) if m <= n else (n, m)
    # dp[j] = counts over u for `i` small-sample items and j large-sample items placed.
    dp = [np.zeros(1, dtype=np.int64) for _ in range(large + 1)]
    for j in range(large + 1):
        dp[j] = np.ones(1, dtype=np.int64)  # i = 0: only large items, U = 0
    for _ in range(1, small + 1):
        new = [np.zeros(1, dtype=np.int64)] * (large + 1)
        new[0] = dp[0].copy()
        for j in range(1, large + 1):
            # Last item is a small one (it is after j large ones: U grows by j) or a large one.
            a = np.concatenate([np.zeros(j, dtype=np.int64), dp[j]])
            b = new[j - 1]
            size = max(a.size, b.size)
            out = np.zeros(size, dtype=np.int64)
            out[:a.size] += a
            out[:b.size] += b
            new[j] = out
        dp = new
    counts = dp[large]
    full = np.zeros(m * n + 1, dtype=np.int64)
    full[:counts.size] = counts
    return full


def p_value_exact(x: WeightedSample, y: WeightedSample) -> float:
    """Exact two-sided p-value of U for samples without ties: 2 P(U >= max(U, mn - U))."""
    m, n = x.n, y.n
    u = rank_stats(x, y).u
    dist = u_distribution(m, n)
    total = float(dist.sum())
    hi = round(max(u, m * n - u))
    return min(1.0, 2.0 * float(dist[hi:].sum()) / total)


def cles(x: WeightedSample, y: WeightedSample) -> float:
    """Common-language effect size P(X > Y) + 0.5 P(X = Y) = U_x / (nx ny)."""
    if x.empty or y.empty:
        return float("nan")
    return rank_stats(x, y).u / (x.n * y.n)


def scaled_cles(y: WeightedSample, factor: float) -> float:
    """P(factor * Y1 > Y2) + 0.5 P(=) for Y1, Y2 drawn from y: the CLES a canary slower than the
    baseline by `factor` would show. Used for the power of the rank test."""
    scaled = WeightedSample(y.values * factor, y.counts) if factor > 0 else y
    return cles(scaled, y)


def power(p_alt: float, n_baseline: int, n_canary: int, confidence: float) -> float:
    """Approximate power of the two-sided rank-sum test (Noether) to detect P(X > Y) = p_alt."""
    if n_baseline == 0 or n_canary == 0:
        return 0.0
    zc = -normal_quantile((1 - confidence) / 2)
    n = n_baseline + n_canary
    delta = abs(p_alt - 0.5) * math.sqrt(12.0 * n_baseline * n_canary / (n + 1))
    return 1.0 - normal_sf(delta - zc)
