"""Per-metric classification: Pass, High, Low, Nodata, NodataFailMetric or Error.

`classify_samples` is Kayenta's Mann-Whitney classifier (NetflixACAJudge): after the NaN strategy
and the optional IQR outlier removal, a metric is High when the whole confidence interval of the
shift lies above `tolerance * |estimate|` *and* the effect size (mean ratio, or CLES) reaches
`allowedIncrease`; Low mirrors it with `allowedDecrease`; the metric's direction says which of the
two count. A critical metric whose effect also reaches `criticalIncrease` / `criticalDecrease` is a
critical failure. An effect size that is undefined (a mean of zero) never vetoes a significant
shift.

In meshctl mode the same figures get a p-value, the confidence level is the configured one, and a
**power check** runs on every metric that would pass: if the samples are too small for the test to
find the configured effect with the requested power, the metric is Nodata (inconclusive), with the
number of extra samples that would be needed. Error rates are compared as proportions and tail
latencies with a quantile test instead of a rank test on 0/1 values (`classify_proportion`,
`classify_quantile`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from analyzers.canary import mannwhitney as mw
from analyzers.canary import proportions as prop
from analyzers.canary import stats
from analyzers.canary.config import DETECTABLE, NEUTRAL_EFFECT, MetricConfig
from analyzers.canary.mannwhitney import MAX_DISTINCT, WeightedSample
from analyzers.canary.result import ERROR, HIGH, LOW, NODATA, NODATA_FAIL, PASS, MetricResult


def _base(mc: MetricConfig, confidence: float, tolerance: float) -> MetricResult:
    es = mc.effect_size
    return MetricResult(
        name=mc.name, kind=mc.kind, classification=PASS, is_critical=mc.critical, muted=mc.muted,
        groups=mc.groups, direction=mc.direction, confidence=confidence, tolerance=tolerance,
        effect_measure=es.measure, effect_size={k: v for k, v in es.as_dict().items() if k != "measure"},
        description=mc.description,
    )


def _no_data(r: MetricResult, mc: MetricConfig, reason: str) -> MetricResult:
    """Kayenta's rule for missing data (after the NaN strategy has run)."""
    if mc.nan_strategy == "replace" and r.kind == "series":
        # Kayenta: with NaNs replaced by zeros a metric without data passes. (meshctl mode then
        # applies its power check, which turns this into Nodata.)
        r.classification, r.reason = PASS, f"{reason}; NaN strategy replace: treated as zeros"
        return r
    if mc.must_have_data and not mc.critical:
        r.classification, r.reason = NODATA_FAIL, f"{reason} and the metric must have data"
    else:
        r.classification, r.reason = NODATA, reason
        r.critical = mc.critical
    return r


def _exceeds(effect: float, limit: float, up: bool) -> bool:
    if math.isnan(effect):
        return True
    return effect >= limit if up else effect <= limit


def _decide(r: MetricResult, mc: MetricConfig, high_signal: bool, low_signal: bool, what: str) -> MetricResult:
    """Label from the test's verdict on each side and the effect size, then the critical rule."""
    es = mc.effect_size
    up_ok = mc.direction in ("increase", "either")
    down_ok = mc.direction in ("decrease", "either")
    lo_limit = -es.allowed_decrease if es.measure == "difference" else es.allowed_decrease
    crit_lo = -es.critical_decrease if es.measure == "difference" else es.critical_decrease
    effect_txt = "undefined" if math.isnan(r.effect) else f"{r.effect:.4g}"
    if up_ok and high_signal and _exceeds(r.effect, es.allowed_increase, True):
        r.classification = HIGH
        r.reason = (f"canary {what} higher than baseline: effect {es.measure} {effect_txt} >= allowed "
                    f"{es.allowed_increase:g}")
        if mc.critical and _exceeds(r.effect, es.critical_increase, True):
            r.critical = True
            r.reason += f" and >= critical {es.critical_increase:g} (critical)"
    elif down_ok and low_signal and _exceeds(r.effect, lo_limit, False):
        r.classification = LOW
        r.reason = f"canary {what} lower than baseline: effect {es.measure} {effect_txt} <= allowed {lo_limit:g}"
        if mc.critical and _exceeds(r.effect, crit_lo, False):
            r.critical = True
            r.reason += f" and <= critical {crit_lo:g} (critical)"
    else:
        r.classification = PASS
        if high_signal and up_ok:
            r.reason = f"higher, but by less than allowed (effect {es.measure} {effect_txt} < {es.allowed_increase:g})"
        elif low_signal and down_ok:
            r.reason = f"lower, but by less than allowed (effect {es.measure} {effect_txt} > {lo_limit:g})"
        elif high_signal or low_signal:
            r.reason = f"changed in the direction that is not judged ({mc.direction} only)"
        else:
            r.reason = "no significant difference"
    return r


