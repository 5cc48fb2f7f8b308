"""`circuit-breaker`: DestinationRule connectionPool + outlierDetection from observed traffic.

Per Envoy cluster (destination service, and subset when the traffic went through one):

connectionPool (enforced by each calling proxy, so sized on the busiest calling proxy):
  tcp.maxConnections        ceil(headroom × peak in-flight)          HTTP/1.1: one request per connection
  http.http2MaxRequests     ceil(headroom × peak in-flight)          max active requests
  http.http1MaxPendingRequests  ceil(maxConnections × p99 / mean latency): a queued request, served
                            at the full pool's throughput (maxConnections / mean latency), waits at
                            most about one p99 latency
  http.maxRequestsPerConnection  recycle_s / mean latency (HTTP/1.1: a busy connection serves about
                            1/W requests per second), or recycle_s × caller rps (HTTP/2): kept-alive
                            connections are recycled about every recycle_s, so new hosts get traffic
  http.idleTimeout          headroom × p99 gap between a caller's requests, rounded up, in [30s, 1h]
outlierDetection (per upstream host):
  consecutive5xxErrors      max(min_consecutive, longest 5xx burst of a healthy host + 1); a host is
                            failing (not healthy) when most of its answers are errors or it had an
                            outage: errors without a break for outage_s (5 s) or longer
  consecutiveGatewayErrors  the same over 502/503/504/connect failures, only when lower than the above
  interval                  ≥ the time a failing host took (or a host at the lowest per-host rate
                            would take) to reach the threshold, rounded up, in [1s, 30s]
  baseEjectionTime          the median length of the failing hosts' longest bursts, in [10s, 5m];
                            30s (Istio's default) when no host failed
  maxEjectionPercent        the hosts that can go while the rest still carry the peak at the highest
                            per-host rate seen (at least one host)
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

from analyzers.suggest import traffic as tf
from analyzers.suggest.config import SuggestConfig
from analyzers.suggest.messages import msg
from analyzers.suggest.model import (
    ConnectionPool,
    Evidence,
    OutlierDetection,
    Setting,
    Suggestion,
    Target,
    TrafficPolicy,
)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

PREFER = "client"


def suggest(tr: tf.Traffic, cfg: SuggestConfig) -> list[Suggestion]:
    out: list[Suggestion] = []
    for (_, sub_i), rows, service, ns in tr.service_groups(cfg, tr.subset):
        subset = tr.subset.label(sub_i)
        target = Target(service=service, namespace=ns, subset=subset,
                        version=tr.first_value("destination_version", rows) if subset else None,
                        app=tr.first_value("destination_app", rows))
        out.append(_one(tr, rows, target, cfg))
    return out


def impute_durations(tr: tf.Traffic, rows: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Durations (s) of `rows`; locally rejected or unknown ones get the median of the others."""
    import numpy as np

    d = tr.duration[rows].copy()
    ok = np.isfinite(d) & ~tr.local_reject[rows]
    median = float(np.median(d[ok])) if ok.any() else None
    if median is not None:
        d[~ok] = median
    return d, median


def _one(tr: tf.Traffic, rows: np.ndarray, target: Target, cfg: SuggestConfig) -> Suggestion:
    s = Suggestion(kind="circuit-breaker", target=target)
    start = tr.start[rows]
    rate = tf.rate_figures(start)
    ok = ~tr.local_reject[rows]
    lat = tf.latency_figures(tr.duration[rows][ok])
    local = int((~ok).sum())
    hosts = tf.host_figures(tr, rows, cfg.outage_s)
    h2 = bool(tr.h2[rows].mean() > 0.5)
    s.figures = {
        "requests": len(rows), "seconds": rate.seconds, "rps_mean": rate.mean, "rps_p99": rate.p99,
        "rps_peak": rate.peak, "rps_peak_at": tr.iso(rate.peak_at), "latency": lat, "hosts": len(hosts),
        "protocol": "HTTP/2" if h2 else "HTTP/1.1", "locally_rejected": local,
    }
    if len(rows) < cfg.min_requests:
        s.messages.append(msg("SG001", requests=len(rows), seconds=rate.seconds))
    kind = tr.first_value("destination_kind", rows)
    if kind:
        s.messages.append(msg("SG019", service=target.service, kind=kind))
    if local:
        import numpy as np

        fc, counts = np.unique(tr.flags.codes[rows[~ok]], return_counts=True)
        top = sorted(zip(counts.tolist(), fc.tolist(), strict=True), reverse=True)[:3]
        s.messages.append(msg("SG012", count=local, flags=", ".join(f"{tr.flags.label(c)} {n}" for n, c in top)))
    uc = int(tr.uc[rows].sum())
    if uc:
        s.messages.append(msg("SG008", count=uc, service=target.service))

    pool = None
    durations, median = impute_durations(tr, rows)
    if lat is None or median is None:
        s.messages.append(msg("SG002"))
    else:
        pool = _connection_pool(tr, rows, durations, rate, lat, h2, s, cfg)
    outlier = _outlier(tr, rows, hosts, rate, s, cfg)
    s.limits = TrafficPolicy(connection_pool=pool, outlier_detection=outlier)
    s._rows = rows  # type: ignore[attr-defined]  # for the replay; not part of the result
    return s


