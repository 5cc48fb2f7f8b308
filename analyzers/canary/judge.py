"""The judge pipeline: metric inputs -> classification -> group scores -> score class -> verdict.

Two modes, one code path:

* `kayenta`: NetflixACAJudge semantics. Every metric is a sample pair judged by the rank-sum
  classifier; table metrics that Kayenta would receive from a metric store as time series (error
  rate, latency quantiles, custom rates) are per-interval series; the verdict is the score class
  (Pass / Marginal / Fail).
* `meshctl` (default): the same statistics plus p-values and a power check; error rates are
  two-proportion tests and latency quantiles quantile tests; the verdict fails closed: a run that
  has a metric without enough data to judge is *inconclusive*, never pass.

Verdicts: pass, marginal, fail, inconclusive (exit codes 0, 2 unless marginal passes, 1, 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from analyzers.canary import classify as cl
from analyzers.canary import scorer
from analyzers.canary.cohorts import Cohorts
from analyzers.canary.config import (
    ArrayMetric,
    ConfigError,
    JudgeConfig,
    KayentaMetric,
    MetricConfig,
    Threshold,
)
from analyzers.canary.extract import BUILTINS, View, counts, figures, grouped, interval_series, samples
from analyzers.canary.mannwhitney import MAX_DISTINCT
from analyzers.canary.result import (
    NODATA,
    PASS,
    JudgeResult,
    MetricResult,
    RouteRow,
    ThresholdResult,
)

ROUTES_DEFAULT = 20


# ---- which metrics a table run judges -----------------------------------------------------------

def table_metrics(cfg: JudgeConfig) -> list[MetricConfig]:
    """Built-ins (all, or cfg.builtins), with the config's overrides, then custom metrics."""
    overrides = {m.name: m for m in cfg.metrics}
    names = list(BUILTINS) if cfg.builtins is None else list(cfg.builtins)
    out = [overrides.get(n, BUILTINS[n]) for n in names]
    out += [m for m in cfg.metrics if m.name not in BUILTINS and m.source is not None]
    return out


def resolve_kayenta(kmetrics: Sequence[KayentaMetric], arrays: Sequence[ArrayMetric],
                    table_available: bool, custom: Mapping[str, MetricConfig] | None = None
                    ) -> tuple[list[MetricConfig], list[ArrayMetric]]:
    """Where each metric of a Kayenta canary config gets its values: `query: {type: meshctl,
    metric: NAME}`, else a `--metrics` array of the same name, else a meshctl table metric of the
    same name. Returns (table metrics, array metrics), each carrying the Kayenta analysis settings."""
    by_name = {a.config.name: a for a in arrays}
    known = {**BUILTINS, **(custom or {})}
    table: list[MetricConfig] = []
    arr: list[ArrayMetric] = []
    for i, km in enumerate(kmetrics):
        mc = km.config
        target = km.query.get("metric") if km.query.get("type") == "meshctl" else None
        if target is None and mc.name in by_name:
            a = by_name[mc.name]
            arr.append(ArrayMetric(mc, a.baseline, a.canary))
            continue
        target = target or (mc.name if mc.name in known else None)
        if target is None or target not in known:
            raise ConfigError(
                f"no values for Kayenta metric {mc.name!r}: give a --metrics array of that name, name it after a "
                f"meshctl metric ({', '.join(known)}), or set query to {{\"type\": \"meshctl\", \"metric\": NAME}}",
                f"metrics[{i}].query")
        if not table_available:
            raise ConfigError(f"metric {mc.name!r} reads the requests table: give --service and cohorts",
                              f"metrics[{i}]")
        base = known[target]
        table.append(replace(base, name=mc.name, groups=mc.groups, direction=mc.direction, critical=mc.critical,
                             must_have_data=mc.must_have_data, nan_strategy=mc.nan_strategy,
                             effect_size=mc.effect_size, outliers=mc.outliers, tolerance=mc.tolerance,
                             confidence=mc.confidence))
    # Arrays the Kayenta config does not mention are judged with their own settings.
    named = {km.config.name for km in kmetrics}
    arr += [a for a in arrays if a.config.name not in named]
    return table, arr


