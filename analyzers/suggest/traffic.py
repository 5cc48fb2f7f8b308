"""Requests-table rows → numpy arrays and the per-group figures every suggestion kind reads.

One request is often reported twice (by the caller's sidecar, `outbound`, and by the callee's,
`inbound`). Suggestions pick one perspective per destination service: the calling side for the
circuit breaker (DestinationRule limits are enforced by each calling proxy), the serving side for
the rate limit (the local rate limit runs in the callee's inbound listener).

All figures are vectorized: per-second counts with bincount, in-flight concurrency with a sorted
+1/-1 event sweep, error bursts with run-length encoding per upstream host.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from analyzers.suggest.config import SuggestConfig, service_matches, service_namespace

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

CLIENT_SIDE = ("outbound", "gateway")
# Response flags of requests the proxy answered itself, without reaching an upstream host.
LOCAL_REJECT_FLAGS = ("UO", "UH", "NR", "RL", "RLSE", "UAEX", "FI", "NC")
# Locally originated upstream failures: Envoy's outlier detection counts them as 5xx and gateway errors.
UPSTREAM_FAILURE_FLAGS = ("UF", "UC", "UT", "LR", "UR", "URX", "UMSDR")
GATEWAY_CODES = (502, 503, 504)
COLUMNS = (
    "timestamp", "duration_ms", "upstream_service_time_ms", "response_code", "response_flags", "protocol",
    "route_name", "source_workload", "source_namespace", "source_app", "downstream_remote_address",
    "destination_service",
    "destination_namespace", "destination_app", "destination_workload", "destination_version",
    "destination_subset", "destination_kind", "upstream_host", "upstream_cluster", "direction",
    "reporter_workload", "reporter_namespace",
)


@dataclass
class Codes:
    """A factorized string column: int codes per row (-1 = null) and the labels."""

    codes: np.ndarray
    labels: list[str]

    def label(self, i: int) -> str | None:
        return self.labels[i] if i >= 0 else None


class Traffic:
    """The rows a suggestion uses, sorted by start time, as numpy arrays.

    start / end are seconds since `t0_us` (epoch microseconds of the first row).
    """

    def __init__(self, df: pd.DataFrame, *, prefer: str = "client") -> None:
        import numpy as np

        self.rows_in = len(df)
        df = df[[c for c in COLUMNS if c in df.columns]]  # only what suggestions read: cheaper copies
        has_service = df["destination_service"].notna().to_numpy(dtype=bool) if len(df) else np.zeros(0, bool)
        self.skipped_no_service = int((~has_service).sum())
        df = df[has_service]
        df = df[_perspective_mask(df, prefer)]
        ts = df["timestamp"].to_numpy(dtype="datetime64[us]").astype("int64")
        order = np.argsort(ts, kind="stable")
        df = df.iloc[order].reset_index(drop=True)
        ts = ts[order]
        self.frame = df
        self.n = len(df)
        self.t0_us = int(ts[0]) if self.n else 0
        self.start = (ts - self.t0_us) / 1e6 if self.n else np.zeros(0)
        dur = df["duration_ms"].to_numpy(dtype="float64", na_value=np.nan)
        ust = df["upstream_service_time_ms"].to_numpy(dtype="float64", na_value=np.nan)
        dur = np.where(np.isnan(dur), ust, dur) / 1000.0
        self.duration = dur
        self.code = df["response_code"].to_numpy(dtype="float64", na_value=np.nan)
        # String columns are factorized first and transformed on their few distinct values.
        self.flags = _factorize(df["response_flags"])
        self.local_reject = _label_test(self.flags, lambda f: _has_flag(f, LOCAL_REJECT_FLAGS))
        upstream_fail = _label_test(self.flags, lambda f: _has_flag(f, UPSTREAM_FAILURE_FLAGS))
        reached = ~self.local_reject
        code = np.nan_to_num(self.code, nan=0)
        self.error5xx = reached & ((code >= 500) | upstream_fail)
        self.gateway_error = reached & (np.isin(code, GATEWAY_CODES) | upstream_fail)
        self.uc = _label_test(self.flags, lambda f: _has_flag(f, ("UC",)))
        proto = _factorize(df["protocol"])
        self.h2 = _label_test(proto, lambda p: bool(re.search("HTTP/2|GRPC|H2", p.upper())))
        self.service = _factorize(df["destination_service"])
        # outbound|9080|v2|reviews.default.svc.cluster.local -> v2, when destination_subset is not recorded
        cluster = _factorize(df["upstream_cluster"])
        dsub = _factorize(df["destination_subset"])
        labels = list(dsub.labels)
        index = {x: i for i, x in enumerate(labels)}
        from_cluster = np.full(len(cluster.labels) + 1, -1, dtype=np.int64)
        for i, name in enumerate(cluster.labels):
            sub = _cluster_subset(name)
            if sub is not None:
                if sub not in index:
                    index[sub] = len(labels)
                    labels.append(sub)
                from_cluster[i] = index[sub]
        self.subset = Codes(np.where(dsub.codes >= 0, dsub.codes, from_cluster[cluster.codes]), labels)
        self.host = _factorize(df["upstream_host"])
        self.route = _factorize(df["route_name"])
        self.source = _pair(df["source_workload"], df["source_namespace"])
        self.caller = _caller(df, self.source)
        self.version = _factorize(df["destination_version"])
        self.direction = df["direction"]

    # ---- helpers ---------------------------------------------------------------------------
    def iso(self, t: float) -> str:
        """Seconds since t0 → ISO 8601 UTC (millisecond precision)."""
        us = self.t0_us + round(t * 1e6)
        return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z")

    def end(self, idx: np.ndarray | None = None) -> np.ndarray:
        import numpy as np

        s = self.start if idx is None else self.start[idx]
        d = self.duration if idx is None else self.duration[idx]
        return s + np.nan_to_num(d, nan=0.0)

    def groups(self, *keys: Codes, mask: np.ndarray | None = None) -> list[tuple[tuple[int, ...], np.ndarray]]:
        """Row indices (in time order) of each combination of key codes, optionally within `mask`."""
        import numpy as np

        idx = np.arange(self.n) if mask is None else np.flatnonzero(mask)
        if not len(idx):
            return []
        cols = [k.codes[idx] for k in keys]
        combined = np.zeros(len(idx), dtype=np.int64)
        for k, c in zip(keys, cols, strict=False):
            combined = combined * (len(k.labels) + 1) + (c + 1)
        order = np.argsort(combined, kind="stable")  # stable: time order kept inside a group
        sorted_keys = combined[order]
        bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
        out = []
        for part in np.split(order, bounds):
            rows = idx[part]
            out.append((tuple(int(c[part[0]]) for c in cols), rows))
        return out

    def service_groups(self, cfg: SuggestConfig, *keys: Codes
                       ) -> Iterator[tuple[tuple[int, ...], np.ndarray, str, str | None]]:
        """(codes, rows, service, namespace) of each destination service (and combination of `keys`)
        that `--service` and `-n` select."""
        for codes, rows in self.groups(self.service, *keys):
            service = self.service.labels[codes[0]]
            if not service_matches(service, cfg.services):
                continue
            ns = service_namespace(service, self.first_value("destination_namespace", rows))
            if cfg.namespace and ns != cfg.namespace:
                continue
            yield codes, rows, service, ns

    def first_value(self, column: str, rows: np.ndarray) -> str | None:
        vals = self.frame[column].iloc[rows].dropna()
        return str(vals.mode().iloc[0]) if len(vals) else None


def _perspective_mask(df: pd.DataFrame, prefer: str) -> np.ndarray:
    """One perspective per destination service: `prefer` side when that service has such rows."""
    import numpy as np

    if not len(df):
        return np.zeros(0, dtype=bool)
    direction = _factorize(df["direction"])
    client = _label_test(direction, lambda d: d in CLIENT_SIDE)
    server = _label_test(direction, lambda d: d == "inbound")
    other = ~client & ~server
    first, second = (client, server) if prefer == "client" else (server, client)
    svc = _factorize(df["destination_service"]).codes
    n = len(svc) and int(svc.max()) + 1
    has_first = (np.bincount(svc, weights=first, minlength=n) > 0)[svc]
    has_second = (np.bincount(svc, weights=second, minlength=n) > 0)[svc]
    return np.where(has_first, first, np.where(has_second, second, other))


def _has_flag(flags: str, names: tuple[str, ...]) -> bool:
    return any(f in names for f in flags.split(","))


def _label_test(codes: Codes, test: Callable[[str], bool]) -> np.ndarray:
    """A per-row boolean from a test on the distinct values (nulls are False)."""
    import numpy as np

    per_label = np.array([bool(test(x)) for x in codes.labels] + [False], dtype=bool)
    return per_label[codes.codes]  # code -1 picks the trailing False


def _cluster_subset(name: str) -> str | None:
    parts = name.split("|")
    return parts[2] if len(parts) == 4 and parts[2] else None


def _factorize(values: Any) -> Codes:
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return Codes(np.asarray(codes, dtype=np.int64), [str(u) for u in uniques])


def _pair(a: pd.Series, b: pd.Series, sep: str = ".") -> Codes:
    """`a.b` per row from two columns (just `a` when b is null; null when a is null), via their codes."""
    import numpy as np

    ca, cb = _factorize(a), _factorize(b)
    combined = np.where(ca.codes < 0, -1, ca.codes * (len(cb.labels) + 1) + (cb.codes + 1))
    uniq, inv = np.unique(combined, return_inverse=True)
    labels, remap = [], np.full(len(uniq), -1, dtype=np.int64)
    for i, u in enumerate(uniq.tolist()):
        if u < 0:
            continue
        x, y = divmod(u, len(cb.labels) + 1)
        remap[i] = len(labels)
        labels.append(ca.labels[x] + (sep + cb.labels[y - 1] if y else ""))
    return Codes(remap[inv.reshape(-1)], labels)


def _caller(df: pd.DataFrame, source: Codes) -> Codes:
    """The calling proxy: the caller's IP for sidecar rows, the reporting gateway for gateway rows,
    else the source workload. DestinationRule limits are enforced per calling proxy."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    addr = pa.array(df["downstream_remote_address"], type=pa.string())
    ip = pc.utf8_trim(pc.list_element(pc.split_pattern(addr, ":", max_splits=1, reverse=True), 0), "[]")
    ipc = _factorize(ip.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get))
    rep = _factorize(df["reporter_workload"])
    labels = [f"ip {x}" for x in ipc.labels]
    off_wl = len(labels)
    labels += [f"workload {x}" for x in source.labels] + ["unknown"]
    off_gw = len(labels)
    labels += [f"gateway {x}" for x in rep.labels] + ["gateway ?"]
    wl = np.where(source.codes >= 0, off_wl + source.codes, off_wl + len(source.labels))
    gw = np.where(rep.codes >= 0, off_gw + rep.codes, off_gw + len(rep.labels))
    gateway = (df["direction"] == "gateway").fillna(False).to_numpy(dtype=bool)
    return Codes(np.where(gateway, gw, np.where(ipc.codes >= 0, ipc.codes, wl)), labels)


