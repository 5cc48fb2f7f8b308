"""Suggestions → template contexts (values as data) for templates/istio|linkerd/suggest-*.j2.

Pure: returns `Resource(template, context, comment)` items; meshctl renders them with the sandboxed
template engine and validates the result. Comments carry the evidence and the replay, so a reviewer
of the YAML sees why each value is what it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from analyzers.suggest.config import service_short
from analyzers.suggest.messages import msg
from analyzers.suggest.model import Message, ReplayResult, Suggestion, SuggestResult, TrafficPolicy
from analyzers.suggest.traffic import go_duration

LABELS = {"app.kubernetes.io/managed-by": "meshctl", "meshctl.io/suggested": "true"}
_MS_LADDER = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60)


@dataclass
class Resource:
    template: str
    context: dict[str, Any]
    comment: str = ""


@dataclass
class Rendering:
    resources: list[Resource] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


def resources(result: SuggestResult, mesh: str = "istio", *, enforce: bool = True) -> Rendering:
    fn = {("istio", "circuit-breaker"): _istio_dr, ("istio", "rate-limit"): _istio_rl,
          ("istio", "sidecar"): _istio_sidecar, ("linkerd", "circuit-breaker"): _linkerd_cb,
          ("linkerd", "rate-limit"): _linkerd_rl, ("linkerd", "sidecar"): _linkerd_sidecar}[(mesh, result.kind)]
    out = Rendering()
    fn(result, out, enforce)
    return out


# ---- comments -------------------------------------------------------------------------------------
def _comment(items: list[Suggestion], head: str, prefix: str = "") -> str:
    lines = [head]
    for s in items:
        if len(items) > 1:
            lines.append(f"[{s.target.label()}]")
        for st in s.settings:
            if not st.field.startswith(prefix):
                continue
            value = ", ".join(st.value) if isinstance(st.value, list) else st.value
            lines.append(f"{st.field} = {value}: {st.rule}")
        for m in s.messages:
            lines.append(f"{m.code} {m.level}: {m.text}")
        for label, r in s.replay.items():
            lines.append(f"replay ({label}): {replay_line(r)}")
    return "\n".join(lines)


def replay_line(r: ReplayResult) -> str:
    parts = [f"{r.requests} requests"]
    for name, text in (("rejected_overflow", "503 UO"), ("queued", "queued"), ("rate_limited", "429 RL"),
                       ("sent_to_ejected", "to an ejected host"), ("errors_avoided", "errors avoided"),
                       ("no_healthy_upstream", "503 UH"), ("outside_scope", "outside the egress scope")):
        v = getattr(r, name)
        if v:
            parts.append(f"{v} {text}")
    if len(parts) == 1:
        parts.append("nothing rejected")
    return ", ".join(parts)


# ---- Istio --------------------------------------------------------------------------------------
def _fqdn(service: str, namespace: str | None) -> str:
    if "." not in service and namespace:
        return f"{service}.{namespace}.svc.cluster.local"
    return service


def policy_values(p: TrafficPolicy | None) -> dict[str, Any] | None:
    if p is None or (p.connection_pool is None and p.outlier_detection is None):
        return None
    pool = None
    if p.connection_pool is not None:
        c = p.connection_pool
        pool = {"maxConnections": c.max_connections, "http1MaxPendingRequests": c.http1_max_pending_requests,
                "http2MaxRequests": c.http2_max_requests, "maxRequestsPerConnection": c.max_requests_per_connection,
                "idleTimeout": go_duration(c.idle_timeout_s) if c.idle_timeout_s else None}
    outlier = None
    if p.outlier_detection is not None:
        o = p.outlier_detection
        outlier = {"consecutive5xxErrors": o.consecutive_5xx, "consecutiveGatewayErrors": o.consecutive_gateway,
                   "interval": go_duration(o.interval_s), "baseEjectionTime": go_duration(o.base_ejection_s),
                   "maxEjectionPercent": o.max_ejection_percent}
    return {"pool": pool, "outlier": outlier}


def _by_service(result: SuggestResult) -> dict[str, list[Suggestion]]:
    groups: dict[str, list[Suggestion]] = {}
    for s in result.suggestions:
        groups.setdefault(s.target.service or "?", []).append(s)
    return groups


def _istio_dr(result: SuggestResult, out: Rendering, enforce: bool) -> None:
    for service, items in _by_service(result).items():
        ns = items[0].target.namespace or "default"
        top = next((s for s in items if not s.target.subset), None)
        subsets = []
        for s in items:
            if not s.target.subset:
                continue
            if not s.target.version:
                out.messages.append(Message("SG018", "warning",
                                            f"{service} subset {s.target.subset}: no version label recorded, "
                                            "the subset is left out of the DestinationRule"))
                continue
            subsets.append({"name": s.target.subset, "labels": {"version": s.target.version},
                            "policy": policy_values(s.limits)})
        if top is None and not subsets:
            continue
        out.resources.append(Resource(
            "istio/suggest-destinationrule.yaml.j2",
            {"name": service_short(service), "namespace": ns, "labels": LABELS, "host": _fqdn(service, ns),
             "policy": policy_values(top.limits) if top else None, "subsets": subsets},
            _comment(items, f"meshctl suggest circuit-breaker: {service} (one rule per host: it replaces any other "
                            "DestinationRule for this host)")))


def _stat_name(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "route"


def _bucket(b) -> dict[str, Any]:
    return {"max_tokens": b.max_tokens, "tokens_per_fill": b.tokens_per_fill,
            "fill_interval": go_duration(b.fill_interval_s)}


def _istio_rl(result: SuggestResult, out: Rendering, enforce: bool) -> None:
    for service, items in _by_service(result).items():
        top = next(s for s in items if s.target.route is None)
        app = top.target.app or service_short(service)
        routes = [{"name": s.target.route, "stat_prefix": "http_local_rate_limiter_" + _stat_name(s.target.route or ""),
                   "bucket": _bucket(s.limits)} for s in items if s.target.route is not None]
        out.resources.append(Resource(
            "istio/suggest-envoyfilter-ratelimit.yaml.j2",
            {"name": f"{service_short(service)}-local-ratelimit", "namespace": top.target.namespace or "default",
             "labels": LABELS, "selector": {"app": app}, "stat_prefix": "http_local_rate_limiter",
             "enforced": 100 if enforce else 0, "bucket": _bucket(top.limits), "routes": routes},
            _comment(items, f"meshctl suggest rate-limit: {service}, each pod labelled app={app} "
                            + ("enforces" if enforce else "counts (shadow mode: filter_enforced 0%)")
                            + " its own bucket")))


def _istio_sidecar(result: SuggestResult, out: Rendering, enforce: bool) -> None:
    for s in result.suggestions:
        t = s.target
        out.resources.append(Resource(
            "istio/suggest-sidecar.yaml.j2",
            {"name": t.workload or "default", "namespace": t.namespace or "default", "labels": LABELS,
             "selector": {"app": t.app or t.workload} if t.workload else None, "hosts": list(s.limits)},
            _comment([s], f"meshctl suggest sidecar: {t.label()}")))


# ---- Linkerd ------------------------------------------------------------------------------------
def _timeout(seconds: float) -> str:
    for step in _MS_LADDER:
        if step >= seconds - 1e-9:
            return go_duration(step)
    return go_duration(float(int(seconds) + 1))


def _linkerd_cb(result: SuggestResult, out: Rendering, enforce: bool) -> None:
    headroom = float(result.config.get("headroom", 2.0))
    out.messages.append(msg("SG013", what="connectionPool limits (max connections, pending requests, requests "
                                          "per connection): the Linkerd proxy queues in its balancer"))
    for service, items in _by_service(result).items():
        s = next((x for x in items if not x.target.subset), items[0])
        ns = s.target.namespace or "default"
        od = s.limits.outlier_detection if s.limits else None
        if od is not None:
            out.resources.append(Resource(
                "linkerd/suggest-failure-accrual.yaml.j2",
                {"name": service_short(service), "namespace": ns, "max_failures": str(od.consecutive_5xx),
                 "min_penalty": go_duration(od.base_ejection_s), "max_penalty": go_duration(max(300.0, od.base_ejection_s)),
                 "jitter_ratio": "0.5"},
                _comment([s], f"meshctl suggest circuit-breaker (Linkerd): {service}. A merge patch: kubectl patch "
                              f"service {service_short(service)} -n {ns} --type merge --patch-file FILE.\n"
                              "max-failures = consecutive5xxErrors, min-penalty = baseEjectionTime, max-penalty = "
                              "Envoy's max ejection time (5m), jitter = Linkerd's default", prefix="outlierDetection.")))
        lat = s.figures.get("latency")
        if lat:
            timeout = _timeout(headroom * lat["p99_ms"] / 1000)
            out.resources.append(Resource(
                "linkerd/suggest-serviceprofile.yaml.j2",
                {"name": _fqdn(service, ns) if "." in _fqdn(service, ns) else service, "namespace": ns,
                 "labels": LABELS, "route_name": "all", "path_regex": ".*", "timeout": timeout,
                 "retry_ratio": 0.2, "min_retries_per_second": 10, "ttl": "10s"},
                f"meshctl suggest circuit-breaker (Linkerd ServiceProfile): {service}\n"
                f"timeout {timeout} = headroom {headroom:g} × p99 latency {lat['p99_ms']:.0f} ms, rounded up\n"
                "retryBudget: Linkerd's defaults (20% extra load, 10 retries/s floor, 10s window); no route is "
                "marked isRetryable: mark only idempotent routes"))


def _linkerd_rl(result: SuggestResult, out: Rendering, enforce: bool) -> None:
    routes = [s for s in result.suggestions if s.target.route is not None]
    if routes:
        out.messages.append(msg("SG013", what="per-route local rate limits (HTTPLocalRateLimitPolicy targets a Server)"))
    out.messages.append(msg("SG013", what="a burst size (max_tokens): HTTPLocalRateLimitPolicy takes a rate only"))
    for s in result.suggestions:
        if s.target.route is not None:
            continue
        service = s.target.service or "?"
        inst = s.figures.get("busiest_instance") or ""
        port: Any = int(inst.rsplit(":", 1)[1]) if re.search(r":\d+$", inst) else "http"
        out.resources.append(Resource(
            "linkerd/suggest-ratelimit.yaml.j2",
            {"name": f"{service_short(service)}-http", "namespace": s.target.namespace or "default", "labels": LABELS,
             "selector": {"app": s.target.app or service_short(service)}, "port": port,
             "proxy_protocol": "HTTP/2" if s.figures.get("protocol") == "HTTP/2" else "HTTP/1",
             "total_rps": s.limits.tokens_per_fill, "identity_rps": None, "overrides": []},
            _comment([s], f"meshctl suggest rate-limit (Linkerd): {service}; total.requestsPerSecond = the bucket's "
                          "refill rate, enforced by each proxy")))


def _linkerd_sidecar(result: SuggestResult, out: Rendering, enforce: bool) -> None:
    out.messages.append(msg("SG013", what="the Istio Sidecar resource: the Linkerd proxy resolves destinations on "
                                          "demand, so there is no egress scope to cut"))
