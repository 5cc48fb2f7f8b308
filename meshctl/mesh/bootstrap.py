"""Envoy bootstraps for an Istio-like sidecar or ingress gateway on 127.0.0.1.

What Istio's pilot would send a proxy over xDS is written here as a static bootstrap, with Istio's
names so that access logs, spans and stats look like a real mesh's:

- sidecar listeners: `virtualInbound` (traffic_direction INBOUND; route `default` -> cluster
  `inbound|PORT||` -> the local app) and one outbound listener per service port, `0.0.0.0_PORT`
  (traffic_direction OUTBOUND; route config `PORT` with one virtual host per service, domains as
  Istio lists them, plus `allow_any` -> `PassthroughCluster` for hosts the mesh does not know);
- gateway listener `0.0.0.0_PORT` (no direction: Envoy makes a SERVER span and, with
  spawn_upstream_span, a CLIENT span for the upstream call), route config `http.PORT`;
- clusters `outbound|PORT||HOST` and `outbound|PORT|SUBSET|HOST` (EDS), `inbound|PORT||` (STATIC),
  `PassthroughCluster` (a STATIC cluster to the local stand-in for external hosts: no DNS, no internet);
- `x-request-id` generated at the edge and preserved inside the mesh (UUID request-id extension);
  W3C trace context through the OpenTelemetry tracer; a runtime with an admin layer.

Every address is 127.0.0.1 and every listener binds port 0; the bound ports are read back from the
admin API (`EnvoyProcess.listener_port`). Outbound clusters are EDS clusters reading a file per
cluster (`path_config_source`): the mesh writes the files once every sidecar's inbound port is known,
and can rewrite them later (Envoy watches them), so start order does not matter.

DestinationRule `trafficPolicy` (connectionPool, outlierDetection, loadBalancer) and VirtualService
retries/weights are translated the way istiod translates them (`destination_rule_cluster_settings`).
Telemetry (access logs, tracer, OpenTelemetry access logger) is not written here: `meshctl.mesh.telemetry`
applies it, from `meshctl render` output.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from meshctl.errors import InputError
from meshctl.mesh.topology import GatewaySpec, PodSpec, ServiceSpec, Topology, pod_name

LOOPBACK = "127.0.0.1"
MAX_UINT32 = 4294967295
HCM = "envoy.filters.network.http_connection_manager"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
INBOUND_LISTENER = "virtualInbound"
PASSTHROUGH = "PassthroughCluster"


# ---- names -----------------------------------------------------------------------------------

def cluster_name(direction: str, port: int, subset: str = "", host: str = "") -> str:
    """Istio's cluster names: `outbound|9080|v1|reviews.default.svc.cluster.local`, `inbound|9080||`."""
    return f"{direction}|{port}|{subset}|{host}"


def outbound_listener_name(port: int) -> str:
    return f"0.0.0.0_{port}"


def node_id(kind: str, pod: str, namespace: str, domain: str = "cluster.local") -> str:
    """Istio's node id: `sidecar~10.1.2.3~reviews-v1-abc.default~default.svc.cluster.local`."""
    return f"{kind}~{LOOPBACK}~{pod}.{namespace}~{namespace}.svc.{domain}"


def eds_path(eds_dir: str | Path, cluster: str) -> Path:
    return Path(eds_dir) / (re.sub(r"[^A-Za-z0-9_.-]", "_", cluster) + ".json")


def write_eds(eds_dir: str | Path, cluster: str, endpoints: list[tuple[str, int]], version: str = "1") -> Path:
    """Write (atomically, so Envoy's file watch sees one complete update) a cluster's endpoints."""
    path = eds_path(eds_dir, cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version_info": version, "resources": [{
        "@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
        "cluster_name": cluster,
        "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
            for host, port in endpoints
        ]}] if endpoints else [],
    }]}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)
    return path


# ---- pieces ----------------------------------------------------------------------------------