# ---- classification of one metric ---------------------------------------------------------------

def judge_table_metric(view: View, mc: MetricConfig, cfg: JudgeConfig) -> MetricResult:
    src = mc.source
    if src is None:
        raise ConfigError(f"metric {mc.name!r} has no table source", mc.name)
    conf, tol = cfg.metric_confidence(mc), cfg.metric_tolerance(mc)
    target = cfg.power if cfg.judge == "meshctl" else None
    pop = view.mask(src.filter)
    unit = "ms" if src.value == "duration_ms" else ""
    kayenta = cfg.judge == "kayenta"
    if src.aggregation == "rate":
        events = view.mask(src.events)
        e0, n0, e1, n1 = counts(view, events, pop)
        if kayenta:
            series = [interval_series(view, k, cfg.interval_s, "rate", events=events, population=pop) for k in (1, 2)]
            r = cl.classify_series(replace(mc, kind="series"), series[0], series[1], judge=cfg.judge,
                                   confidence=conf, tolerance=tol, power_target=cfg.power, unit="ratio")
            r.kind, r.ci_of = "proportion", f"shift of the per-{cfg.interval_s:g}s rate (canary - baseline)"
            r.baseline.update(_totals(e0, n0))
            r.canary.update(_totals(e1, n1))
            return r
        return cl.classify_proportion(mc, e0, n0, e1, n1, confidence=conf, power_target=target)
    values = view.numeric(src.value) if src.value else None
    if src.aggregation == "distribution":
        b, c = samples(view, values, pop, MAX_DISTINCT)
        return cl.classify_samples(mc, b, c, judge=cfg.judge, confidence=conf, tolerance=tol,
                                   power_target=cfg.power, unit=unit)
    if src.quantile is not None and not kayenta:
        b, c = samples(view, values, pop, MAX_DISTINCT)
        return cl.classify_quantile(mc, src.quantile, b, c, confidence=conf, power_target=target, unit=unit)
    # Per-interval series: mean / sum / count in both modes, quantiles in kayenta mode.
    series = [interval_series(view, k, cfg.interval_s, src.aggregation, values=values, population=pop,
                              quantile=src.quantile) for k in (1, 2)]
    r = cl.classify_series(replace(mc, kind="series"), series[0], series[1], judge=cfg.judge, confidence=conf,
                           tolerance=tol, power_target=cfg.power, unit=unit)
    r.kind = mc.kind
    r.ci_of = f"shift of the per-{cfg.interval_s:g}s {src.aggregation} (canary - baseline)"
    if src.quantile is not None and values is not None:
        b, c = samples(view, values, pop, MAX_DISTINCT)
        key = src.aggregation
        r.baseline[f"overall_{key}"] = b.quantile(src.quantile)
        r.canary[f"overall_{key}"] = c.quantile(src.quantile)
    return r


def _totals(e: int, n: int) -> dict[str, Any]:
    """A cohort's events among its requests, beside the per-interval series (kayenta mode)."""
    return {"requests": n, "events": e, "rate_overall": e / n if n else math.nan}


def judge_array_metric(am: ArrayMetric, cfg: JudgeConfig) -> MetricResult:
    mc = am.config
    return cl.classify_series(mc, np.asarray(_floats(am.baseline)), np.asarray(_floats(am.canary)),
                              judge=cfg.judge, confidence=cfg.metric_confidence(mc),
                              tolerance=cfg.metric_tolerance(mc), power_target=cfg.power)


def _floats(values: Iterable[Any]) -> list[float]:
    return [math.nan if v is None or v == "NaN" else float(v) for v in values]


# ---- thresholds ---------------------------------------------------------------------------------