# ---- rank test (series, distributions) ------------------------------------------------------------

def prepare_series(values: np.ndarray, mc: MetricConfig) -> np.ndarray:
    """NaN strategy, then the optional IQR outlier removal (factor, reduced sensitivity)."""
    out = stats.replace_nans(values) if mc.nan_strategy == "replace" else stats.remove_nans(values)
    if mc.outliers.strategy == "remove" and out.size:
        out = stats.remove_outliers(out, "iqr", mc.outliers.factor, reduce_sensitivity=True)
    return out


def classify_series(mc: MetricConfig, baseline: np.ndarray, canary: np.ndarray, *, judge: str, confidence: float,
                    tolerance: float, power_target: float, unit: str = "") -> MetricResult:
    """A metric given as two arrays of values (a metric store's series, `--metrics` arrays)."""
    b = prepare_series(stats.as_array(baseline), mc)
    c = prepare_series(stats.as_array(canary), mc)
    wb = WeightedSample.from_values(b, max_distinct=MAX_DISTINCT)
    wc = WeightedSample.from_values(c, max_distinct=MAX_DISTINCT)
    return classify_samples(mc, wb, wc, judge=judge, confidence=confidence, tolerance=tolerance,
                            power_target=power_target, unit=unit)


def classify_samples(mc: MetricConfig, b: WeightedSample, c: WeightedSample, *, judge: str, confidence: float,
                     tolerance: float, power_target: float, unit: str = "") -> MetricResult:
    r = _base(mc, confidence, tolerance)
    r.test, r.unit = "rank-sum", unit
    if mc.outliers.strategy == "remove" and mc.kind == "distribution":
        b, c = stats.remove_outliers_weighted(b, mc.outliers.factor), stats.remove_outliers_weighted(c, mc.outliers.factor)
    r.baseline, r.canary = stats.summary(b).as_dict(), stats.summary(c).as_dict()
    r.resolution = max(b.resolution, c.resolution)
    r.ci_of = "shift (canary - baseline)"
    if b.empty or c.empty:
        missing = " and ".join(n for n, s in (("baseline", b), ("canary", c)) if s.empty)
        r = _no_data(r, mc, f"no {missing} data")
    elif (same := b.same_as(c)) or (b.values.size == 1 and c.values.size == 1 and b.values[0] == c.values[0]):
        r.classification, r.test = PASS, "identical"
        r.reason = "baseline and canary data are identical" if same else "every observation has the same value"
        r.effect = NEUTRAL_EFFECT[mc.effect_size.measure]
        r.p_value, r.p_method = 1.0, "identical"
    else:
        try:
            r = _rank_compare(r, mc, b, c, confidence, tolerance, judge)
        except (ArithmeticError, ValueError) as exc:
            r.classification, r.reason = ERROR, f"metric classification failed: {exc}"
            r.critical = False
    if judge == "meshctl":
        r.power_target = power_target
        if r.classification == PASS:
            _rank_power(r, mc, b, c, confidence, power_target)
    return r


def _rank_compare(r: MetricResult, mc: MetricConfig, b: WeightedSample, c: WeightedSample,
                  confidence: float, tolerance: float, judge: str) -> MetricResult:
    if b.values.size == 1 and c.values.size == 1:
        # Both samples constant but different. Kayenta adds Gaussian noise (sd 1e-5 x value) so the
        # rank test can run; the samples are then completely separated and the interval is the
        # difference itself. meshctl uses that limit directly, so the outcome is reproducible.
        diff = float(c.values[0] - b.values[0])
        ci = mw.ShiftInterval(diff, diff, diff, confidence, diff, diff)
    else:
        ci = mw.shift_interval(c, b, confidence)
    r.ci, r.estimate = (ci.lower, ci.upper), ci.estimate
    r.p_value, r.p_method = mw.p_value(c, b, "auto" if judge == "meshctl" else "asymptotic")
    r.effect = _effect(mc.effect_size.measure, b, c)
    bound = tolerance * abs(ci.estimate)
    return _decide(r, mc, ci.lower > bound, ci.upper < -bound, "values")


def _effect(measure: str, b: WeightedSample, c: WeightedSample) -> float:
    if measure == "cles":
        return stats.cles_effect(b, c)
    if measure == "difference":
        return c.mean() - b.mean()
    return stats.mean_ratio(b.mean(), c.mean())


def _detectable(mc: MetricConfig) -> tuple[float, float]:
    """(decrease, increase) effects the power check asks the test to be able to find."""
    es = mc.effect_size
    dflt = DETECTABLE[es.measure]
    neutral = NEUTRAL_EFFECT[es.measure]
    if es.measure == "difference":
        inc = es.allowed_increase if es.allowed_increase > 0 else dflt[1]
        dec = -es.allowed_decrease if es.allowed_decrease > 0 else dflt[0]
    else:
        inc = es.allowed_increase if es.allowed_increase > neutral else dflt[1]
        dec = es.allowed_decrease if es.allowed_decrease < neutral else dflt[0]
    return dec, inc