# ---- figures ----------------------------------------------------------------------------------
@dataclass
class RateFigures:
    seconds: int
    requests: int
    mean: float
    p50: float
    p99: float
    peak: int
    peak_at: float  # second start (s since t0)


def rate_figures(start: np.ndarray) -> RateFigures:
    """Per-second request counts over the group's active span (empty seconds count as 0)."""
    import numpy as np

    counts = per_second_counts(start)
    peak_i = int(np.argmax(counts))
    return RateFigures(
        seconds=len(counts), requests=len(start), mean=float(counts.mean()),
        p50=float(np.percentile(counts, 50)), p99=float(np.percentile(counts, 99)),
        peak=int(counts[peak_i]), peak_at=float(math.floor(start[0]) + peak_i),
    )


def per_second_counts(start: np.ndarray) -> np.ndarray:
    """Requests per whole second from the second of the first one (`start` sorted)."""
    import numpy as np

    sec = np.floor(start).astype(np.int64)
    return np.bincount(sec - int(sec[0]))


@dataclass
class ConcurrencyFigures:
    peak: int
    peak_at: float
    p99_per_second: float  # p99 over seconds of the per-second maximum
    mean: float  # time-average in-flight (Σ duration / span)


def concurrency_figures(start: np.ndarray, end: np.ndarray) -> ConcurrencyFigures:
    """In-flight requests from start + duration: a +1/-1 event sweep (ends before starts on ties)."""
    import numpy as np

    n = len(start)
    times = np.concatenate([start, end])
    delta = np.concatenate([np.ones(n, np.int64), -np.ones(n, np.int64)])
    order = np.lexsort((delta, times))
    conc = np.cumsum(delta[order])
    t = times[order]
    i = int(np.argmax(conc))
    sec = np.floor(t).astype(np.int64)
    bounds = np.r_[0, np.flatnonzero(np.diff(sec)) + 1]
    per_sec_max = np.maximum.reduceat(conc, bounds)
    span = max(float(end.max() - start.min()), 1e-9)
    return ConcurrencyFigures(
        peak=int(conc[i]), peak_at=float(t[i]), p99_per_second=float(np.percentile(per_sec_max, 99)),
        mean=float((end - start).sum() / span),
    )