def evaluate_thresholds(ths: Sequence[Threshold], figs: Mapping[str, Mapping[str, float]] | None,
                        labels: tuple[str, str] = ("baseline", "canary")) -> list[ThresholdResult]:
    out = []
    for t in ths:
        if figs is None:
            out.append(ThresholdResult(t.describe(), t.metric, math.nan, math.nan, None,
                                       "no requests table in this run"))
            continue
        cv, bv = figs["canary"].get(t.metric, math.nan), figs["baseline"].get(t.metric, math.nan)
        if figs["canary"]["requests"] == 0 or math.isnan(cv):
            out.append(ThresholdResult(t.describe(), t.metric, cv, bv, None, f"no {labels[1]} requests"))
            continue
        fails = []
        if t.max is not None and cv > t.max:
            fails.append(f"{cv:.4g} > {t.max:g}")
        if t.min is not None and cv < t.min:
            fails.append(f"{cv:.4g} < {t.min:g}")
        relative_missing = (t.max_ratio is not None or t.max_delta is not None) and (
            figs["baseline"]["requests"] == 0 or math.isnan(bv))
        if relative_missing:
            out.append(ThresholdResult(t.describe(), t.metric, cv, bv, None if not fails else False,
                                       "; ".join(fails) or f"no {labels[0]} requests to compare with"))
            continue
        if t.max_ratio is not None:
            if bv > 0 and cv / bv > t.max_ratio:
                fails.append(f"{cv:.4g} is {cv / bv:.3g} x {labels[0]} {bv:.4g} (> {t.max_ratio:g})")
            elif bv == 0 and cv > 0:
                fails.append(f"{cv:.4g} against {labels[0]} 0")
        if t.max_delta is not None and cv - bv > t.max_delta:
            fails.append(f"{cv:.4g} - {labels[0]} {bv:.4g} = {cv - bv:.4g} (> {t.max_delta:g})")
        out.append(ThresholdResult(t.describe(), t.metric, cv, bv, not fails, "; ".join(fails)))
    return out


# ---- verdict -------------------------------------------------------------------------------------

def finish(cfg: JudgeConfig, results: list[MetricResult], thresholds: list[ThresholdResult], *,
           labels: tuple[str, str] = ("baseline", "canary")) -> JudgeResult:
    sr = scorer.score(results, cfg.group_weights)
    score_cls = scorer.classify_score(sr.score, cfg.pass_threshold, cfg.marginal_threshold)
    scored = [r for r in results if not r.muted]
    reasons: list[str] = []
    thr_failed = [t for t in thresholds if t.passed is False]
    thr_nodata = [t for t in thresholds if t.passed is None]
    for t in thr_failed:
        reasons.append(f"threshold {t.description} failed: {t.reason}")
    if sr.reason:
        reasons.append(f"score {sr.score:g}: {sr.reason}")
    # Every metric that did not pass, once (the one that zeroed the score is in that line already).
    reasons += [f"{r.name}: {r.classification}: {r.reason}" for r in scored
                if r.classification != PASS and r.name != sr.zeroed_by]
    if cfg.judge == "kayenta":
        verdict = {"Pass": "pass", "Marginal": "marginal", "Fail": "fail"}[score_cls]
        if thr_failed:
            verdict = "fail"
        elif thr_nodata and verdict == "pass":
            verdict = "inconclusive"
            reasons += [f"threshold {t.description}: {t.reason}" for t in thr_nodata]
    else:
        missing = [r for r in scored if r.classification == NODATA]
        # A critical metric without data zeroes Kayenta's score; here it makes the run inconclusive
        # (no traffic is no evidence of a bad canary), while a critical High/Low fails it. Metrics
        # without data fail the run only if it fails even with all of them passing.
        critical_failures = [r for r in scored if r.critical and r.classification not in (PASS, NODATA)]
        best = scorer.score([replace(r, classification=PASS, critical=False) if r.classification == NODATA else r
                             for r in scored], cfg.group_weights) if missing else sr
        best_cls = scorer.classify_score(best.score, cfg.pass_threshold, cfg.marginal_threshold)
        if not scored and not thresholds:
            verdict = "inconclusive"
            reasons.append("no metrics to judge")
        elif thr_failed or critical_failures:
            verdict = "fail"
        elif best_cls == "Fail":
            verdict = "fail"
            if missing:
                reasons.insert(0, f"score {best.score:g} even if the metrics without data passed: below the "
                                  f"marginal threshold {cfg.marginal_threshold:g}")
        elif sr.zeroed_because in ("too_many_nodata", "critical"):
            verdict = "inconclusive"
        elif missing or thr_nodata:
            verdict = "inconclusive"
            reasons += [f"threshold {t.description}: {t.reason}" for t in thr_nodata]
        elif score_cls == "Marginal":
            verdict = "marginal"
        else:
            verdict = "pass"
    if verdict == "marginal":
        reasons.insert(0, f"score {sr.score:g} is below the pass threshold {cfg.pass_threshold:g} "
                          f"(marginal at {cfg.marginal_threshold:g})")
    elif verdict == "fail" and score_cls == "Fail" and not sr.reason:
        reasons.insert(0, f"score {sr.score:g} is below the marginal threshold {cfg.marginal_threshold:g}")
    return JudgeResult(
        verdict=verdict, score=sr.score, score_classification=score_cls, judge=cfg.judge, reasons=reasons,
        metrics=results, groups=sr.groups, thresholds=thresholds, labels=labels,
        config={
            "judge": cfg.judge, "confidence": cfg.confidence, "tolerance": cfg.tolerance,
            "power": cfg.power if cfg.judge == "meshctl" else None, "interval_s": cfg.interval_s,
            "groupWeights": dict(cfg.group_weights),
            "scoreThresholds": {"pass": cfg.pass_threshold, "marginal": cfg.marginal_threshold},
            "thresholds": [t.describe() for t in cfg.thresholds],
        },
    )


