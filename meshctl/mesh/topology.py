"""The local mesh's topology: services, versions, replicas, calls, faults, externals, gateway, telemetry.

A topology is plain data (dataclasses), built in Python or loaded from YAML with `load_topology`.
Errors name the file, line and field. The YAML form (every key optional except `services`):

    namespace: default                    # default namespace of services
    cluster_domain: cluster.local         # in service host names and cluster names
    seed: 1                               # pod names and the apps' random generators derive from it
    gateway: {service: frontend}          # istio-ingressgateway (istio-system) routing to a service;
                                          # also name, namespace, port (8080), hosts (["*"])
    telemetry:
      access_logs: [json, text]           # Istio JSON / TEXT access-log files per proxy
      tracing: true                       # Envoy OpenTelemetry tracer -> OTLP receiver
      sampling: 100                       # percent
      otlp_protocol: grpc                 # grpc | http (the tracer's exporter)
      otel_access_log: false              # also export access logs over OTLP (logs signal)
      app_spans: true                     # apps emit their own spans (needs opentelemetry-sdk)
      flush_interval_ms: 1000             # Envoy span flush interval (runtime key), default 5000 in Envoy
      collector_service: opentelemetry-collector.observability.svc.cluster.local   # in the collector's cluster name
    services:
      frontend:
        port: 9080
        namespace: default                # else the top-level namespace
        calls:                            # also method (GET), propagate (true: a failed call answers 502)
          - {host: reviews, path: /reviews/1}
          - {host: api.partner.example, port: 80, path: /quote, probability: 0.5}
      reviews:
        versions:
          v1: {replicas: 2}
          v2: {faults: {error_rate: 0.05}, hosts: {0: {fail: true}}}   # replica 0 of v2 fails completely
        weights: {v1: 90, v2: 10}         # VirtualService split across subsets (else: all pods, least request)
        retries: {attempts: 2, retryOn: "5xx"}         # VirtualService HTTPRetry (default: none)
        timeout: 10s                      # VirtualService route timeout (default: none)
        traffic_policy:                   # DestinationRule trafficPolicy, as in Istio
          connectionPool: {http: {http2MaxRequests: 50, http1MaxPendingRequests: 10}}
          outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
        rate_limit: {max_tokens: 100, tokens_per_fill: 100, fill_interval: 1s}  # local rate limit, inbound
      ratings: {faults: {latency_ms: 5, latency_sigma: 0.3}}
    externals:                            # hosts outside the mesh, answered by local stand-ins
      api.partner.example: {port: 80, faults: {latency_ms: 20}}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshctl.errors import InputError
from meshctl.mesh.app import Call, Faults

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
HOST_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ACCESS_LOG_FORMATS = ("json", "text")


@dataclass
class VersionSpec:
    name: str
    replicas: int = 1
    faults: Faults = field(default_factory=Faults)
    hosts: dict[int, dict[str, Any]] = field(default_factory=dict)  # replica index -> fault overrides

    def faults_for(self, replica: int) -> Faults:
        return self.faults.merged(self.hosts.get(replica), f"versions.{self.name}.hosts.{replica}")


@dataclass
class ServiceSpec:
    name: str
    namespace: str = "default"
    port: int = 9080
    versions: list[VersionSpec] = field(default_factory=lambda: [VersionSpec("v1")])
    weights: dict[str, int] | None = None
    calls: list[Call] = field(default_factory=list)
    traffic_policy: dict[str, Any] | None = None
    rate_limit: dict[str, Any] | None = None
    retries: dict[str, Any] | None = None
    timeout: str | None = None

    def fqdn(self, domain: str = "cluster.local") -> str:
        return f"{self.name}.{self.namespace}.svc.{domain}"

    def version(self, name: str) -> VersionSpec:
        for v in self.versions:
            if v.name == name:
                return v
        raise KeyError(name)

    def aliases(self, caller_namespace: str, domain: str = "cluster.local") -> list[str]:
        """Host names a caller in `caller_namespace` may use for this service (Istio's virtual host domains)."""
        names = [self.fqdn(domain), f"{self.name}.{self.namespace}.svc", f"{self.name}.{self.namespace}"]
        if caller_namespace == self.namespace:
            names.append(self.name)
        return names


@dataclass
class ExternalSpec:
    """A host outside the mesh. The mesh has no entry for it (Istio's PassthroughCluster carries the
    call); a local stand-in server answers in place of the real host, never the internet."""

    host: str
    port: int = 80
    faults: Faults = field(default_factory=Faults)


@dataclass
class GatewaySpec:
    service: str
    name: str = "istio-ingressgateway"
    namespace: str = "istio-system"
    port: int = 8080
    hosts: list[str] = field(default_factory=lambda: ["*"])


@dataclass
class TelemetrySpec:
    access_logs: list[str] = field(default_factory=lambda: ["json"])
    tracing: bool = True
    sampling: float = 100.0
    otlp_protocol: str = "grpc"
    otel_access_log: bool = False
    app_spans: bool = True
    flush_interval_ms: int = 1000
    # Where a real mesh's collector would live; used in the collector's Istio-style cluster name.
    collector_service: str = "opentelemetry-collector.observability.svc.cluster.local"


@dataclass
class Topology:
    services: list[ServiceSpec]
    externals: list[ExternalSpec] = field(default_factory=list)
    gateway: GatewaySpec | None = None
    telemetry: TelemetrySpec = field(default_factory=TelemetrySpec)
    cluster_domain: str = "cluster.local"
    seed: int = 1

    def service(self, name: str) -> ServiceSpec:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)

    def resolve(self, host: str, caller_namespace: str) -> ServiceSpec | ExternalSpec | None:
        """What a host name used by a caller in `caller_namespace` refers to."""
        for s in self.services:
            if host in s.aliases(caller_namespace, self.cluster_domain):
                return s
        for e in self.externals:
            if e.host == host:
                return e
        return None

    def pods(self) -> list[PodSpec]:
        """Every instance, with Kubernetes-like pod names (`reviews-v2-6d9f7c8b5-x4k2p`)."""
        out = []
        for s in self.services:
            for v in s.versions:
                workload = f"{s.name}-{v.name}"
                for i in range(v.replicas):
                    out.append(PodSpec(service=s, version=v, replica=i, workload=workload,
                                       name=pod_name(workload, f"{self.seed}/{s.namespace}/{workload}", i),
                                       faults=v.faults_for(i)))
        return out

    def validate(self) -> None:
        """Cross-field checks (unique names, resolvable calls, an acyclic call graph)."""
        names = [s.name for s in self.services]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise InputError(f"duplicate services {sorted(dup)}", field="services")
        graph: dict[str, list[str]] = {}
        for s in self.services:
            graph[s.name] = []
            for i, c in enumerate(s.calls):
                target = self.resolve(c.host, s.namespace)
                where = f"services.{s.name}.calls[{i}].host"
                if target is None:
                    raise InputError(
                        f"{s.name} calls {c.host!r}, which is neither a service nor a declared external host",
                        field=where, hint="declare it under `externals:` (a local stand-in answers it)",
                    )
                if isinstance(target, ServiceSpec):
                    if c.port != target.port:
                        raise InputError(f"{target.name} listens on port {target.port}, the call uses {c.port}",
                                         field=f"services.{s.name}.calls[{i}].port")
                    graph[s.name].append(target.name)
                elif c.port != target.port:
                    raise InputError(f"external {target.host} is declared on port {target.port}, the call uses {c.port}",
                                     field=f"services.{s.name}.calls[{i}].port")
        cycle = _find_cycle(graph)
        if cycle:
            raise InputError("the services call each other in a cycle: " + " -> ".join(cycle), field="services")
        if self.gateway is not None and self.gateway.service not in names:
            raise InputError(f"the gateway routes to unknown service {self.gateway.service!r}", field="gateway.service")