def latency_figures(duration: np.ndarray) -> dict[str, float] | None:
    """Latency percentiles in ms over the finite durations, or None when there are none."""
    import numpy as np

    d = duration[np.isfinite(duration)]
    if not len(d):
        return None
    p50, p90, p99 = np.percentile(d, [50, 90, 99])
    return {"mean_ms": float(d.mean() * 1000), "p50_ms": float(p50 * 1000), "p90_ms": float(p90 * 1000),
            "p99_ms": float(p99 * 1000), "max_ms": float(d.max() * 1000), "count": len(d)}


@dataclass
class HostFigures:
    host: str
    requests: int
    errors5xx: int
    gateway_errors: int
    longest_5xx: int  # longest run of consecutive 5xx, any kind
    longest_5xx_at: float | None
    longest_5xx_seconds: float  # how long that run lasted
    brief_5xx: int  # longest run that lasted less than `outage_s` (a transient burst)
    brief_5xx_at: float | None
    brief_gateway: int  # the same for 502/503/504 and connect failures
    brief_gateway_at: float | None
    outages: int  # runs that lasted `outage_s` or longer
    peak_rps: int
    rps: float
    time_to: dict[int, float]  # k -> seconds from the first error to the k-th of the longest 5xx run
    failing: bool = False

    @property
    def error_rate(self) -> float:
        return self.errors5xx / self.requests if self.requests else 0.0