# ---- entry points --------------------------------------------------------------------------------

def judge_arrays(cfg: JudgeConfig, metrics: Sequence[ArrayMetric]) -> JudgeResult:
    """Judge `--metrics` arrays (no requests table)."""
    results = [judge_array_metric(am, cfg) for am in metrics]
    res = finish(cfg, results, evaluate_thresholds(cfg.thresholds, None))
    res.kind = "metrics"
    res.samples.update({am.config.name: (_floats(am.baseline), _floats(am.canary)) for am in metrics})
    return res


def judge(cfg: JudgeConfig, cohorts: Cohorts, *, table_metric_configs: Sequence[MetricConfig] | None = None,
          arrays: Sequence[ArrayMetric] = (), routes: int = ROUTES_DEFAULT, kind: str = "canary",
          labels: tuple[str, str] = ("baseline", "canary")) -> JudgeResult:
    """Judge the canary cohort against the baseline cohort of a requests table."""
    view = View(cohorts)
    mcs = list(table_metric_configs) if table_metric_configs is not None else table_metrics(cfg)
    results = [judge_table_metric(view, mc, cfg) for mc in mcs]
    results += [judge_array_metric(am, cfg) for am in arrays]
    figs, latency = figures(view)
    res = finish(cfg, results, evaluate_thresholds(cfg.thresholds, figs, labels), labels=labels)
    res.kind = kind
    res.notes = list(cohorts.notes)
    res.cohorts = {
        "service": cohorts.service,
        "reporter": cohorts.reporter,
        "baseline": {**cohorts.baseline.as_dict(), **figs["baseline"]},
        "canary": {**cohorts.canary.as_dict(), **figs["canary"]},
    }
    res.samples["latency"] = latency
    res.samples.update({am.config.name: (_floats(am.baseline), _floats(am.canary)) for am in arrays})
    if routes:
        res.routes = route_breakdown(view, cfg, routes)
    _volume_notes(res, figs, labels)
    return res