def _connection_pool(tr, rows, durations, rate, lat, h2, s: Suggestion, cfg: SuggestConfig):
    import numpy as np

    h = cfg.headroom
    callers = tr.caller.codes[rows]
    order = np.argsort(callers, kind="stable")
    bounds = np.r_[0, np.flatnonzero(np.diff(callers[order])) + 1, len(rows)]
    best = None
    per_caller = []
    starts_by_caller = []
    for a, b in itertools.pairwise(bounds):
        part = order[a:b]
        st = tr.start[rows[part]]
        conc = tf.concurrency_figures(st, st + durations[part])
        name = tr.caller.labels[int(callers[part[0]])]
        per_caller.append((name, conc, len(part), st))
        starts_by_caller.append(st)
        if best is None or conc.peak > best[1].peak:
            best = per_caller[-1]
    assert best is not None
    caller_name, conc, _caller_n, caller_st = best
    all_conc = tf.concurrency_figures(tr.start[rows], tr.start[rows] + durations)
    mean_s, p99_s = lat["mean_ms"] / 1000, lat["p99_ms"] / 1000
    # Little's law at the busiest second of the busiest caller: λ × W
    caller_rate = tf.rate_figures(caller_st)
    little = caller_rate.peak * mean_s
    s.figures.update({
        "callers": len(per_caller), "busiest_caller": caller_name,
        "inflight_peak": conc.peak, "inflight_peak_at": tr.iso(conc.peak_at),
        "inflight_p99_per_second": conc.p99_per_second, "inflight_mean": conc.mean,
        "inflight_peak_all_callers": all_conc.peak,
        "littles_law_peak": little, "littles_law_mean": rate.mean * mean_s,
        "caller_rps_peak": caller_rate.peak, "caller_rps_mean": caller_rate.mean,
    })
    if little > 0 and conc.peak > 2 * little and conc.peak >= 5:
        s.messages.append(msg("SG003", measured=conc.peak, ratio=conc.peak / little, rps=caller_rate.peak,
                              latency_ms=mean_s * 1000, little=little))
    scope = f"calling proxy {caller_name}" + (f", busiest of {len(per_caller)}" if len(per_caller) > 1 else "")
    inflight_ev = [
        Evidence("peak in-flight", conc.peak, "requests", scope=scope, at=tr.iso(conc.peak_at)),
        Evidence("p99 per-second peak in-flight", round(conc.p99_per_second, 1), "requests", scope=scope),
        Evidence("Little's law at the busiest second", round(little, 2), "requests", scope=scope,
                 note=f"{caller_rate.peak} rps × {mean_s * 1000:.1f} ms mean latency"),
    ]
    max_conn = tf.ceil_int(h * conc.peak)
    s.settings.append(Setting("connectionPool.tcp.maxConnections", max_conn,
                              f"ceil(headroom {h:g} × peak in-flight {conc.peak})", inflight_ev))
    s.settings.append(Setting("connectionPool.http.http2MaxRequests", max_conn,
                              f"ceil(headroom {h:g} × peak in-flight {conc.peak})", inflight_ev))
    lat_ev = [Evidence("mean latency", round(lat["mean_ms"], 1), "ms"),
              Evidence("p99 latency", round(lat["p99_ms"], 1), "ms")]
    pending = tf.ceil_int(max_conn * p99_s / mean_s)
    s.settings.append(Setting(
        "connectionPool.http.http1MaxPendingRequests", pending,
        f"ceil(maxConnections {max_conn} × p99 {lat['p99_ms']:.0f} ms / mean {lat['mean_ms']:.0f} ms): "
        "a full queue drains in about one p99 latency", lat_ev))
    if h2:
        per_conn = cfg.recycle_s * max(caller_rate.mean, 1 / cfg.recycle_s)
        rule = f"{cfg.recycle_s:g} s × caller mean rate {caller_rate.mean:.2f} rps (HTTP/2: one connection)"
    else:
        per_conn = cfg.recycle_s / mean_s
        rule = (f"{cfg.recycle_s:g} s / mean latency {mean_s * 1000:.1f} ms: a busy HTTP/1.1 connection "
                f"is recycled about every {cfg.recycle_s / 60:g} min")
    mrpc = _round_sig(max(per_conn, 100))
    s.settings.append(Setting("connectionPool.http.maxRequestsPerConnection", mrpc, rule,
                              [lat_ev[0], Evidence("caller mean rate", round(caller_rate.mean, 2), "rps",
                                                   scope=scope)]))
    gap = tf.gap_p99(starts_by_caller)
    if gap is not None:
        idle = tf.nice_seconds(h * gap, lo=30, hi=3600)
        s.settings.append(Setting("connectionPool.http.idleTimeout", tf.go_duration(idle),
                                  f"headroom {h:g} × p99 gap {gap:.2f} s between a caller's requests, "
                                  "rounded up, in [30s, 1h]",
                                  [Evidence("p99 gap between requests of one caller", round(gap, 3), "s")]))
    else:
        idle = None
    return ConnectionPool(max_connections=max_conn, http1_max_pending_requests=pending,
                          http2_max_requests=max_conn, max_requests_per_connection=mrpc, idle_timeout_s=idle)