@dataclass
class PodSpec:
    service: ServiceSpec
    version: VersionSpec
    replica: int
    workload: str
    name: str
    faults: Faults

    @property
    def namespace(self) -> str:
        return self.service.namespace


def pod_name(workload: str, key: str, replica: int) -> str:
    """A Kubernetes-like pod name, `<workload>-<replicaset hash>-<suffix>`, the same for the same key
    (every replica of a workload shares the ReplicaSet hash)."""
    return f"{workload}-{_hash(key, 9)}-{_hash(f'{key}/{replica}', 5)}"


_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' alphabet for generated name suffixes (no vowels)


def _hash(text: str, n: int) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in digest[:n])


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in graph:
        if n not in state and (found := visit(n)):
            return found
    return None


# ---- YAML / dict loading ---------------------------------------------------------------------

class _Doc:
    """Where each mapping key of a loaded YAML document sits (for error messages)."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.lines: dict[int, dict[str, int]] = {}

    def line(self, mapping: Any, key: str | None = None) -> int | None:
        info = self.lines.get(id(mapping))
        if not info:
            return None
        return info.get(key) if key is not None and key in info else info.get("")


def _load_yaml(text: str, doc: _Doc) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
        mapping = loader.construct_mapping(node, deep=True)
        lines = {"": node.start_mark.line + 1}
        for k, _ in node.value:
            if isinstance(k, yaml.ScalarNode):
                lines[str(loader.construct_object(k))] = k.start_mark.line + 1
        result = {str(k) if isinstance(k, int) else k: v for k, v in mapping.items()}
        doc.lines[id(result)] = lines
        return result

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=doc.file,
                         line=mark.line + 1 if mark else None) from exc


class _Reader:
    def __init__(self, doc: _Doc) -> None:
        self.doc = doc

    def err(self, msg: str, where: str, mapping: Any = None, key: str | None = None, hint: str | None = None):
        return InputError(msg, file=self.doc.file, line=self.doc.line(mapping, key) if mapping is not None else None,
                          field=where, hint=hint)

    def mapping(self, value: Any, where: str, parent: Any = None, key: str | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.err(f"expected a mapping, got {type(value).__name__}", where, parent, key)
        return value

    def keys(self, m: dict[str, Any], allowed: set[str], where: str) -> None:
        for k in m:
            if k not in allowed:
                raise self.err(f"unknown key {k!r} (known: {', '.join(sorted(allowed))})", f"{where}.{k}", m, k)

    def typed(self, m: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any = None) -> Any:
        if key not in m or m[key] is None:
            return default
        v = m[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(v, bool) and bool not in kinds:
            raise self.err(f"expected {kinds[0].__name__}, got a boolean", f"{where}.{key}", m, key)
        if float in kinds and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, kinds):
            raise self.err(f"expected {kinds[0].__name__}, got {type(v).__name__} {v!r}", f"{where}.{key}", m, key)
        return v

    def faults(self, value: Any, where: str, parent: Any, key: Any, base: Faults | None = None) -> Faults:
        m = self.mapping(value, where, parent, key)
        try:
            return (base or Faults()).merged(m, where)
        except InputError as exc:
            bad = exc.field.rsplit(".", 1)[-1] if exc.field else None
            raise self.err(exc.message, exc.field or where, m if bad in m else parent,
                           bad if bad in m else key) from exc


def load_topology(source: str | Path | dict[str, Any]) -> Topology:
    """A Topology from a YAML file path or an already-loaded dict; InputError names file/line/field."""
    text = None
    if isinstance(source, dict):
        doc = _Doc(None)
        data = source
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read topology: {exc.strerror}", file=str(path)) from exc
        doc = _Doc(str(path))
        data = _load_yaml(text, doc)
    r = _Reader(doc)
    top = r.mapping(data, "(document)")
    r.keys(top, {"namespace", "services", "externals", "gateway", "telemetry", "cluster_domain", "seed"}, "")
    namespace = r.typed(top, "namespace", str, "", "default")
    domain = r.typed(top, "cluster_domain", str, "", "cluster.local")
    seed = r.typed(top, "seed", int, "", 1)

    services_raw = r.mapping(top.get("services"), "services", top, "services")
    if not services_raw:
        raise r.err("a topology needs at least one service", "services", top, "services")
    services = [_service(r, name, spec, services_raw, namespace) for name, spec in services_raw.items()]

    externals = []
    ext_raw = r.mapping(top.get("externals"), "externals", top, "externals")
    for host, spec in ext_raw.items():
        where = f"externals.{host}"
        if not HOST_NAME.match(str(host)):
            raise r.err(f"{host!r} is not a host name", where, ext_raw, host)
        m = r.mapping(spec, where, ext_raw, host)
        r.keys(m, {"port", "faults"}, where)
        externals.append(ExternalSpec(host=str(host), port=_port(r, m, where, 80),
                                      faults=r.faults(m.get("faults"), f"{where}.faults", m, "faults")))

    gateway = None
    if "gateway" in top and top["gateway"] is not False:
        g = r.mapping(top["gateway"], "gateway", top, "gateway")
        r.keys(g, {"service", "name", "namespace", "port", "hosts"}, "gateway")
        gateway = GatewaySpec(
            service=r.typed(g, "service", str, "gateway", services[0].name),
            name=r.typed(g, "name", str, "gateway", "istio-ingressgateway"),
            namespace=r.typed(g, "namespace", str, "gateway", "istio-system"),
            port=_port(r, g, "gateway", 8080),
            hosts=list(r.typed(g, "hosts", list, "gateway", ["*"])),
        )

    t = r.mapping(top.get("telemetry"), "telemetry", top, "telemetry")
    r.keys(t, {"access_logs", "tracing", "sampling", "otlp_protocol", "otel_access_log", "app_spans",
               "flush_interval_ms", "collector_service"}, "telemetry")
    logs = r.typed(t, "access_logs", list, "telemetry", ["json"])
    for f in logs:
        if f not in ACCESS_LOG_FORMATS:
            raise r.err(f"access log format {f!r} is not one of {', '.join(ACCESS_LOG_FORMATS)}",
                        "telemetry.access_logs", t, "access_logs")
    protocol = r.typed(t, "otlp_protocol", str, "telemetry", "grpc")
    if protocol not in ("grpc", "http"):
        raise r.err(f"otlp_protocol must be grpc or http, not {protocol!r}", "telemetry.otlp_protocol", t, "otlp_protocol")
    sampling = r.typed(t, "sampling", float, "telemetry", 100.0)
    if not 0 <= sampling <= 100:
        raise r.err("sampling is a percentage (0-100)", "telemetry.sampling", t, "sampling")
    telemetry = TelemetrySpec(
        access_logs=list(logs), tracing=r.typed(t, "tracing", bool, "telemetry", True), sampling=sampling,
        otlp_protocol=protocol, otel_access_log=r.typed(t, "otel_access_log", bool, "telemetry", False),
        app_spans=r.typed(t, "app_spans", bool, "telemetry", True),
        flush_interval_ms=r.typed(t, "flush_interval_ms", int, "telemetry", 1000),
        collector_service=r.typed(t, "collector_service", str, "telemetry",
                                  "opentelemetry-collector.observability.svc.cluster.local"),
    )
    topo = Topology(services=services, externals=externals, gateway=gateway, telemetry=telemetry,
                    cluster_domain=domain, seed=seed)
    try:
        topo.validate()
    except InputError as exc:
        from meshctl.yamlpath import text_line

        raise InputError(exc.message, file=doc.file, line=text_line(text, exc.field) if text else None,
                         field=exc.field, hint=exc.hint) from exc
    return topo


def _port(r: _Reader, m: dict[str, Any], where: str, default: int) -> int:
    port = r.typed(m, "port", int, where, default)
    if not 1 <= port <= 65535:
        raise r.err(f"port {port} is out of range 1-65535", f"{where}.port", m, "port")
    return port


def _service(r: _Reader, name: Any, spec: Any, parent: dict[str, Any], namespace: str) -> ServiceSpec:
    where = f"services.{name}"
    if not isinstance(name, str) or not DNS_LABEL.match(name):
        raise r.err(f"service name {name!r} must be a DNS label (lower case, digits, '-')", where, parent, str(name))
    m = r.mapping(spec, where, parent, name)
    r.keys(m, {"namespace", "port", "versions", "faults", "weights", "calls", "traffic_policy", "rate_limit",
               "retries", "timeout"}, where)
    base_faults = r.faults(m.get("faults"), f"{where}.faults", m, "faults")
    versions = []
    vraw = r.mapping(m.get("versions"), f"{where}.versions", m, "versions") or {"v1": {}}
    for vname, vspec in vraw.items():
        vwhere = f"{where}.versions.{vname}"
        if not isinstance(vname, str) or not DNS_LABEL.match(vname):
            raise r.err(f"version name {vname!r} must be a DNS label", vwhere, vraw, str(vname))
        vm = r.mapping(vspec, vwhere, vraw, vname)
        r.keys(vm, {"replicas", "faults", "hosts"}, vwhere)
        replicas = r.typed(vm, "replicas", int, vwhere, 1)
        if not 1 <= replicas <= 20:
            raise r.err("replicas must be between 1 and 20", f"{vwhere}.replicas", vm, "replicas")
        faults = r.faults(vm.get("faults"), f"{vwhere}.faults", vm, "faults", base=base_faults)
        hosts: dict[int, dict[str, Any]] = {}
        hraw = r.mapping(vm.get("hosts"), f"{vwhere}.hosts", vm, "hosts")
        for idx, override in hraw.items():
            try:
                i = int(idx)
            except ValueError:
                i = -1
            if not 0 <= i < replicas:
                raise r.err(f"host index {idx!r} is not a replica index 0..{replicas - 1}", f"{vwhere}.hosts.{idx}",
                            hraw, idx)
            hosts[i] = r.mapping(override, f"{vwhere}.hosts.{idx}", hraw, idx)
            r.faults(hosts[i], f"{vwhere}.hosts.{idx}", hraw, idx, base=faults)  # validate now
        versions.append(VersionSpec(name=vname, replicas=replicas, faults=faults, hosts=hosts))

    weights = None
    if m.get("weights") is not None:
        w = r.mapping(m["weights"], f"{where}.weights", m, "weights")
        known = {v.name for v in versions}
        for k, v in w.items():
            if k not in known:
                raise r.err(f"weight for unknown version {k!r} (versions: {sorted(known)})", f"{where}.weights.{k}", w, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise r.err(f"weight must be a non-negative integer, got {v!r}", f"{where}.weights.{k}", w, k)
        if sum(w.values()) != 100:
            raise r.err(f"weights must add up to 100 (they add up to {sum(w.values())})", f"{where}.weights", m, "weights")
        weights = {str(k): int(v) for k, v in w.items()}

    calls = []
    craw = r.typed(m, "calls", list, where, [])
    for i, c in enumerate(craw):
        cwhere = f"{where}.calls[{i}]"
        cm = r.mapping(c, cwhere, m, "calls")
        r.keys(cm, {"host", "service", "port", "path", "method", "probability", "propagate"}, cwhere)
        host = cm.get("host", cm.get("service"))
        if not isinstance(host, str) or not HOST_NAME.match(host):
            raise r.err(f"call needs a `host` (a service name or external host name), got {host!r}", cwhere, cm)
        prob = r.typed(cm, "probability", float, cwhere, 1.0)
        if not 0 <= prob <= 1:
            raise r.err("probability must be between 0 and 1", f"{cwhere}.probability", cm, "probability")
        path = r.typed(cm, "path", str, cwhere, "/")
        if not path.startswith("/"):
            raise r.err("path must start with '/'", f"{cwhere}.path", cm, "path")
        calls.append(Call(host=host, port=_port(r, cm, cwhere, 9080), path=path,
                          method=r.typed(cm, "method", str, cwhere, "GET").upper(), probability=prob,
                          propagate=r.typed(cm, "propagate", bool, cwhere, True)))

    rate_limit = r.mapping(m.get("rate_limit"), f"{where}.rate_limit", m, "rate_limit") or None
    if rate_limit:
        r.keys(rate_limit, {"max_tokens", "tokens_per_fill", "fill_interval"}, f"{where}.rate_limit")
        for k in ("max_tokens", "tokens_per_fill"):
            v = rate_limit.get(k, 1 if k == "tokens_per_fill" else None)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise r.err(f"{k} must be a positive integer (Envoy accepts 0 but then rejects everything)",
                            f"{where}.rate_limit.{k}", rate_limit, k)
    traffic_policy = r.mapping(m.get("traffic_policy"), f"{where}.traffic_policy", m, "traffic_policy") or None
    if traffic_policy:
        r.keys(traffic_policy, {"connectionPool", "outlierDetection", "loadBalancer"}, f"{where}.traffic_policy")
    retries = r.mapping(m.get("retries"), f"{where}.retries", m, "retries") or None
    if retries:
        r.keys(retries, {"attempts", "perTryTimeout", "retryOn"}, f"{where}.retries")
    return ServiceSpec(
        name=name, namespace=r.typed(m, "namespace", str, where, namespace), port=_port(r, m, where, 9080),
        versions=versions, weights=weights, calls=calls, traffic_policy=traffic_policy, rate_limit=rate_limit,
        retries=retries, timeout=r.typed(m, "timeout", str, where, None),
    )