def _sides(mc: MetricConfig) -> list[str]:
    return {"increase": ["increase"], "decrease": ["decrease"], "either": ["increase", "decrease"]}[mc.direction]


def _rank_power(r: MetricResult, mc: MetricConfig, b: WeightedSample, c: WeightedSample, confidence: float,
                target: float) -> None:
    dec, inc = _detectable(mc)
    measure = mc.effect_size.measure
    r.detectable = {}

    def p_alt(side: str) -> float:
        effect = inc if side == "increase" else dec
        if measure == "cles":
            return effect
        if b.values.size <= 1:
            # A constant baseline: any shift separates the samples completely.
            return 1.0 if side == "increase" else 0.0
        if measure == "difference":
            return mw.cles(WeightedSample(b.values + effect, b.counts), b)
        return mw.scaled_cles(b, effect)

    powers: dict[str, float] = {}
    alts: dict[str, float] = {}
    for side in _sides(mc):
        alts[side] = p_alt(side)
        r.detectable[side] = inc if side == "increase" else dec
        powers[side] = mw.power(alts[side], b.n, c.n, confidence)
    weakest = min(powers, key=lambda s: powers[s])
    r.power = powers[weakest]
    if r.power >= target:
        return

    def at(k: float) -> float:
        return mw.power(alts[weakest], round(b.n * k), round(c.n * k), confidence)

    _underpowered(r, mc, b.n, c.n, at, target, weakest)


def _underpowered(r: MetricResult, mc: MetricConfig, n0: int, n1: int, power_at: Callable[[float], float],
                  target: float, side: str) -> None:
    effect = (r.detectable or {}).get(side)
    unit = "requests" if mc.kind in ("distribution", "proportion", "quantile") else "samples"
    need = prop.more_needed(power_at, n0, n1, target) if n0 and n1 else None
    r.classification = NODATA
    r.inconclusive = True
    r.critical = False
    what = f"a {mc.effect_size.measure} of {effect:g} ({side})" if effect is not None else "the configured effect"
    r.reason = (f"inconclusive: {n0} baseline and {n1} canary {unit} give {r.power:.0%} power to detect {what} "
                f"at {r.confidence:.0%} confidence (want {target:.0%})")
    if need is not None:
        r.more_needed = {"baseline": need[0], "canary": need[1]}
        r.reason += f"; about {need[1]} more canary and {need[0]} more baseline {unit} are needed at this split"
    elif not (n0 and n1):
        r.reason += "; one cohort has no data"
    else:
        r.reason += "; no realistic amount of data reaches it (the effect is too small for this data)"


def classify_mean_inequality(mc: MetricConfig, baseline: np.ndarray, canary: np.ndarray) -> MetricResult:
    """Kayenta's benchmark-only MeanInequalityClassifier: High when the canary mean is above the
    baseline mean, Low when below (as the direction allows), no statistics."""
    r = _base(mc, math.nan, math.nan)
    r.test = "mean inequality"
    b, c = prepare_series(stats.as_array(baseline), mc), prepare_series(stats.as_array(canary), mc)
    if b.size == 0 or c.size == 0:
        return _no_data(r, mc, "no data")
    mb, mcn = float(b.mean()), float(c.mean())
    r.baseline, r.canary = {"mean": mb, "count": int(b.size)}, {"mean": mcn, "count": int(c.size)}
    r.effect = stats.mean_ratio(mb, mcn)
    if mc.direction in ("increase", "either") and mcn > mb:
        r.classification, r.reason, r.critical = HIGH, "the canary mean is greater than the baseline mean", mc.critical
    elif mc.direction in ("decrease", "either") and mcn < mb:
        r.classification, r.reason, r.critical = LOW, "the canary mean is less than the baseline mean", mc.critical
    else:
        r.reason, r.effect = "means are equal (or differ in the direction not judged)", 1.0
    return r


# ---- proportions (error rate) -----------------------------------------------------------------