def _round_sig(x: float, digits: int = 2) -> int:
    """Round up to `digits` significant digits (6123 → 6200)."""
    if x <= 0:
        return 0
    mag = 10 ** max(math.floor(math.log10(x)) - digits + 1, 0)
    return int(math.ceil(x / mag) * mag)


def _outlier(tr, rows, hosts: list[tf.HostFigures], rate, s: Suggestion, cfg: SuggestConfig):
    if not hosts:
        s.messages.append(msg("SG007", service=s.target.service))
        return None
    for hf in hosts:
        # failing: most of its answers are errors, or it had an outage (errors without a break for outage_s)
        hf.failing = hf.errors5xx > 0 and (hf.error_rate >= cfg.failing_error_rate or hf.outages > 0)
    healthy = [hf for hf in hosts if not hf.failing]
    failing = [hf for hf in hosts if hf.failing]
    for hf in failing:
        s.messages.append(msg("SG004", host=hf.host, errors=hf.errors5xx, requests=hf.requests,
                              rate=hf.error_rate, burst=hf.longest_5xx, seconds=hf.longest_5xx_seconds))
    worst5 = max(healthy, key=lambda x: x.brief_5xx, default=None)
    worstg = max(healthy, key=lambda x: x.brief_gateway, default=None)
    l5 = worst5.brief_5xx if worst5 else 0
    lg = worstg.brief_gateway if worstg else 0
    t5 = max(cfg.min_consecutive, l5 + 1)
    tg = max(cfg.min_consecutive, lg + 1)
    ev5 = [Evidence("longest 5xx burst of a healthy host", l5, "errors",
                    scope=f"host {worst5.host}" if worst5 and l5 else f"{len(healthy)} healthy hosts",
                    at=tr.iso(worst5.brief_5xx_at) if worst5 and l5 else None,
                    note=f"runs lasting under {cfg.outage_s:g} s")]
    ev5 += [Evidence("longest 5xx burst of a failing host", hf.longest_5xx, "errors", scope=f"host {hf.host}",
                     at=tr.iso(hf.longest_5xx_at) if hf.longest_5xx_at is not None else None) for hf in failing]
    s.settings.append(Setting("outlierDetection.consecutive5xxErrors", t5,
                              f"max(floor {cfg.min_consecutive}, longest healthy burst {l5} + 1)", ev5))
    if worst5 and l5 >= cfg.min_consecutive:
        s.messages.append(msg("SG005", host=worst5.host, burst=l5, at=tr.iso(worst5.brief_5xx_at),
                              which="5xx", value=t5))
    gateway = None
    if tg < t5:
        gateway = tg
        s.settings.append(Setting(
            "outlierDetection.consecutiveGatewayErrors", tg,
            f"max(floor {cfg.min_consecutive}, longest healthy gateway-error burst {lg} + 1), below "
            f"consecutive5xxErrors {t5}: dead hosts go sooner than hosts answering 500s",
            [Evidence("longest 502/503/504/connect-failure burst of a healthy host", lg, "errors",
                      scope=f"host {worstg.host}" if worstg and lg else None)]))
    threshold = min(t5, tg)
    # interval: a persistently failing host is ejected within one interval
    reach = []
    for hf in failing:
        if hf.longest_5xx >= threshold and threshold in hf.time_to:
            reach.append((hf.time_to[threshold], hf))
        elif hf.longest_5xx < threshold:
            s.messages.append(msg("SG006", host=hf.host, burst=hf.longest_5xx, value=threshold))
    if reach:
        secs, hf = max(reach, key=lambda x: x[0])
        interval = tf.nice_seconds(secs, lo=1, hi=30)
        iv_ev = [Evidence(f"time a failing host took to reach {threshold} consecutive errors", round(secs, 3), "s",
                          scope=f"host {hf.host}")]
        rule = f"≥ {secs:.3f} s, rounded up, in [1s, 30s]"
    else:
        slow = min(hosts, key=lambda x: x.rps)
        secs = threshold / max(slow.rps, 1e-9)
        interval = tf.nice_seconds(secs, lo=1, hi=30)
        iv_ev = [Evidence("lowest per-host request rate", round(slow.rps, 3), "rps", scope=f"host {slow.host}")]
        rule = (f"≥ {threshold} errors / {slow.rps:.2f} rps = {secs:.2f} s (a persistently failing host at the "
                "lowest per-host rate reaches the threshold), rounded up, in [1s, 30s]")
    s.settings.append(Setting("outlierDetection.interval", tf.go_duration(interval), rule, iv_ev))
    if failing:
        import numpy as np

        med = float(np.median([hf.longest_5xx_seconds for hf in failing]))
        base = tf.nice_seconds(med, lo=10, hi=300)
        s.settings.append(Setting("outlierDetection.baseEjectionTime", tf.go_duration(base),
                                  f"median failing burst length {med:.1f} s, rounded up, in [10s, 5m]",
                                  [Evidence("failing burst length", round(hf.longest_5xx_seconds, 2), "s",
                                            scope=f"host {hf.host}") for hf in failing]))
    else:
        base = 30.0
        s.settings.append(Setting("outlierDetection.baseEjectionTime", "30s",
                                  "Istio's default: no host failed persistently in the data", []))
    n = len(hosts)
    cap = max(hf.peak_rps for hf in hosts)
    # hosts are assumed to take `headroom` × the highest per-host rate seen (the same assumption as the pool limits)
    keep = min(n, max(1, math.ceil(rate.peak / max(cfg.headroom * cap, 1))))
    allowed = max(1, n - keep)
    max_ej = max(1, math.floor(100 * allowed / n))
    if len(failing) > allowed:
        s.messages.append(msg("SG016", service=s.target.service, hosts=n, kept=n - allowed))
    s.settings.append(Setting(
        "outlierDetection.maxEjectionPercent", max_ej,
        f"{n} hosts; peak {rate.peak} rps needs {keep} host(s) at headroom {cfg.headroom:g} × the highest "
        f"per-host rate {cap} rps: {allowed} may be ejected",
        [Evidence("hosts", n, ""), Evidence("peak service rate", rate.peak, "rps", at=tr.iso(rate.peak_at)),
         Evidence("highest per-host rate", cap, "rps")]))
    s.figures["host_figures"] = [
        {"host": hf.host, "requests": hf.requests, "errors_5xx": hf.errors5xx, "gateway_errors": hf.gateway_errors,
         "longest_5xx_burst": hf.longest_5xx, "longest_5xx_seconds": hf.longest_5xx_seconds,
         "longest_brief_5xx_burst": hf.brief_5xx, "longest_brief_gateway_burst": hf.brief_gateway,
         "outages": hf.outages,
         "peak_rps": hf.peak_rps, "failing": hf.failing}
        for hf in sorted(hosts, key=lambda x: (-x.errors5xx, x.host))[:50]
    ]
    return OutlierDetection(consecutive_5xx=t5, consecutive_gateway=gateway, interval_s=interval,
                            base_ejection_s=base, max_ejection_percent=max_ej)