def _volume_notes(res: JudgeResult, figs: Mapping[str, Mapping[str, float]], labels: tuple[str, str]) -> None:
    """A cohort without requests never passes (whatever a custom config left to judge)."""
    for name, label in (("baseline", labels[0]), ("canary", labels[1])):
        if figs[name]["requests"] == 0:
            if not any(n.startswith("no ") and label in n for n in res.notes):
                res.notes.append(f"no {label} requests matched")
            if res.verdict in ("pass", "marginal"):
                res.verdict = "inconclusive"
                res.reasons.append(f"no {label} requests: nothing to compare")


ROUTE_LATENCY_ROWS = 1_000_000  # per-route latency figures use an even subsample beyond this many rows


def route_breakdown(view: View, cfg: JudgeConfig, top: int) -> list[RouteRow]:
    """Per route (method + path template) of the `top` busiest: requests, error rate and latency per
    cohort, with a report-only error-rate test and latency rank test (never scored: many routes mean
    many tests). Counts are exact; with more than ROUTE_LATENCY_ROWS rows the latency figures come
    from an even subsample of the rows."""
    ids, names = view.routes()
    if not names:
        return []
    code = view.code
    used = code > 0
    total = np.bincount(ids[used], minlength=len(names)) if used.any() else np.zeros(len(names), np.int64)
    order = [int(i) for i in np.argsort(-total, kind="stable")[:top] if total[i] > 0]
    if not order:
        return []
    r = len(order)
    lut = np.full(len(names) + 1, -1, dtype=np.int32)
    lut[order] = np.arange(r, dtype=np.int32)
    rid = lut[ids]  # -1 (via the extra slot) for routes outside the top
    # One key per row: route * 2 + cohort (0 baseline, 1 canary); everything else goes to bin 2r.
    key = rid * 2 + (code.astype(np.int32) - 1)
    key[(rid < 0) | ~used] = 2 * r
    n = np.bincount(key, minlength=2 * r + 1)
    err = view.is_error()
    e = np.bincount(key[err], minlength=2 * r + 1)
    dur = view.numeric("duration_ms")
    step = max(1, -(-dur.size // ROUTE_LATENCY_ROWS))
    k_s, d_s = key[::step], dur[::step]
    ok = (k_s < 2 * r) & ~np.isnan(d_s)
    lat = grouped(d_s[ok], k_s[ok], 2 * r, MAX_DISTINCT)
    err_cfg = MetricConfig("error_rate", kind="proportion", groups=("routes",), direction="increase", muted=True,
                           effect_size=BUILTINS["error_rate"].effect_size)
    lat_cfg = MetricConfig("latency", kind="distribution", groups=("routes",), direction="increase", muted=True,
                           effect_size=BUILTINS["latency"].effect_size)
    rows = []
    for j, i in enumerate(order):
        side = {}
        for c, name in ((0, "baseline"), (1, "canary")):
            nn, ee, s = int(n[2 * j + c]), int(e[2 * j + c]), lat[2 * j + c]
            side[name] = {"requests": nn, "errors": ee, "error_rate": ee / nn if nn else math.nan,
                          "latency_mean": s.mean() if not s.empty else math.nan,
                          "latency_p50": s.quantile(0.5), "latency_p99": s.quantile(0.99)}
        row = RouteRow(names[i], side["baseline"], side["canary"])
        nb, nc = side["baseline"]["requests"], side["canary"]["requests"]
        if nb and nc:
            row.error_rate = cl.classify_proportion(err_cfg, side["baseline"]["errors"], nb, side["canary"]["errors"],
                                                    nc, confidence=cfg.confidence, power_target=None)
            if not lat[2 * j].empty and not lat[2 * j + 1].empty:
                row.latency = cl.classify_samples(lat_cfg, lat[2 * j], lat[2 * j + 1], judge="kayenta",
                                                  confidence=cfg.confidence, tolerance=cfg.tolerance,
                                                  power_target=cfg.power, unit="ms")
        rows.append(row)
    return rows