def classify_proportion(mc: MetricConfig, e0: int, n0: int, e1: int, n1: int, *, confidence: float,
                        power_target: float | None) -> MetricResult:
    """Events among trials per cohort (meshctl mode)."""
    r = _base(mc, confidence, math.nan)
    r.test, r.unit, r.ci_of = "two-proportion", "ratio", "rate difference (canary - baseline)"
    r.baseline = {"events": e0, "requests": n0, "rate": e0 / n0 if n0 else math.nan}
    r.canary = {"events": e1, "requests": n1, "rate": e1 / n1 if n1 else math.nan}
    r.power_target = power_target
    if n0 == 0 or n1 == 0:
        missing = " and ".join(n for n, k in (("baseline", n0), ("canary", n1)) if k == 0)
        return _no_data(r, mc, f"no {missing} requests")
    t = prop.two_proportion(e0, n0, e1, n1, confidence)
    r.p_value, r.p_method = t.p_value, t.method
    r.ci, r.estimate = (t.lower, t.upper), t.diff
    r.effect = t.diff if mc.effect_size.measure == "difference" else (
        t.p1 / t.p0 if t.p0 > 0 else (1.0 if t.p1 == 0 else math.nan))
    alpha = 1 - confidence
    r = _decide(r, mc, t.p_value < alpha and t.diff > 0, t.p_value < alpha and t.diff < 0, "rate")
    if power_target is not None and r.classification == PASS:
        _proportion_power(r, mc, t.p0, n0, n1, confidence, power_target)
    return r


def _proportion_power(r: MetricResult, mc: MetricConfig, p0: float, n0: int, n1: int, confidence: float,
                      target: float, alt: Callable[[str, float], float] | None = None) -> None:
    dec, inc = _detectable(mc)
    measure = mc.effect_size.measure
    r.detectable = {}

    def p1_of(side: str) -> float:
        effect = inc if side == "increase" else dec
        if alt is not None:
            return alt(side, effect)
        return p0 + effect if measure == "difference" else p0 * effect

    powers: dict[str, float] = {}
    p1s: dict[str, float] = {}
    for side in _sides(mc):
        r.detectable[side] = inc if side == "increase" else dec
        p1s[side] = min(max(p1_of(side), 0.0), 1.0)
        powers[side] = prop.power(p0, p1s[side], n0, n1, confidence) if p1s[side] != p0 else 0.0
    weakest = min(powers, key=lambda s: powers[s])
    r.power = powers[weakest]
    if r.power >= target:
        return

    def at(k: float) -> float:
        return prop.power(p0, p1s[weakest], round(n0 * k), round(n1 * k), confidence) if p1s[weakest] != p0 else 0.0

    _underpowered(r, mc, n0, n1, at, target, weakest)
    if p1s[weakest] == p0:
        r.reason += (f" (a {measure} effect cannot move a baseline rate of {p0:g}: use measure difference)"
                     if measure == "meanRatio" else "")


# ---- quantile test (tail latency) -------------------------------------------------------------

def classify_quantile(mc: MetricConfig, q: float, b: WeightedSample, c: WeightedSample, *, confidence: float,
                      power_target: float | None, unit: str = "") -> MetricResult:
    """Is the canary's q-quantile higher? The quantile test (Conover): the share of each cohort above
    the pooled q-quantile, compared as two proportions. The effect is the ratio (or difference) of
    the cohorts' own q-quantiles."""
    r = _base(mc, confidence, math.nan)
    r.test, r.unit = "quantile", unit
    r.baseline, r.canary = stats.summary(b).as_dict(), stats.summary(c).as_dict()
    name = f"p{q * 100:g}"
    r.power_target = power_target
    if b.empty or c.empty:
        missing = " and ".join(n for n, s in (("baseline", b), ("canary", c)) if s.empty)
        return _no_data(r, mc, f"no {missing} requests")
    qb, qc = b.quantile(q), c.quantile(q)
    r.baseline[name], r.canary[name] = qb, qc
    pooled = WeightedSample.from_counts(np.concatenate([b.values, c.values]), np.concatenate([b.counts, c.counts]))
    threshold = pooled.quantile(q)
    n0, n1 = b.n, c.n
    e0, e1 = b.count_above(threshold), c.count_above(threshold)
    r.baseline["above_pooled"], r.canary["above_pooled"] = e0, e1
    t = prop.two_proportion(e0, n0, e1, n1, confidence)
    r.p_value, r.p_method = t.p_value, f"quantile test ({t.method})"
    r.ci, r.estimate = (t.lower, t.upper), qc - qb
    r.ci_of = f"difference of the shares above the pooled {name} ({threshold:.4g})"
    measure = mc.effect_size.measure
    r.effect = (qc - qb) if measure == "difference" else stats.mean_ratio(qb, qc)
    alpha = 1 - confidence
    r = _decide(r, mc, t.p_value < alpha and t.diff > 0, t.p_value < alpha and t.diff < 0, name)
    if power_target is not None and r.classification == PASS:
        def alt(side: str, effect: float) -> float:
            # The share of a canary slower than the baseline by `effect` above the baseline's quantile.
            if measure == "difference":
                return b.fraction_above(qb - effect)
            return b.fraction_above(qb / effect) if effect > 0 else math.nan

        _proportion_power(r, mc, b.fraction_above(qb), n0, n1, confidence, power_target, alt)
    return r
