"""`rate-limit`: an Envoy local rate limit token bucket per service (and per route) from per-second counts.

The bucket lives in each serving proxy (an EnvoyFilter on SIDECAR_INBOUND, selected by the
workload's `app` label), so it is sized on the busiest serving instance:

  tokens_per_fill / fill_interval   ceil(headroom × p99 of the per-second request counts) per 1s
  max_tokens                        max(tokens_per_fill, ceil(headroom × the bucket depth the recorded
                                    arrivals need at the observed p99 rate)): the sub-second bursts
                                    that were served pass, with the same headroom

The rows are read from the serving side (`inbound`) when the service has such rows, so callers
outside the mesh count too. Which callers dominate the load is reported with each suggestion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzers.suggest import traffic as tf
from analyzers.suggest.config import SuggestConfig
from analyzers.suggest.messages import msg
from analyzers.suggest.model import Evidence, Setting, Suggestion, Target, TokenBucket
from analyzers.suggest.replay import bucket_depth_needed

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

PREFER = "server"
_LOOPBACK = ("127.", "[::1]", "::1", "localhost")


def instance_keys(tr: tf.Traffic, rows: np.ndarray) -> np.ndarray:
    """Serving instance per row: the upstream host (pod ip:port); -1 when unknown or loopback."""
    import numpy as np

    codes = tr.host.codes[rows].copy()
    loop = np.array([lab.startswith(_LOOPBACK) for lab in tr.host.labels], dtype=bool)
    if len(loop):
        known = codes >= 0
        codes[known & loop[np.maximum(codes, 0)]] = -1
    return codes


def suggest(tr: tf.Traffic, cfg: SuggestConfig) -> list[Suggestion]:
    out: list[Suggestion] = []
    for _, rows, service, ns in tr.service_groups(cfg):
        if tr.first_value("destination_kind", rows):
            continue  # outside the mesh: no sidecar of ours serves it, so no local rate limit to set
        app = tr.first_value("destination_app", rows) or tr.first_value("destination_workload", rows)
        target = Target(service=service, namespace=ns, app=app)
        svc_s = _one(tr, rows, target, cfg, share_of=None)
        out.append(svc_s)
        if cfg.per_route:
            routes = tr.route.codes[rows]
            names = {int(c) for c in routes if c >= 0}
            if len(names) > 1:
                for rc in sorted(names):
                    rrows = rows[routes == rc]
                    rt = Target(service=service, namespace=ns, app=app, route=tr.route.labels[rc])
                    route_s = _one(tr, rrows, rt, cfg, share_of=len(rows))
                    out.append(route_s)
                    # a route's own bucket replaces the listener-wide one on that route
                    svc_s._route_buckets[rt.route] = route_s.limits  # type: ignore[attr-defined]
    return out


def _one(tr: tf.Traffic, rows: np.ndarray, target: Target, cfg: SuggestConfig, share_of: int | None) -> Suggestion:
    import numpy as np

    h = cfg.headroom
    s = Suggestion(kind="rate-limit", target=target)
    rate = tf.rate_figures(tr.start[rows])
    inst = instance_keys(tr, rows) if cfg.per_instance else np.full(len(rows), -1)
    best = None
    n_inst = 0
    for code in np.unique(inst):
        part = rows[inst == code]
        rf = tf.rate_figures(tr.start[part])
        n_inst += 1
        if best is None or (rf.p99, rf.peak) > (best[1].p99, best[1].peak):
            best = (code, rf, part)
    assert best is not None
    code, rf, part = best
    scope = (f"instance {tr.host.labels[int(code)]}, busiest of {n_inst}" if code >= 0
             else "whole service (serving instances not recorded)")
    times = tr.start[part]
    depth = bucket_depth_needed(times, rf.p99) if rf.p99 > 0 else float(rf.peak)
    per_fill = tf.ceil_int(h * rf.p99)
    max_tokens = max(per_fill, tf.ceil_int(h * depth))
    counts_ev = [Evidence("mean per-second count", round(rf.mean, 2), "rps", scope=scope),
                 Evidence("p99 per-second count", rf.p99, "rps", scope=scope),
                 Evidence("peak per-second count", rf.peak, "rps", scope=scope, at=tr.iso(rf.peak_at))]
    s.settings.append(Setting("token_bucket.tokens_per_fill", per_fill,
                              f"ceil(headroom {h:g} × p99 per-second count {rf.p99:g}) per fill_interval 1s",
                              counts_ev))
    s.settings.append(Setting("token_bucket.fill_interval", "1s", "one second: the rate reads as requests/s", []))
    s.settings.append(Setting(
        "token_bucket.max_tokens", max_tokens,
        f"max(tokens_per_fill {per_fill}, ceil(headroom {h:g} × depth {depth:.1f} the recorded arrivals need "
        f"at {rf.p99:g} rps))",
        [Evidence("bucket depth needed at the p99 rate", round(depth, 1), "tokens", scope=scope),
         counts_ev[2]]))
    s.limits = TokenBucket(max_tokens=max_tokens, tokens_per_fill=per_fill, fill_interval_s=1.0)
    s.figures = {"requests": len(rows), "seconds": rate.seconds, "rps_mean": rate.mean, "rps_p99": rate.p99,
                 "rps_peak": rate.peak, "rps_peak_at": tr.iso(rate.peak_at), "instances": n_inst,
                 "busiest_instance": tr.host.labels[int(code)] if code >= 0 else None,
                 "instance_rps_p99": rf.p99, "instance_rps_peak": rf.peak, "bucket_depth_needed": depth}
    # which callers dominate the load
    src = tr.source.codes[rows]
    vals, counts = np.unique(src, return_counts=True)
    order = np.argsort(-counts)
    callers = []
    for j in order[:5]:
        name = tr.source.labels[int(vals[j])] if vals[j] >= 0 else "(unknown caller)"
        crow = rows[src == vals[j]]
        callers.append({"caller": name, "requests": int(counts[j]), "share": float(counts[j] / len(rows)),
                        "rps_peak": tf.rate_figures(tr.start[crow]).peak})
    s.figures["callers"] = callers
    if len(vals) > 1 and callers and callers[0]["share"] >= 0.5:
        s.messages.append(msg("SG009", caller=callers[0]["caller"], share=callers[0]["share"],
                              service=target.service))
    if share_of:
        s.messages.append(msg("SG015", route=target.route, share=len(rows) / share_of, service=target.service))
    if len(rows) < cfg.min_requests:
        s.messages.append(msg("SG001", requests=len(rows), seconds=rate.seconds))
    s.figures["instance_key"] = "upstream_host" if code >= 0 else None
    s.figures["protocol"] = "HTTP/2" if tr.h2[rows].mean() > 0.5 else "HTTP/1.1"
    s._rows = rows  # type: ignore[attr-defined]  # for the replay; not part of the result
    s._route_buckets = {}  # type: ignore[attr-defined]
    return s