def _address(port: int = 0, host: str = LOOPBACK) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _static_cluster(name: str, port: int, *, http2: bool = False, connect_timeout: str = "10s") -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name, "type": "STATIC", "connect_timeout": connect_timeout,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": _address(port)}}]}]},
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {HTTP_PROTOCOL_OPTIONS: {
            "@type": "type.googleapis.com/" + HTTP_PROTOCOL_OPTIONS,
            "explicit_http_config": {"http2_protocol_options": {}}}}
    return cluster


def _default_circuit_breakers() -> dict[str, Any]:
    # istiod's defaults: effectively unlimited, with remaining-capacity gauges.
    return {"thresholds": [{"max_connections": MAX_UINT32, "max_pending_requests": MAX_UINT32,
                            "max_requests": MAX_UINT32, "max_retries": MAX_UINT32, "track_remaining": True}]}


def _eds_cluster(name: str, eds_dir: Path, policy: dict[str, Any] | None) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name, "type": "EDS", "connect_timeout": "10s", "lb_policy": "LEAST_REQUEST",
        "eds_cluster_config": {"service_name": name, "eds_config": {
            "resource_api_version": "V3", "path_config_source": {"path": str(eds_path(eds_dir, name))}}},
        "circuit_breakers": _default_circuit_breakers(),
    }
    cluster.update(destination_rule_cluster_settings(policy, where=name))
    return cluster


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")