def _runs(flag: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of True: (lengths, start indices, seconds from the first to the last request of the run)."""
    import numpy as np

    if not flag.any():
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros(0)
    d = np.diff(np.r_[False, flag, False].astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return ends - starts, starts, t[ends - 1] - t[starts]


def host_figures(tr: Traffic, rows: np.ndarray, outage_s: float = 5.0) -> list[HostFigures]:
    """Per upstream host (of one group of rows): requests, errors, error runs, rates.

    A run of consecutive errors lasting `outage_s` or longer is an outage, not a transient burst.
    """
    import numpy as np

    rows = rows[(tr.host.codes[rows] >= 0) & ~tr.local_reject[rows]]
    if not len(rows):
        return []
    host = tr.host.codes[rows]
    order = np.argsort(host, kind="stable")
    rows, host = rows[order], host[order]
    t = tr.start[rows]
    out: list[HostFigures] = []
    bounds = np.r_[0, np.flatnonzero(np.diff(host)) + 1, len(rows)]
    for a, b in itertools.pairwise(bounds):
        r, th = rows[a:b], t[a:b]
        e5, eg = tr.error5xx[r], tr.gateway_error[r]
        len5, st5, sec5 = _runs(e5, th)
        leng, stg, secg = _runs(eg, th)
        brief5, briefg = sec5 < outage_s, secg < outage_s
        j = int(np.argmax(len5)) if len(len5) else -1
        l5 = int(len5[j]) if j >= 0 else 0
        burst_t = th[st5[j]:st5[j] + l5] if l5 else th[:0]
        jb = int(np.argmax(np.where(brief5, len5, 0))) if brief5.any() else -1
        jg = int(np.argmax(np.where(briefg, leng, 0))) if briefg.any() else -1
        counts = per_second_counts(th)
        out.append(HostFigures(
            host=tr.host.labels[int(host[a])], requests=int(b - a), errors5xx=int(e5.sum()),
            gateway_errors=int(eg.sum()), longest_5xx=l5, longest_5xx_at=float(burst_t[0]) if l5 else None,
            longest_5xx_seconds=float(burst_t[-1] - burst_t[0]) if l5 else 0.0,
            brief_5xx=int(len5[jb]) if jb >= 0 else 0, brief_5xx_at=float(th[st5[jb]]) if jb >= 0 else None,
            brief_gateway=int(leng[jg]) if jg >= 0 else 0, brief_gateway_at=float(th[stg[jg]]) if jg >= 0 else None,
            outages=int((~brief5).sum()), peak_rps=int(counts.max()), rps=float((b - a) / max(len(counts), 1)),
            time_to={k: float(burst_t[k - 1] - burst_t[0]) for k in range(1, l5 + 1)} if l5 <= 64 else
            _sparse_time_to(burst_t),
        ))
    return out


def _sparse_time_to(burst_t: np.ndarray) -> dict[int, float]:
    ks = sorted({*range(1, 65), len(burst_t)})
    return {k: float(burst_t[k - 1] - burst_t[0]) for k in ks if k <= len(burst_t)}


def gap_p99(start_by_caller: list[np.ndarray]) -> float | None:
    """p99 of the gaps between consecutive requests of one calling proxy (pooled over callers)."""
    import numpy as np

    gaps = [np.diff(s) for s in start_by_caller if len(s) > 1]
    if not gaps:
        return None
    allg = np.concatenate(gaps)
    return float(np.percentile(allg, 99)) if len(allg) else None


# ---- rounding ---------------------------------------------------------------------------------
_LADDER = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1800, 3600)


def nice_seconds(seconds: float, *, lo: float = 1.0, hi: float = 3600.0) -> float:
    """Round a duration up to 1, 2, 5, 10, 15, 20, 30 s, 1, 2, 3, 5, 10, 15, 30 min, 1 h; clamp to [lo, hi]."""
    s = min(max(seconds, lo), hi)
    for step in _LADDER:
        if step >= s - 1e-9:
            return float(min(max(step, lo), hi))
    return float(hi)


def go_duration(seconds: float) -> str:
    """Seconds → a Go/protobuf duration string as Istio writes them (`30s`, `2m`, `1h`, `250ms`)."""
    if seconds < 1 and seconds * 1000 == int(seconds * 1000):
        return f"{int(seconds * 1000)}ms"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def parse_duration(text: Any) -> float:
    """A protobuf/Go duration (`1s`, `1.5s`, `250ms`, `1m30s`, `3m`) → seconds; ValueError otherwise."""
    import re

    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"{text!r} is not a duration (e.g. 1s, 250ms, 1m30s)")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return sum(float(n) * unit[u] for n, u in parts)


def ceil_int(x: float, minimum: int = 1) -> int:
    return max(minimum, math.ceil(x - 1e-9))
