"""Telemetry for the local mesh's proxies, exactly as `meshctl render istio --mode envoyfilter` configures it.

The access-log formats, the OpenTelemetry tracer and the OpenTelemetry access logger are not written
here: `render_envoyfilters(spec)` calls meshctl's renderer (`meshctl.render.istio.render_istio`) and
`apply_telemetry` applies the EnvoyFilters to each proxy's bootstrap with `meshctl.envoyfilter`, the
way istiod patches the xDS it sends. What istiod (and the kubelet) would add per proxy is added here:

- the collector is a mesh service: the cluster `outbound|4317||<collector service>` exists (istiod
  builds it from the registry; here it is a STATIC cluster to the local OTLP receiver), and the
  render is told to use it (`collectorCluster`), as meshctl's own note recommends for Istio;
- a proxy's stdout goes to a per-pod file (the kubelet's job): file access loggers writing to
  `/dev/stdout` get the pod's log file instead, one per format;
- the tracer's `service_name` is the proxy's `<app>.<namespace>` (istiod sets it per proxy);
- the proxy's environment carries POD_NAME, POD_NAMESPACE, the canonical service / revision and
  OTEL_RESOURCE_ATTRIBUTES, which the rendered `%ENVIRONMENT(...)%` log fields, `environment` custom
  tags and the `environment` resource detector read (as Istio's injected pod env does).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from meshctl.errors import MeshctlError
from meshctl.mesh.bootstrap import _static_cluster, iter_hcms
from meshctl.mesh.topology import TelemetrySpec

COLLECTOR_PORTS = {"grpc": 4317, "http": 4318}
ACCESS_LOG_KINDS = {"json": "file-json", "text": "file-text"}
# Span tags from the proxy's environment (mesh-wide config, per-proxy values), as Istio's tracing adds them.
CUSTOM_TAGS = {
    "istio.canonical_service": {"environment": "CANONICAL_SERVICE"},
    "istio.canonical_revision": {"environment": {"name": "CANONICAL_REVISION", "defaultValue": "latest"}},
    "istio.namespace": {"environment": "POD_NAMESPACE"},
    "istio.mesh_id": {"literal": "cluster.local"},
}


@dataclass
class Collector:
    """Where the proxies export OTLP (the local receiver's bound ports)."""

    host: str = "127.0.0.1"
    grpc_port: int | None = None
    http_port: int | None = None


@dataclass
class ProxyIdentity:
    """Who a proxy is (what istiod and the pod spec know)."""

    pod: str
    namespace: str
    workload: str
    app: str
    version: str | None = None
    role: str = "sidecar"  # sidecar | gateway
    log_paths: dict[str, Path] = field(default_factory=dict)  # access-log format (json|text) -> file

    @property
    def service_name(self) -> str:
        # Istio names a proxy's spans after its canonical service and namespace.
        return f"{self.app}.{self.namespace}"

    @property
    def labels(self) -> dict[str, str]:
        return pod_labels(self.app, self.version, self.role)


def pod_labels(app: str, version: str | None, role: str) -> dict[str, str]:
    """The labels Kubernetes would give a mesh pod (what EnvoyFilter workload selectors match)."""
    labels = {"app": app}
    if version:
        labels["version"] = version
    if role == "gateway":
        labels["istio"] = "ingressgateway"
    return labels


def collector_cluster_name(spec: TelemetrySpec, protocol: str) -> str:
    """Istio's name for the collector service's cluster: `outbound|4317||<collector service>`."""
    return f"outbound|{COLLECTOR_PORTS[protocol]}||{spec.collector_service}"


def render_values(spec: TelemetrySpec) -> list[dict[str, Any]]:
    """The `meshctl render istio` values (one render per concern) that configure the mesh's telemetry."""
    common = {"mode": "envoyfilter", "istioVersion": "1.28"}
    out = []
    if spec.tracing:
        out.append({
            **common, "tracing": True, "accessLog": "off", "protocol": spec.otlp_protocol,
            "collector": f"{spec.collector_service}:{COLLECTOR_PORTS[spec.otlp_protocol]}",
            "collectorCluster": collector_cluster_name(spec, spec.otlp_protocol),
            "sampling": float(spec.sampling), "customTags": CUSTOM_TAGS, "resourceDetectors": ["environment"],
        })
    for fmt in spec.access_logs:
        out.append({**common, "name": f"mesh-{fmt}", "tracing": False, "accessLog": ACCESS_LOG_KINDS[fmt]})
    if spec.otel_access_log:
        out.append({
            **common, "name": "mesh-otlp", "tracing": False, "accessLog": "otlp", "protocol": "grpc",
            "collector": f"{spec.collector_service}:4317", "collectorCluster": collector_cluster_name(spec, "grpc"),
        })
    return out


def render_envoyfilters(spec: TelemetrySpec) -> list[Any]:
    """`meshctl render` output (Rendered documents: obj, apply command, comment) for the mesh's telemetry."""
    from meshctl.render.istio import render_istio

    docs = []
    for values in render_values(spec):
        docs.extend(render_istio(values).resources)
    return docs


@lru_cache(maxsize=8)
def _envoyfilter_objs(key: tuple[Any, ...]) -> tuple[dict[str, Any], ...]:
    spec = TelemetrySpec(access_logs=list(key[0]), tracing=key[1], sampling=key[2], otlp_protocol=key[3],
                         otel_access_log=key[4], collector_service=key[5])
    return tuple(r.obj for r in render_envoyfilters(spec))


def _spec_key(spec: TelemetrySpec) -> tuple[Any, ...]:
    return (tuple(spec.access_logs), spec.tracing, spec.sampling, spec.otlp_protocol, spec.otel_access_log,
            spec.collector_service)


def runtime_overrides(spec: TelemetrySpec) -> dict[str, Any]:
    """Runtime keys for the proxies: a short span flush interval, and no early flush of small batches
    (each export is a request to the receiver; fewer, larger ones cost less)."""
    return {"tracing.opentelemetry.flush_interval_ms": int(spec.flush_interval_ms),
            "tracing.opentelemetry.min_flush_spans": 1000}


def proxy_env(who: ProxyIdentity) -> dict[str, str]:
    """The environment of a proxy, as Istio's injected pod env provides it."""
    attrs = {"k8s.pod.name": who.pod, "k8s.namespace.name": who.namespace, "k8s.deployment.name": who.workload,
             "service.namespace": who.namespace}
    if who.version:
        attrs["service.version"] = who.version
    env = {"POD_NAME": who.pod, "POD_NAMESPACE": who.namespace, "CANONICAL_SERVICE": who.app,
           "OTEL_RESOURCE_ATTRIBUTES": ",".join(f"{k}={v}" for k, v in attrs.items())}
    if who.version:
        env["CANONICAL_REVISION"] = who.version
    return env


def apply_telemetry(bootstrap: dict[str, Any], spec: TelemetrySpec, who: ProxyIdentity,
                    collector: Collector | None, *, envoyfilters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The bootstrap with the rendered telemetry EnvoyFilters applied (plus `envoyfilters`, e.g. a
    suggested local rate limit) and the per-proxy settings istiod would make. Returns a new dict."""
    from meshctl.envoyfilter import apply_envoyfilters

    boot = copy.deepcopy(bootstrap)
    clusters = boot["static_resources"]["clusters"]
    if collector is not None:
        for protocol, port in (("grpc", collector.grpc_port), ("http", collector.http_port)):
            if port is not None:
                clusters.append(_static_cluster(collector_cluster_name(spec, protocol), port,
                                                http2=protocol == "grpc"))
    efs = [*(_envoyfilter_objs(_spec_key(spec)) if collector is not None or spec.access_logs else ()),
           *(envoyfilters or [])]
    if collector is None:
        # No receiver: keep only the file access logs (the tracer and OTLP logger would export nowhere).
        efs = [ef for ef in efs if not str(ef.get("metadata", {}).get("name", "")).endswith(
            ("-otel-tracing", "mesh-otlp-otel-accesslog"))]
    result = apply_envoyfilters(boot, efs, proxy_type="gateway" if who.role == "gateway" else "sidecar",
                                labels=who.labels, namespace=who.namespace)
    boot = result.bootstrap
    for _listener, hcm in iter_hcms(boot):
        for log in hcm.get("access_log", []):
            cfg = log.get("typed_config", {})
            if cfg.get("path") == "/dev/stdout":
                fmt = "json" if "json_format" in cfg.get("log_format", {}) else "text"
                if fmt not in who.log_paths:
                    raise MeshctlError(f"{who.pod}: a rendered {fmt} access log has no file to write to")
                cfg["path"] = str(who.log_paths[fmt])
        provider = hcm.get("tracing", {}).get("provider")
        if provider and provider.get("name") == "envoy.tracers.opentelemetry":
            provider["typed_config"]["service_name"] = who.service_name
    return boot