def parse_duration(value: Any, where: str) -> str:
    """An Istio duration (`10s`, `500ms`, `1m`) as a protobuf JSON duration (`10s`, `0.500s`)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{float(value):.3f}s"
    m = _DURATION.match(str(value).strip())
    if not m:
        raise InputError(f"{value!r} is not a duration like 500ms, 10s, 1m", field=where)
    n, unit = float(m.group(1)), m.group(2)
    seconds = n / 1000 if unit == "ms" else n * {"s": 1, "m": 60, "h": 3600}[unit]
    return f"{seconds:.3f}s"


def destination_rule_cluster_settings(policy: dict[str, Any] | None, *, where: str = "trafficPolicy") -> dict[str, Any]:
    """Envoy cluster fields for an Istio DestinationRule `trafficPolicy`, as istiod sets them.

    connectionPool.tcp.maxConnections -> circuit_breakers max_connections; connectTimeout -> connect_timeout;
    connectionPool.http.http1MaxPendingRequests -> max_pending_requests; http2MaxRequests -> max_requests;
    maxRetries -> max_retries; maxRequestsPerConnection / idleTimeout -> HttpProtocolOptions;
    outlierDetection -> outlier_detection (enforcing only the error kinds that are set) and
    common_lb_config.healthy_panic_threshold = minHealthPercent (istiod's default 0: no panic routing);
    loadBalancer.simple -> lb_policy.
    """
    if not policy:
        return {}
    out: dict[str, Any] = {}
    pool = policy.get("connectionPool") or {}
    tcp, http = pool.get("tcp") or {}, pool.get("http") or {}
    thresholds = dict(_default_circuit_breakers()["thresholds"][0])
    mapping = {("tcp", "maxConnections"): "max_connections", ("http", "http1MaxPendingRequests"): "max_pending_requests",
               ("http", "http2MaxRequests"): "max_requests", ("http", "maxRetries"): "max_retries"}
    for (section, key), envoy_key in mapping.items():
        value = (tcp if section == "tcp" else http).get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"must be a positive integer, got {value!r}",
                                 field=f"{where}.connectionPool.{section}.{key}")
            thresholds[envoy_key] = value
    out["circuit_breakers"] = {"thresholds": [thresholds]}
    if tcp.get("connectTimeout") is not None:
        out["connect_timeout"] = parse_duration(tcp["connectTimeout"], f"{where}.connectionPool.tcp.connectTimeout")
    common: dict[str, Any] = {}
    if http.get("maxRequestsPerConnection"):
        common["max_requests_per_connection"] = int(http["maxRequestsPerConnection"])
    if http.get("idleTimeout") is not None:
        common["idle_timeout"] = parse_duration(http["idleTimeout"], f"{where}.connectionPool.http.idleTimeout")
    if common:
        out["typed_extension_protocol_options"] = {HTTP_PROTOCOL_OPTIONS: {
            "@type": "type.googleapis.com/" + HTTP_PROTOCOL_OPTIONS,
            "common_http_protocol_options": common,
            "explicit_http_config": {"http_protocol_options": {}}}}
    od = policy.get("outlierDetection")
    if od:
        o: dict[str, Any] = {"enforcing_success_rate": 0}
        c5 = od.get("consecutive5xxErrors", od.get("consecutiveErrors"))
        if c5:
            o["consecutive_5xx"], o["enforcing_consecutive_5xx"] = int(c5), 100
        else:
            o["enforcing_consecutive_5xx"] = 0
        gw = od.get("consecutiveGatewayErrors")
        if gw:
            o["consecutive_gateway_failure"], o["enforcing_consecutive_gateway_failure"] = int(gw), 100
        if od.get("interval") is not None:
            o["interval"] = parse_duration(od["interval"], f"{where}.outlierDetection.interval")
        if od.get("baseEjectionTime") is not None:
            o["base_ejection_time"] = parse_duration(od["baseEjectionTime"], f"{where}.outlierDetection.baseEjectionTime")
        if od.get("maxEjectionPercent") is not None:
            pct = od["maxEjectionPercent"]
            if not isinstance(pct, int) or not 0 <= pct <= 100:
                raise InputError(f"must be 0-100, got {pct!r}", field=f"{where}.outlierDetection.maxEjectionPercent")
            o["max_ejection_percent"] = pct
        if od.get("splitExternalLocalOriginErrors"):
            o["split_external_local_origin_errors"] = True
        out["outlier_detection"] = o
        out["common_lb_config"] = {"healthy_panic_threshold": {"value": float(od.get("minHealthPercent", 0))}}
    lb = (policy.get("loadBalancer") or {}).get("simple")
    if lb:
        table = {"ROUND_ROBIN": "ROUND_ROBIN", "LEAST_REQUEST": "LEAST_REQUEST", "LEAST_CONN": "LEAST_REQUEST",
                 "RANDOM": "RANDOM"}
        if lb not in table:
            raise InputError(f"loadBalancer.simple {lb!r} is not one of {sorted(table)}", field=f"{where}.loadBalancer")
        out["lb_policy"] = table[lb]
    return out


def retry_policy(retries: dict[str, Any] | None, where: str = "retries") -> dict[str, Any] | None:
    """A VirtualService HTTPRetry as an Envoy route retry_policy (None when no retries)."""
    if not retries or not retries.get("attempts"):
        return None
    policy: dict[str, Any] = {
        "retry_on": retries.get("retryOn", "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"),
        "num_retries": int(retries["attempts"]),
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
        "host_selection_retry_max_attempts": "5",
    }
    if "retriable-status-codes" in policy["retry_on"]:
        policy["retriable_status_codes"] = [503]
    if retries.get("perTryTimeout") is not None:
        policy["per_try_timeout"] = parse_duration(retries["perTryTimeout"], f"{where}.perTryTimeout")
    return policy


def local_ratelimit_filter(spec: dict[str, Any], stat_prefix: str = "http_local_rate_limiter") -> dict[str, Any]:
    """The local rate limit HTTP filter as Istio's documented EnvoyFilter inserts it (429, `x-local-rate-limit`)."""
    bucket = {
        "max_tokens": int(spec["max_tokens"]),
        "tokens_per_fill": int(spec.get("tokens_per_fill", 1)),
        "fill_interval": parse_duration(spec.get("fill_interval", "1s"), "rate_limit.fill_interval"),
    }
    always = {"numerator": 100, "denominator": "HUNDRED"}
    return {"name": "envoy.filters.http.local_ratelimit", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        "stat_prefix": stat_prefix, "token_bucket": bucket,
        "filter_enabled": {"runtime_key": "local_rate_limit_enabled", "default_value": always},
        "filter_enforced": {"runtime_key": "local_rate_limit_enforced", "default_value": always},
        "response_headers_to_add": [{"append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                                     "header": {"key": "x-local-rate-limit", "value": "true"}}],
    }}


def _hcm(stat_prefix: str, route_config: dict[str, Any], *, edge: bool, filters: list[dict[str, Any]] | None = None,
         spawn_upstream_span: bool = False) -> dict[str, Any]:
    tracing: dict[str, Any] = {"random_sampling": {"value": 100.0}}
    if spawn_upstream_span:
        tracing["spawn_upstream_span"] = True
    return {"name": HCM, "typed_config": {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "codec_type": "AUTO",
        "use_remote_address": edge,
        "generate_request_id": True,
        # Inside the mesh the caller's sidecar already set x-request-id: keep it so both sides log the same id.
        "preserve_external_request_id": not edge,
        "request_id_extension": {"typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
            "use_request_id_for_trace_sampling": True}},
        "normalize_path": True,
        "tracing": tracing,
        "route_config": route_config,
        "http_filters": [*(filters or []), ROUTER],
    }}


def _listener(name: str, hcm: dict[str, Any], direction: str | None) -> dict[str, Any]:
    listener: dict[str, Any] = {"name": name, "address": _address(0), "filter_chains": [{"filters": [hcm]}]}
    if direction:
        listener["traffic_direction"] = direction
    return listener


def _route_action(cluster: str | None = None, weighted: list[tuple[str, int]] | None = None,
                  retries: dict[str, Any] | None = None, timeout: str | None = None) -> dict[str, Any]:
    action: dict[str, Any] = {"timeout": parse_duration(timeout, "timeout") if timeout else "0s"}
    if weighted:
        action["weighted_clusters"] = {"clusters": [{"name": c, "weight": w} for c, w in weighted if w > 0]}
    else:
        action["cluster"] = cluster
    policy = retry_policy(retries)
    if policy:
        action["retry_policy"] = policy
    else:
        action["retry_policy"] = {"num_retries": 0}
    return action


def _service_route(svc: ServiceSpec, topo: Topology) -> dict[str, Any]:
    host = svc.fqdn(topo.cluster_domain)
    if svc.weights:
        weighted = [(cluster_name("outbound", svc.port, v, host), w) for v, w in svc.weights.items()]
        action = _route_action(weighted=weighted, retries=svc.retries, timeout=svc.timeout)
    else:
        action = _route_action(cluster_name("outbound", svc.port, "", host), retries=svc.retries, timeout=svc.timeout)
    return {"name": "default", "match": {"prefix": "/"}, "route": action,
            "decorator": {"operation": f"{host}:{svc.port}/*"}}


def _service_clusters(topo: Topology, eds_dir: Path, *, only: set[str] | None = None) -> list[dict[str, Any]]:
    clusters = []
    for svc in topo.services:
        if only is not None and svc.name not in only:
            continue
        host = svc.fqdn(topo.cluster_domain)
        clusters.append(_eds_cluster(cluster_name("outbound", svc.port, "", host), eds_dir, svc.traffic_policy))
        for v in svc.versions:
            clusters.append(_eds_cluster(cluster_name("outbound", svc.port, v.name, host), eds_dir, svc.traffic_policy))
    return clusters


def service_endpoint_clusters(topo: Topology) -> dict[str, list[tuple[ServiceSpec, str | None]]]:
    """Outbound EDS cluster name -> the (service, version or None for all) whose pods are its endpoints."""
    out: dict[str, list[tuple[ServiceSpec, str | None]]] = {}
    for svc in topo.services:
        host = svc.fqdn(topo.cluster_domain)
        out[cluster_name("outbound", svc.port, "", host)] = [(svc, None)]
        for v in svc.versions:
            out[cluster_name("outbound", svc.port, v.name, host)] = [(svc, v.name)]
    return out


def _base(node: dict[str, Any], listeners: list[dict[str, Any]], clusters: list[dict[str, Any]],
          runtime: dict[str, Any] | None) -> dict[str, Any]:
    static_layer = {"overload.global_downstream_max_connections": 50000, **(runtime or {})}
    return {
        "node": node,
        "admin": {"address": _address(0)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        "layered_runtime": {"layers": [
            {"name": "static", "static_layer": static_layer},
            {"name": "admin", "admin_layer": {}},  # /runtime_modify works (thresholds changed live in tests)
        ]},
    }


def _node(kind: str, pod: str, namespace: str, *, workload: str, app: str, version: str | None,
          domain: str) -> dict[str, Any]:
    labels = {"app": app, "service.istio.io/canonical-name": app}
    if version:
        labels["version"] = version
        labels["service.istio.io/canonical-revision"] = version
    return {
        "id": node_id(kind, pod, namespace, domain),
        "cluster": f"{app}.{namespace}",
        "metadata": {"NAME": pod, "NAMESPACE": namespace, "WORKLOAD_NAME": workload, "LABELS": labels,
                     "CLUSTER_ID": "Kubernetes", "MESH_ID": "cluster.local", "INSTANCE_IPS": LOOPBACK},
    }


def outbound_ports(topo: Topology, svc: ServiceSpec) -> list[int]:
    """The service ports a service's calls use (one outbound listener each)."""
    return sorted({c.port for c in svc.calls})


def sidecar_bootstrap(pod: PodSpec, topo: Topology, *, app_port: int, eds_dir: str | Path,
                      passthrough_port: int | None = None, runtime: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bootstrap of `pod`'s sidecar: inbound to its app at `app_port`, outbound for its calls.

    `passthrough_port`: where `PassthroughCluster` sends hosts the mesh does not know (the local
    stand-in for external hosts); without it those calls fail with 503 (no endpoints).
    """
    svc, eds = pod.service, Path(eds_dir)
    domain = topo.cluster_domain
    inbound_cluster = cluster_name("inbound", svc.port)
    filters = [local_ratelimit_filter(svc.rate_limit)] if svc.rate_limit else []
    inbound_routes = {"name": inbound_cluster, "validate_clusters": False, "virtual_hosts": [{
        "name": f"inbound|http|{svc.port}", "domains": ["*"],
        "routes": [{"name": "default", "match": {"prefix": "/"},
                    "route": {"cluster": inbound_cluster, "timeout": "0s"},
                    "decorator": {"operation": f"{svc.fqdn(domain)}:{svc.port}/*"}}],
    }]}
    listeners = [_listener(INBOUND_LISTENER, _hcm(f"inbound_0.0.0.0_{svc.port}", inbound_routes, edge=False,
                                                  filters=filters), "INBOUND")]
    called: set[str] = set()
    for port in outbound_ports(topo, svc):
        vhosts = []
        for target in topo.services:
            if target.port != port or not any(
                    isinstance(topo.resolve(c.host, svc.namespace), ServiceSpec)
                    and topo.resolve(c.host, svc.namespace).name == target.name for c in svc.calls):
                continue
            called.add(target.name)
            names = target.aliases(svc.namespace, domain)
            vhosts.append({"name": f"{target.fqdn(domain)}:{port}", "domains": [*names, *(f"{n}:{port}" for n in names)],
                           "routes": [_service_route(target, topo)], "include_request_attempt_count": True})
        vhosts.append({"name": "allow_any", "domains": ["*"], "routes": [
            {"name": "allow_any", "match": {"prefix": "/"}, "route": {"cluster": PASSTHROUGH, "timeout": "0s"}}]})
        route_config = {"name": str(port), "validate_clusters": False, "virtual_hosts": vhosts}
        listeners.append(_listener(outbound_listener_name(port), _hcm(f"outbound_0.0.0.0_{port}", route_config,
                                                                     edge=False), "OUTBOUND"))
    clusters = [_static_cluster(inbound_cluster, app_port), *_service_clusters(topo, eds, only=called)]
    clusters.append(_passthrough(passthrough_port))
    node = _node("sidecar", pod.name, pod.namespace, workload=pod.workload, app=svc.name, version=pod.version.name,
                 domain=domain)
    return _base(node, listeners, clusters, runtime)


def _passthrough(port: int | None) -> dict[str, Any]:
    if port is None:
        return {"name": PASSTHROUGH, "type": "STATIC", "connect_timeout": "10s", "load_assignment": {
            "cluster_name": PASSTHROUGH, "endpoints": []}}
    return _static_cluster(PASSTHROUGH, port)


def gateway_bootstrap(gw: GatewaySpec, topo: Topology, *, eds_dir: str | Path,
                      runtime: dict[str, Any] | None = None, pod: str | None = None) -> dict[str, Any]:
    """The ingress gateway's bootstrap: listener `0.0.0.0_PORT` routing `gw.hosts` to `gw.service`."""
    svc = topo.service(gw.service)
    domains = [*gw.hosts, *(f"{h}:{gw.port}" for h in gw.hosts if h != "*")]
    route_config = {"name": f"http.{gw.port}", "validate_clusters": False, "virtual_hosts": [{
        "name": f"{gw.hosts[0]}:{gw.port}", "domains": domains, "routes": [_service_route(svc, topo)]}]}
    hcm = _hcm(f"outbound_0.0.0.0_{gw.port}", route_config, edge=True, spawn_upstream_span=True)
    listeners = [_listener(outbound_listener_name(gw.port), hcm, None)]
    clusters = _service_clusters(topo, Path(eds_dir), only={svc.name})
    pod_name = pod or gateway_pod_name(gw, topo)
    node = _node("router", pod_name, gw.namespace, workload=gw.name, app=gw.name, version=None,
                 domain=topo.cluster_domain)
    return _base(node, listeners, clusters, runtime)


def gateway_pod_name(gw: GatewaySpec, topo: Topology) -> str:
    return pod_name(gw.name, f"{topo.seed}/{gw.name}", 0)


def iter_hcms(bootstrap: dict[str, Any]):
    """(listener, HttpConnectionManager typed_config) pairs of a bootstrap."""
    for listener in bootstrap.get("static_resources", {}).get("listeners", []):
        for chain in listener.get("filter_chains", []):
            for f in chain.get("filters", []):
                if f.get("name") == HCM:
                    yield listener, f["typed_config"]


def apply_destination_rule(bootstrap: dict[str, Any], rule: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of `bootstrap` with an Istio DestinationRule's traffic policies on the clusters of its host
    (`spec.trafficPolicy` on every `outbound|PORT|*|HOST` cluster, `spec.subsets[].trafficPolicy` on top
    for that subset's), as istiod would send them. Returns the bootstrap and the names of the changed
    clusters (none when this proxy has no cluster for the host)."""
    import copy

    boot = copy.deepcopy(bootstrap)
    spec = rule.get("spec") or {}
    host = spec.get("host")
    where = f"DestinationRule {((rule.get('metadata') or {}).get('name'))}"
    top = spec.get("trafficPolicy") or {}
    subsets = {s.get("name"): s.get("trafficPolicy") or {} for s in spec.get("subsets") or []}
    changed = []
    for cluster in boot.get("static_resources", {}).get("clusters", []):
        parts = cluster["name"].split("|")
        if len(parts) != 4 or parts[0] != "outbound" or parts[3] != host:
            continue
        policy = dict(top)
        if parts[2] and parts[2] in subsets:
            policy.update(subsets[parts[2]])  # istiod: a subset's policy overrides the top-level one per field
        if not policy:
            continue
        cluster.update(destination_rule_cluster_settings(policy, where=f"{where}.trafficPolicy"))
        changed.append(cluster["name"])
    return boot, changed
