"""Formatting of canary results shared by the terminal, Markdown and JUnit writers."""

from __future__ import annotations

import math
from typing import Any

VERDICT_TEXT = {
    "pass": "PASS",
    "marginal": "MARGINAL",
    "fail": "FAIL",
    "inconclusive": "INCONCLUSIVE",
}
VERDICT_MEANING = {
    "pass": "the canary is as good as the baseline on every judged metric",
    "marginal": "the score is between the marginal and the pass threshold",
    "fail": "the canary is worse than the baseline",
    "inconclusive": "not enough data to judge: the rollout is not passed",
}
MARK = {"Pass": "✓", "High": "✗", "Low": "✗", "Nodata": "?", "NodataFailMetric": "✗", "Error": "!"}


def isnan(v: Any) -> bool:
    """No figure: None or NaN."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def unit_suffix(m: Any) -> str:
    """` ms` after a figure in the metric's unit (rates carry no unit: they are shown as %, pp)."""
    return f" {m.unit}" if m.unit and m.unit != "ratio" else ""


def num(v: Any, digits: int = 4) -> str:
    if isnan(v):
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def pct(v: Any, digits: int = 3) -> str:
    return "–" if isnan(v) else f"{v * 100:.{digits}g}%"


def label(m: Any) -> str:
    text = m.classification
    if m.critical:
        text += " (critical)"
    elif m.inconclusive:
        text += " (underpowered)"
    if m.muted:
        text += " (report only)"
    return text


def value(m: Any, side: str) -> str:
    d = m.baseline if side == "baseline" else m.canary
    unit = unit_suffix(m)
    if m.kind == "proportion":
        if "rate" in d:
            return f"{pct(d.get('rate'))} ({num(d.get('events', 0))}/{num(d.get('requests', 0))})"
        return f"{pct(d.get('rate_overall'))} ({num(d.get('events', 0))}/{num(d.get('requests', 0))}), " \
               f"mean per-interval {pct(d.get('mean'))}"
    if m.kind == "quantile":
        q = next((k for k in d if k.startswith("p") and k not in ("p50", "p90", "p99")), None)
        key = q or next((k for k in ("p99", "p90", "p50") if m.name.endswith(k)), "p99")
        if "overall_" + key in d:
            return f"{key} {num(d.get('overall_' + key))}{unit} (per-interval mean {num(d.get('mean'))})"
        return f"{key} {num(d.get(key))}{unit} (n {num(d.get('count', 0))})"
    if m.kind == "distribution":
        return f"mean {num(d.get('mean'))}{unit}, p50 {num(d.get('p50'))}, p99 {num(d.get('p99'))} " \
               f"(n {num(d.get('count', 0))})"
    return f"mean {num(d.get('mean'))}{unit} (n {num(d.get('count', 0))})"


def short_value(m: Any, side: str) -> str:
    """The one figure a terminal cell has room for."""
    d = m.baseline if side == "baseline" else m.canary
    unit = unit_suffix(m)
    if m.kind == "proportion":
        return pct(d.get("rate", d.get("rate_overall")))
    if m.kind == "quantile":
        key = next((k for k in ("p99", "p90", "p50") if m.name.endswith(k)), "p99")
        return f"{num(d.get('overall_' + key, d.get(key)))}{unit}"
    return f"{num(d.get('mean'))}{unit}"


def effect(m: Any) -> str:
    if isnan(m.effect):
        return f"{m.effect_measure} undefined"
    return effect_value(m, m.effect, signed=True)


def effect_value(m: Any, v: Any, *, signed: bool = False) -> str:
    """An effect, or an effect-size limit, in the terms of the metric's measure: ×1.1, CLES 0.600,
    +0.5 pp (rates), +12 ms; `signed` puts + on a positive difference."""
    if isnan(v):
        return "–"
    if m.effect_measure == "meanRatio":
        return f"×{v:.3g}"
    if m.effect_measure == "cles":
        return f"CLES {v:.3f}"
    sign = "+" if signed else ""
    if m.kind == "proportion":
        return f"{v * 100:{sign}.3g} pp"
    return f"{v:{sign}.4g}{unit_suffix(m)}"


def ci(m: Any) -> str:
    lo, hi = m.ci
    if isnan(lo) or isnan(hi):
        return "–"
    if m.kind == "proportion" or (m.kind == "quantile" and m.test != "rank-sum"):
        return f"[{lo * 100:+.3g}, {hi * 100:+.3g}] pp"
    unit = unit_suffix(m)
    # The interval's ends come from a root search (tolerance 1e-4): an end a thousand times smaller
    # than the other is zero at the interval's own precision, not 3.071e-06.
    scale = max(abs(lo), abs(hi))
    lo, hi = (0.0 if abs(x) < 1e-3 * scale else x for x in (lo, hi))
    return f"[{num(lo)}, {num(hi)}]{unit}"


def p_value(m: Any) -> str:
    p = m.p_value
    if isnan(p):
        return "–"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3g}"


def power(m: Any) -> str:
    if m.power is None or isnan(m.power):
        return "–"
    return f"{m.power:.0%}"


def cohort_line(result: Any, side: str) -> str:
    c = result.cohorts.get(side, {})
    label_ = result.labels[0] if side == "baseline" else result.labels[1]
    sel = c.get("selector") or ("before the switch" if side == "baseline" else "after the switch")
    parts = [f"{label_} ({sel}): {num(c.get('requests', 0))} requests"]
    if c.get("requests"):
        parts.append(f"{pct(c.get('error_rate'))} errors")
        parts.append(f"p50 {num(c.get('latency_p50'))} ms, p99 {num(c.get('latency_p99'))} ms")
        if not isnan(c.get("rps")):
            parts.append(f"{num(c.get('rps'))} rps")
        parts.append(f"{pct(c.get('traffic_share'))} of traffic")
    return ", ".join(parts)


def title(result: Any) -> str:
    what = {"canary": "Canary", "bluegreen": "Blue-green", "metrics": "Canary (metrics)"}.get(result.kind, "Canary")
    svc = result.cohorts.get("service")
    return f"{what} analysis{(' of ' + svc) if svc else ''}: {VERDICT_TEXT[result.verdict]}"
