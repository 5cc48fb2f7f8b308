"""Existing configuration (`--current FILE`) → the limits the replay understands.

Pure: takes parsed YAML documents (dicts), returns `CurrentConfig`. A document this module cannot
use raises `ConfigProblem` with the JSON path of the offending field; kinds it does not model are
skipped. Istio semantics followed:

- DestinationRule: `host` short names are relative to the rule's namespace; `*.` wildcards match
  suffixes; a subset's trafficPolicy replaces the top-level connectionPool / outlierDetection as a
  whole; unset thresholds are Istio's default (2^32-1); `consecutiveErrors` (deprecated) is read as
  consecutiveGatewayErrors, as Istio does.
- EnvoyFilter: every `envoy.filters.http.local_ratelimit` HTTP_FILTER patch (typed_config given
  directly or as a udpa/xds TypedStruct) sets the listener-wide bucket of the selected workloads;
  HTTP_ROUTE patches with `typed_per_filter_config` set a route's bucket (route `name`, or every
  route). A `listener:` placed directly under a configPatch (the upstream docs' mistake) is not
  part of the match: it is recorded as a problem, as Istio would prune it.
- Sidecar: `egress[].hosts` (`ns/host`, `*/host`, `./host`, `~/...`, `*.suffix` wildcards).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzers.suggest.model import ConnectionPool, OutlierDetection, TokenBucket, TrafficPolicy
from analyzers.suggest.traffic import parse_duration

LOCAL_RATELIMIT = "envoy.filters.http.local_ratelimit"
LOCAL_RATELIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"


class ConfigProblem(ValueError):
    def __init__(self, message: str, *, field: str, doc: int = 0) -> None:
        super().__init__(message)
        self.field = field
        self.doc = doc


@dataclass
class DestinationRuleLimits:
    name: str
    namespace: str | None
    host: str
    policy: TrafficPolicy
    subsets: dict[str, tuple[dict[str, str], TrafficPolicy]] = field(default_factory=dict)

    def matches(self, service: str) -> bool:
        return host_matches(self.host, self.namespace, service)

    def policy_for(self, subset: str | None, version: str | None) -> TrafficPolicy:
        for name, (labels, pol) in self.subsets.items():
            if (subset and name == subset) or (not subset and version and labels.get("version") == version):
                return TrafficPolicy(pol.connection_pool or self.policy.connection_pool,
                                     pol.outlier_detection or self.policy.outlier_detection)
        return self.policy


@dataclass
class RateLimitLimits:
    name: str
    namespace: str | None
    selector: dict[str, str]
    bucket: TokenBucket | None = None  # listener-wide (HTTP_FILTER)
    routes: dict[str, TokenBucket] = field(default_factory=dict)  # route name ("*" = every route)

    def matches(self, app: str | None, namespace: str | None) -> bool:
        if self.namespace not in (None, "istio-system") and namespace and self.namespace != namespace:
            return False
        want = self.selector.get("app")
        return not self.selector or (want is not None and want == app)

    def bucket_for(self, route: str | None) -> TokenBucket | None:
        if route is not None and route in self.routes:
            return self.routes[route]
        return self.routes.get("*", self.bucket)


@dataclass
class SidecarScope:
    name: str
    namespace: str | None
    selector: dict[str, str]
    hosts: list[str]

    def matches(self, app: str | None, namespace: str | None) -> bool:
        if self.namespace and namespace and self.namespace != namespace:
            return False
        want = self.selector.get("app")
        return not self.selector or (want is not None and want == app)

    def allows(self, service: str, service_ns: str | None) -> bool:
        return any(egress_allows(h, self.namespace, service, service_ns) for h in self.hosts)


@dataclass
class CurrentConfig:
    source: str
    destination_rules: list[DestinationRuleLimits] = field(default_factory=list)
    rate_limits: list[RateLimitLimits] = field(default_factory=list)
    sidecars: list[SidecarScope] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def destination_rule(self, service: str) -> DestinationRuleLimits | None:
        # the most specific host wins (exact before wildcard), as in Istio
        found = [d for d in self.destination_rules if d.matches(service)]
        return min(found, key=lambda d: d.host.startswith("*")) if found else None

    def rate_limit(self, app: str | None, namespace: str | None) -> RateLimitLimits | None:
        found = [r for r in self.rate_limits if r.matches(app, namespace)]
        return max(found, key=lambda r: bool(r.selector)) if found else None

    def sidecar(self, app: str | None, namespace: str | None) -> SidecarScope | None:
        found = [s for s in self.sidecars if s.matches(app, namespace)]
        return max(found, key=lambda s: bool(s.selector)) if found else None


def host_matches(host: str, namespace: str | None, service: str) -> bool:
    if host.startswith("*"):
        return service.endswith(host[1:]) or host == "*"
    if host == service:
        return True
    if "." not in host and namespace:
        fq = f"{host}.{namespace}.svc.cluster.local"
        return service in (fq, f"{host}.{namespace}") or service == host
    short = service.split(".")[0]
    return "." not in service and host.split(".")[0] == short


def egress_allows(entry: str, sidecar_ns: str | None, service: str, service_ns: str | None) -> bool:
    ns, _, host = entry.partition("/")
    if not host:
        ns, host = "*", entry
    if ns == "~":
        return False
    if ns == ".":
        ns = sidecar_ns or "*"
    if ns != "*" and service_ns and ns != service_ns:
        return False
    if host == "*":
        return True
    if host.startswith("*."):
        return service.endswith(host[1:])
    return service == host or (service.split(".")[0] == host.split(".")[0] and (
        "." not in service or "." not in host))


# ---- parsing ------------------------------------------------------------------------------------
def parse_documents(docs: list[Any], source: str) -> CurrentConfig:
    cfg = CurrentConfig(source=source)
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ConfigProblem("not a Kubernetes object (a mapping with apiVersion and kind)", field="", doc=i)
        kind = doc.get("kind")
        try:
            if kind == "DestinationRule":
                cfg.destination_rules.append(destination_rule(doc))
            elif kind == "EnvoyFilter":
                rl, problems = envoy_filter(doc)
                cfg.problems += problems
                if rl is not None:
                    cfg.rate_limits.append(rl)
            elif kind == "Sidecar":
                cfg.sidecars.append(sidecar(doc))
            elif kind == "List" and isinstance(doc.get("items"), list):
                try:
                    sub = parse_documents(doc["items"], source)
                except ConfigProblem as p:  # the field as a path in this document: items[j].spec...
                    p.field = f"items[{p.doc}]" + (f".{p.field}" if p.field else "")
                    raise
                cfg.destination_rules += sub.destination_rules
                cfg.rate_limits += sub.rate_limits
                cfg.sidecars += sub.sidecars
                cfg.problems += sub.problems
        except ConfigProblem as p:
            p.doc = i
            raise
    return cfg


def _map(v: Any, path: str, what: str = "a mapping") -> dict[str, Any]:
    """`v` when it is a mapping; an empty value (null, absent, "") reads as an empty mapping; anything
    else is a problem at `path` (it is not what Istio's schema allows there)."""
    if not v:
        return {}
    if not isinstance(v, dict):
        raise ConfigProblem(f"expected {what}, got {type(v).__name__}", field=path)
    return v


def _labels(v: Any, path: str) -> dict[str, str]:
    return {str(k): str(x) for k, x in _map(v, path, "a mapping of labels").items()}


def _meta(doc: dict[str, Any]) -> tuple[str, str | None]:
    meta = _map(doc.get("metadata"), "metadata")
    return str(meta.get("name", "?")), meta.get("namespace")


def _int(v: Any, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ConfigProblem(f"expected an integer, got {v!r}", field=path)
    try:
        return int(v)
    except ValueError:
        raise ConfigProblem(f"expected an integer, got {v!r}", field=path) from None


def _dur(v: Any, path: str) -> float:
    try:
        return parse_duration(v)
    except ValueError as e:
        raise ConfigProblem(str(e), field=path) from None


def traffic_policy(tp: Any, path: str) -> TrafficPolicy:
    if tp is None:
        return TrafficPolicy()
    if not isinstance(tp, dict):
        raise ConfigProblem("expected a mapping", field=path)
    pool = None
    cp = _map(tp.get("connectionPool"), f"{path}.connectionPool")
    if cp:
        p = f"{path}.connectionPool"
        tcp, http = _map(cp.get("tcp"), p + ".tcp"), _map(cp.get("http"), p + ".http")
        pool = ConnectionPool(
            max_connections=_int(tcp["maxConnections"], p + ".tcp.maxConnections") if "maxConnections" in tcp else None,
            http1_max_pending_requests=_int(http["http1MaxPendingRequests"], p + ".http.http1MaxPendingRequests")
            if "http1MaxPendingRequests" in http else None,
            http2_max_requests=_int(http["http2MaxRequests"], p + ".http.http2MaxRequests")
            if "http2MaxRequests" in http else None,
            max_requests_per_connection=_int(http["maxRequestsPerConnection"], p + ".http.maxRequestsPerConnection")
            if "maxRequestsPerConnection" in http else None,
            idle_timeout_s=_dur(http["idleTimeout"], p + ".http.idleTimeout") if "idleTimeout" in http else None,
        )
    od = None
    o = _map(tp.get("outlierDetection"), f"{path}.outlierDetection")
    if o:
        p = f"{path}.outlierDetection"
        gw = o.get("consecutiveGatewayErrors", o.get("consecutiveErrors"))
        od = OutlierDetection(
            consecutive_5xx=_int(o["consecutive5xxErrors"], p + ".consecutive5xxErrors")
            if o.get("consecutive5xxErrors") is not None else None,
            consecutive_gateway=_int(gw, p + ".consecutiveGatewayErrors") if gw is not None else None,
            interval_s=_dur(o.get("interval", "10s"), p + ".interval"),
            base_ejection_s=_dur(o.get("baseEjectionTime", "30s"), p + ".baseEjectionTime"),
            max_ejection_percent=_int(o.get("maxEjectionPercent", 10), p + ".maxEjectionPercent"),
            min_health_percent=_int(o.get("minHealthPercent", 0), p + ".minHealthPercent"),
        )
        if od.consecutive_5xx is None and od.consecutive_gateway is None:
            od.consecutive_5xx = 5  # Istio enables consecutive 5xx ejection at Envoy's default
    return TrafficPolicy(connection_pool=pool, outlier_detection=od)


def destination_rule(doc: dict[str, Any]) -> DestinationRuleLimits:
    name, ns = _meta(doc)
    spec = doc.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("host"), str):
        raise ConfigProblem("a DestinationRule needs spec.host", field="spec.host")
    dr = DestinationRuleLimits(name=name, namespace=ns, host=spec["host"],
                               policy=traffic_policy(spec.get("trafficPolicy"), "spec.trafficPolicy"))
    subsets = spec.get("subsets") or []
    if not isinstance(subsets, list):
        raise ConfigProblem("expected a list of subsets", field="spec.subsets")
    for j, sub in enumerate(subsets):
        if not isinstance(sub, dict) or "name" not in sub:
            raise ConfigProblem("a subset needs a name", field=f"spec.subsets[{j}].name")
        dr.subsets[str(sub["name"])] = (
            _labels(sub.get("labels"), f"spec.subsets[{j}].labels"),
            traffic_policy(sub.get("trafficPolicy"), f"spec.subsets[{j}].trafficPolicy"))
    return dr


def _typed_value(tc: Any, path: str) -> dict[str, Any] | None:
    """The LocalRateLimit message of a typed_config (direct, or inside a TypedStruct)."""
    if not isinstance(tc, dict):
        return None
    t = str(tc.get("@type", ""))
    if t.endswith("TypedStruct"):
        if str(tc.get("type_url", "")).endswith("local_ratelimit.v3.LocalRateLimit"):
            return _map(tc.get("value"), path + ".value")
        return None
    if t.endswith("local_ratelimit.v3.LocalRateLimit"):
        return tc
    return None


def token_bucket(v: Any, path: str) -> TokenBucket:
    if not isinstance(v, dict):
        raise ConfigProblem("expected a token_bucket mapping", field=path)
    if "max_tokens" not in v:
        raise ConfigProblem("token_bucket needs max_tokens", field=path + ".max_tokens")
    if "fill_interval" not in v:
        raise ConfigProblem("token_bucket needs fill_interval", field=path + ".fill_interval")
    tpf = v.get("tokens_per_fill", 1)
    if isinstance(tpf, dict):  # UInt32Value written as {value: N}
        tpf = tpf.get("value", 1)
    fill = _dur(v["fill_interval"], path + ".fill_interval")
    if fill <= 0:
        raise ConfigProblem("fill_interval must be > 0", field=path + ".fill_interval")
    return TokenBucket(max_tokens=_int(v["max_tokens"], path + ".max_tokens"),
                       tokens_per_fill=_int(tpf, path + ".tokens_per_fill"), fill_interval_s=fill)


def envoy_filter(doc: dict[str, Any]) -> tuple[RateLimitLimits | None, list[str]]:
    name, ns = _meta(doc)
    spec = _map(doc.get("spec"), "spec")
    rl = RateLimitLimits(name=name, namespace=ns, selector=_selector(spec))
    problems: list[str] = []
    found = False
    patches = spec.get("configPatches") or []
    if not isinstance(patches, list):
        raise ConfigProblem("expected a list of patches", field="spec.configPatches")
    for j, patch in enumerate(patches):
        path = f"spec.configPatches[{j}]"
        patch = _map(patch, path)
        value = _map(_map(patch.get("patch"), f"{path}.patch").get("value"), f"{path}.patch.value")
        if "listener" in patch:
            problems.append(f"EnvoyFilter {name}: {path}.listener sits beside match:, not under it; Istio prunes "
                            "it and the patch applies to every listener")
        if patch.get("applyTo") == "HTTP_FILTER" and value.get("name") == LOCAL_RATELIMIT:
            v = _typed_value(value.get("typed_config"), f"{path}.patch.value.typed_config")
            if v is not None:
                found = True
                if "token_bucket" in v:
                    rl.bucket = token_bucket(v["token_bucket"], f"{path}.patch.value.typed_config.token_bucket")
        elif patch.get("applyTo") == "HTTP_ROUTE":
            pf = _map(value.get("typed_per_filter_config"), f"{path}.patch.value.typed_per_filter_config").get(
                LOCAL_RATELIMIT)
            v = _typed_value(pf, f"{path}.patch.value.typed_per_filter_config")
            if v is not None and "token_bucket" in v:
                found = True
                route, where = patch.get("match"), f"{path}.match"
                for part in ("routeConfiguration", "vhost", "route"):
                    route, where = _map(route, where).get(part), f"{where}.{part}"
                key = _map(route, where).get("name") or "*"
                rl.routes[str(key)] = token_bucket(
                    v["token_bucket"], f"{path}.patch.value.typed_per_filter_config.{LOCAL_RATELIMIT}.token_bucket")
    return (rl if found else None), problems


def sidecar(doc: dict[str, Any]) -> SidecarScope:
    name, ns = _meta(doc)
    spec = _map(doc.get("spec"), "spec")
    hosts: list[str] = []
    egress = spec.get("egress") or []
    if not isinstance(egress, list):
        raise ConfigProblem("expected a list of egress entries", field="spec.egress")
    for j, eg in enumerate(egress):
        hs = eg.get("hosts") if isinstance(eg, dict) else None
        if not isinstance(hs, list):
            raise ConfigProblem("egress entries need a hosts list", field=f"spec.egress[{j}].hosts")
        hosts += [str(h) for h in hs]
    if not egress:
        hosts = ["*/*"]  # no egress section: the proxy sees everything
    return SidecarScope(name=name, namespace=ns, selector=_selector(spec), hosts=hosts)


def _selector(spec: dict[str, Any]) -> dict[str, str]:
    """`spec.workloadSelector.labels` (EnvoyFilter, Sidecar); empty when absent."""
    sel = _map(spec.get("workloadSelector"), "spec.workloadSelector")
    return _labels(sel.get("labels"), "spec.workloadSelector.labels")
