"""Metric inputs per cohort, computed from the requests table.

Built-in metrics (names are stable; a config file overrides their settings by name):

| name         | what                                                        | meshctl judge          | kayenta judge                |
|--------------|-------------------------------------------------------------|------------------------|------------------------------|
| error_rate   | 5xx, gRPC non-OK, failure response flags, no response       | two-proportion test    | per-interval rates, rank test |
| latency      | per-request duration_ms                                     | rank test              | rank test                    |
| latency_p50  | median duration                                             | quantile test          | per-interval p50, rank test  |
| latency_p90  | 90th percentile                                             | quantile test          | per-interval p90, rank test  |
| latency_p99  | 99th percentile                                             | quantile test          | per-interval p99, rank test  |

Everything is vectorized over the rows (numpy on dictionary codes and numeric columns): no Python
per request. Per-interval series bucket each cohort's requests by `interval` seconds from the start
of its own time range; a bucket without requests is a missing point (NaN), as a metric store would
return it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analyzers.canary.cohorts import Cohorts
from analyzers.canary.config import EffectSize, MetricConfig, TableSource
from analyzers.canary.mannwhitney import MAX_DISTINCT, WeightedSample
from analyzers.routes import route_template

# Envoy response flags that mean the request failed (whatever status code was logged).
ERROR_FLAGS = ("UF", "UH", "URX", "UC", "UO", "UT", "UPE", "NR", "SI", "UMSDR", "OM", "DT", "LH", "DPE", "UAEX")

BUILTINS: dict[str, MetricConfig] = {
    "error_rate": MetricConfig(
        name="error_rate", kind="proportion", groups=("errors",), direction="increase", critical=True,
        effect_size=EffectSize("difference", 0.005, 0.0, 0.005, 0.0),
        source=TableSource(events="error", aggregation="rate"),
        description="share of requests that failed: HTTP 5xx, gRPC status other than OK, Envoy failure flags "
                    "(UF, UH, URX, UC, UO, UT, ...), no response at all (code 0, unless the client went away), "
                    "or a span with status error"),
    "latency": MetricConfig(
        name="latency", kind="distribution", groups=("latency",), direction="increase",
        effect_size=EffectSize("meanRatio", 1.1, 1.0, 1.5, 1.0),
        source=TableSource(value="duration_ms", aggregation="distribution"),
        description="per-request duration (ms): the whole distribution"),
    "latency_p50": MetricConfig(
        name="latency_p50", kind="quantile", groups=("latency",), direction="increase",
        effect_size=EffectSize("meanRatio", 1.1, 1.0, 1.5, 1.0),
        source=TableSource(value="duration_ms", aggregation="p50", quantile=0.5),
        description="median request duration (ms)"),
    "latency_p90": MetricConfig(
        name="latency_p90", kind="quantile", groups=("latency",), direction="increase",
        effect_size=EffectSize("meanRatio", 1.15, 1.0, 1.5, 1.0),
        source=TableSource(value="duration_ms", aggregation="p90", quantile=0.9),
        description="90th percentile request duration (ms)"),
    "latency_p99": MetricConfig(
        name="latency_p99", kind="quantile", groups=("latency",), direction="increase", critical=True,
        effect_size=EffectSize("meanRatio", 1.2, 1.0, 1.25, 1.0),
        source=TableSource(value="duration_ms", aggregation="p99", quantile=0.99),
        description="99th percentile request duration (ms); critical when 25% or more slower"),
}


# ---- path templates -------------------------------------------------------------------------------


def path_template(path: str | None) -> str:
    """`/reviews/123?x=1` -> `/reviews/{id}`: the route template of analyzers.routes (the same rules the
    route-tagger Wasm plugin applies in the proxies), `-` for a request without a path."""
    return route_template(path) or "-"


# ---- per-table view -----------------------------------------------------------------------------------

@dataclass
class View:
    """The cohorts' rows and cached per-row arrays derived from them."""

    cohorts: Cohorts
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def cols(self):
        return self.cohorts.cols

    @property
    def code(self) -> np.ndarray:
        return self.cohorts.code

    def cohort(self, k: int) -> np.ndarray:
        key = f"cohort{k}"
        if key not in self._cache:
            self._cache[key] = self.code == k
        return self._cache[key]

    def numeric(self, name: str) -> np.ndarray:
        return self.cols.numeric(name)

    def take(self, values: np.ndarray, k: int, population: np.ndarray | None) -> np.ndarray:
        """values of cohort k's rows (within `population`), in row order; cached, as gathering
        millions of rows through a boolean mask is the costliest step of most metrics."""
        key = ("take", id(values), k, id(population))
        if key not in self._cache:
            sel = self.cohort(k) if population is None else self.cohort(k) & population
            self._cache[key] = (values[sel], values, population)
        return self._cache[key][0]

    def is_error(self) -> np.ndarray:
        if "error" not in self._cache:
            self._cache["error"] = error_mask(self.cols)
        return self._cache["error"]

    def routes(self) -> tuple[np.ndarray, list[str]]:
        """Route id per row (method + path template) and the route names."""
        if "routes" not in self._cache:
            mcodes, mvals = self.cols.codes("method")
            pcodes, pvals = self.cols.codes("path")
            templates = [path_template(p) for p in pvals]
            tnames = sorted(set(templates))
            tid = {t: i for i, t in enumerate(tnames)}
            size = len(mvals) * len(tnames)
            dtype = np.int32 if size < 2**31 else np.int64
            path_lut = np.array([tid[t] for t in templates], dtype=dtype)
            key = path_lut[pcodes]
            if len(mvals) > 1:
                key += mcodes.astype(dtype) * len(tnames)
            present = np.flatnonzero(np.bincount(key, minlength=size))
            remap = np.full(size, -1, dtype=np.int32)
            remap[present] = np.arange(present.size, dtype=np.int32)
            names = [f"{mvals[k // len(tnames)] or '*'} {tnames[k % len(tnames)]}" for k in present]
            self._cache["routes"] = (remap[key], names)
        return self._cache["routes"]

    def mask(self, text: str | None) -> np.ndarray | None:
        """Rows matching a filter expression (None = all rows)."""
        if text is None:
            return None
        if text.strip() == "error":
            return self.is_error()
        key = f"mask:{text}"
        if key not in self._cache:
            from analyzers.canary.expr import evaluate, parse_expr

            expr = parse_expr(text)
            table = self.cols.table
            need = expr.columns
            if "error" in need:
                import pyarrow as pa

                table = table.append_column("error", pa.array(self.is_error()))
            if "route" in need:
                import pyarrow as pa

                ids, names = self.routes()
                table = table.append_column("route", pa.DictionaryArray.from_arrays(
                    pa.array(ids, pa.int32()), pa.array(names, pa.string())))
            self._cache[key] = evaluate(expr, table)
        return self._cache[key]

    def buckets(self, k: int, interval_s: float, population: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
        """For cohort k's rows (within `population`): (row mask, bucket index of each selected row,
        number of buckets). Buckets count from the start of the cohort's own time range; rows
        without a timestamp are left out."""
        sel, b, nb, _complete = self._buckets(k, interval_s, population)
        return sel, b, nb

    def buckets_complete(self, k: int, interval_s: float, population: np.ndarray | None) -> bool:
        """Whether every row of cohort k (within population) got a bucket (none lacked a timestamp)."""
        return self._buckets(k, interval_s, population)[3]

    def _buckets(self, k: int, interval_s: float, population: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, int, bool]:
        key = ("buckets", k, interval_s, id(population))
        if key not in self._cache:
            ts = self.cols.timestamps_us()
            cohort = self.cohort(k)
            sel = cohort if population is None else cohort & population
            missing = np.iinfo(np.int64).min
            info = self.cohorts.baseline if k == 1 else self.cohorts.canary
            if info.first is None:
                value = (np.zeros(sel.size, dtype=bool), np.zeros(0, np.int64), 0, False)
            else:
                step = int(interval_s * 1_000_000)
                t0 = round(info.first.timestamp() * 1_000_000) // step * step
                t1 = round(info.last.timestamp() * 1_000_000)
                tk = self.take(ts, k, population)
                complete = not (tk.size and tk.min() == missing)
                if not complete:
                    sel = sel & (ts != missing)
                    tk = ts[sel]
                value = (sel, (tk - t0) // step, (t1 - t0) // step + 1, complete)
            self._cache[key] = (value, population)
        return self._cache[key][0]


def error_mask(cols: Any) -> np.ndarray:
    """HTTP 5xx, gRPC non-OK, a failure response flag, no response (code 0) unless the client went
    away first (flag DC), or a trace-derived row whose span status is error."""
    n = cols.table.num_rows
    err = np.zeros(n, dtype=bool)
    if not cols.all_null("response_code"):
        col = cols.table.column("response_code")
        code = col.to_numpy() if col.null_count == 0 else cols.numeric("response_code")
        err |= code >= 500
        no_response = code == 0
        if no_response.any():
            err |= no_response & ~cols.where("response_flags", lambda v: v is not None and "DC" in v.split(","))
    if not cols.all_null("grpc_status"):
        grpc = cols.numeric("grpc_status")
        with np.errstate(invalid="ignore"):
            err |= grpc > 0  # NaN (no gRPC status) compares false
    if not cols.all_null("response_flags"):
        err |= cols.where("response_flags", lambda v: v is not None and bool(set(v.split(",")) & set(ERROR_FLAGS)))
    if not cols.all_null("span_status"):
        err |= cols.where("span_status", lambda v: v == "error")
    return err


# ---- per-cohort samples and counts --------------------------------------------------------------

def samples(view: View, values: np.ndarray, population: np.ndarray | None, max_distinct: int | None
            ) -> tuple[WeightedSample, WeightedSample]:
    """The two cohorts' values as weighted samples (cached per values/population array)."""
    key = ("samples", id(values), id(population), max_distinct)
    if key not in view._cache:
        view._cache[key] = (_samples(view, values, population, max_distinct), values, population)
    return view._cache[key][0]


def _samples(view: View, values: np.ndarray, population: np.ndarray | None, max_distinct: int | None
             ) -> tuple[WeightedSample, WeightedSample]:
    out = []
    for k in (1, 2):
        v = np.sort(view.take(values, k, population))
        # NaN (null) sorts last: cut it off without another pass over the rows.
        if v.size and np.isnan(v[-1]):
            v = v[:int(np.searchsorted(v, np.nan))]
        out.append(WeightedSample.from_sorted(v, max_distinct=max_distinct))
    return out[0], out[1]


def counts(view: View, events: np.ndarray, population: np.ndarray | None) -> tuple[int, int, int, int]:
    res = []
    for k in (1, 2):
        sel = view.cohort(k) if population is None else view.cohort(k) & population
        res += [int(np.count_nonzero(events & sel)), int(np.count_nonzero(sel))]
    return res[0], res[1], res[2], res[3]


def grouped(values: np.ndarray, groups: np.ndarray, n_groups: int, max_distinct: int | None = None
            ) -> list[WeightedSample]:
    """One weighted sample per group id (0..n_groups-1) of NaN-free values; ids < 0 are skipped."""
    keep = groups >= 0
    vs, bounds = _sorted_by_group(values[keep], groups[keep], n_groups)
    return [WeightedSample.from_sorted(vs[bounds[i]:bounds[i + 1]], max_distinct=max_distinct)
            for i in range(n_groups)]


def interval_series(view: View, k: int, interval_s: float, aggregation: str, *, values: np.ndarray | None = None,
                    events: np.ndarray | None = None, population: np.ndarray | None = None,
                    quantile: float | None = None) -> np.ndarray:
    """Cohort k's per-interval series (NaN where a bucket has no requests)."""
    sel, b, nb = view.buckets(k, interval_s, population)
    if nb == 0:
        return np.zeros(0)
    key = ("requests", k, interval_s, id(population))
    if key not in view._cache:
        view._cache[key] = (np.bincount(b, minlength=nb).astype(np.float64), population)
    requests = view._cache[key][0]
    with np.errstate(invalid="ignore", divide="ignore"):
        if aggregation == "rate":
            ev = events[sel]
            out = np.bincount(b[ev], minlength=nb) / requests  # only the (few) event rows are gathered
        elif aggregation == "count":
            # Every bucket of the cohort's time range is a point; an empty one counts zero.
            return requests.copy()
        elif quantile is not None:
            key = ("bucket-sorted", k, interval_s, id(values), id(population))
            if key not in view._cache:  # shared by p50, p90, p99 of the same values
                # The cohort's values in row order (shared with the per-request metrics) when no row
                # lacked a timestamp, else through the bucket mask.
                taken = view.take(values, k, population) if view.buckets_complete(k, interval_s, population) \
                    else values[sel]
                bv, v = _valid(b, taken)
                view._cache[key] = (_sorted_by_group(v, bv, nb), values, population)
            vs, bounds = view._cache[key][0]
            out = _segment_quantiles(vs, bounds, quantile)
        else:
            bv, v = _valid(b, values[sel])
            if aggregation == "sum":
                out = np.bincount(bv, weights=v, minlength=nb)
            elif aggregation == "mean":
                out = np.bincount(bv, weights=v, minlength=nb) / np.bincount(bv, minlength=nb)
            else:
                raise ValueError(f"no per-interval form for aggregation {aggregation!r}")
    out[requests == 0] = np.nan
    return out


def _sorted_by_group(values: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Values ordered by group, each group's run sorted, and the run bounds (n_groups + 1)."""
    g = groups.astype(np.int16) if n_groups < 32768 else groups
    order = np.argsort(g, kind="stable")  # a radix sort for 16-bit keys
    vs = values[order]
    bounds = np.searchsorted(g[order], np.arange(n_groups + 1))
    for i in range(n_groups):
        vs[bounds[i]:bounds[i + 1]].sort()  # in place
    return vs, bounds


def _segment_quantiles(vs: np.ndarray, bounds: np.ndarray, q: float) -> np.ndarray:
    """R-7 quantile of every sorted run vs[bounds[i]:bounds[i+1]] at once (NaN for an empty run)."""
    n = np.diff(bounds)
    out = np.full(n.size, np.nan)
    ok = n > 0
    if not ok.any():
        return out
    h = (n[ok] - 1) * q
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n[ok] - 1)
    start = bounds[:-1][ok]
    a, b = vs[start + lo], vs[start + hi]
    out[ok] = a + (h - lo) * (b - a)
    return out


def _valid(b: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nan = np.isnan(v)
    return (b, v) if not nan.any() else (b[~nan], v[~nan])


# ---- figures for Flagger-style thresholds and the report ----------------------------------------

def figures(view: View) -> tuple[dict[str, dict[str, float]], tuple[WeightedSample, WeightedSample]]:
    """error_rate, success_rate, latency_mean/p50/p90/p99, requests, rps per cohort, and the two
    latency samples."""
    dur = view.numeric("duration_ms")
    err = view.is_error()
    b, c = samples(view, dur, None, MAX_DISTINCT)
    out: dict[str, dict[str, float]] = {}
    for name, k, s, info in (("baseline", 1, b, view.cohorts.baseline), ("canary", 2, c, view.cohorts.canary)):
        sel = view.cohort(k)
        n = int(np.count_nonzero(sel))
        e = int(np.count_nonzero(err & sel))
        out[name] = {
            "requests": n,
            "errors": e,
            "error_rate": e / n if n else math.nan,
            "success_rate": 1 - e / n if n else math.nan,
            "latency_mean": s.mean() if not s.empty else math.nan,
            "latency_p50": s.quantile(0.5),
            "latency_p90": s.quantile(0.9),
            "latency_p99": s.quantile(0.99),
            "rps": n / info.seconds if info.seconds > 0 else math.nan,
        }
    total = out["baseline"]["requests"] + out["canary"]["requests"]
    for name in out:
        out[name]["traffic_share"] = out[name]["requests"] / total if total else math.nan
    return out, (b, c)
