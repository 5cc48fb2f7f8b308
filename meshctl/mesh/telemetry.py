"""Telemetry for the local mesh's proxies: access-log files, OpenTelemetry tracer and access logger.

The proxies are configured the way meshctl configures a real mesh. Per-proxy facts that istiod
would fill in (the tracer's service name, the canonical service/revision tags, where the proxy's
stdout goes) are set here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshctl.mesh.bootstrap import _static_cluster, iter_hcms
from meshctl.mesh.topology import TelemetrySpec

# Istio's default access-log formats (meshConfig accessLogFormat unset; accessLogEncoding TEXT / JSON).
ISTIO_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)
ISTIO_JSON_FORMAT = {
    "start_time": "%START_TIME%",
    "route_name": "%ROUTE_NAME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
}

COLLECTOR_PORTS = {"grpc": 4317, "http": 4318}


@dataclass
class Collector:
    """Where the proxies export OTLP (the local receiver's bound ports)."""

    host: str = "127.0.0.1"
    grpc_port: int | None = None
    http_port: int | None = None


@dataclass
class ProxyIdentity:
    """Who a proxy is (what istiod knows from the pod)."""

    pod: str
    namespace: str
    workload: str
    app: str
    version: str | None = None
    role: str = "sidecar"  # sidecar | gateway
    log_paths: dict[str, Path] = field(default_factory=dict)  # access-log format -> file

    @property
    def service_name(self) -> str:
        # Istio names a proxy's spans after its canonical service and namespace.
        return f"{self.app}.{self.namespace}"


def collector_cluster_name(spec: TelemetrySpec, protocol: str) -> str:
    return f"outbound|{COLLECTOR_PORTS[protocol]}||{spec.collector_service}"


def runtime_overrides(spec: TelemetrySpec) -> dict[str, Any]:
    """Runtime keys for the proxies: a short span flush interval so spans arrive within seconds."""
    return {"tracing.opentelemetry.flush_interval_ms": int(spec.flush_interval_ms),
            "tracing.opentelemetry.min_flush_spans": 1000}


def apply_telemetry(bootstrap: dict[str, Any], spec: TelemetrySpec, who: ProxyIdentity,
                    collector: Collector | None) -> dict[str, Any]:
    """Add access logs, the tracer and (optionally) the OpenTelemetry access logger to every HCM."""
    clusters = bootstrap["static_resources"]["clusters"]
    names = {c["name"] for c in clusters}
    tracer = None
    if spec.tracing and collector is not None:
        port = collector.grpc_port if spec.otlp_protocol == "grpc" else collector.http_port
        if port is None:
            raise ValueError(f"the collector has no {spec.otlp_protocol} port")
        cname = collector_cluster_name(spec, spec.otlp_protocol)
        if cname not in names:
            clusters.append(_static_cluster(cname, port, http2=spec.otlp_protocol == "grpc"))
            names.add(cname)
        tracer = _otel_tracer(spec, who, cname)
    otel_log_cluster = None
    if spec.otel_access_log and collector is not None and collector.grpc_port is not None:
        otel_log_cluster = collector_cluster_name(spec, "grpc")
        if otel_log_cluster not in names:
            clusters.append(_static_cluster(otel_log_cluster, collector.grpc_port, http2=True))
            names.add(otel_log_cluster)
    for _listener, hcm in iter_hcms(bootstrap):
        logs = [_file_log(fmt, path) for fmt, path in who.log_paths.items()]
        if otel_log_cluster:
            logs.append(_otel_access_log(who, otel_log_cluster))
        if logs:
            hcm["access_log"] = logs
        if tracer is not None:
            hcm.setdefault("tracing", {})
            hcm["tracing"]["provider"] = tracer
            hcm["tracing"]["random_sampling"] = {"value": float(spec.sampling)}
            hcm["tracing"]["custom_tags"] = _custom_tags(who)
    return bootstrap


def _file_log(fmt: str, path: Path) -> dict[str, Any]:
    log_format: dict[str, Any]
    if fmt == "json":
        log_format = {"json_format": ISTIO_JSON_FORMAT}
    else:
        log_format = {"text_format_source": {"inline_string": ISTIO_TEXT_FORMAT}}
    return {"name": "envoy.access_loggers.file", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
        "path": str(path), "log_format": log_format}}


def _otel_tracer(spec: TelemetrySpec, who: ProxyIdentity, cluster: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {"@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                           "service_name": who.service_name}
    if spec.otlp_protocol == "grpc":
        cfg["grpc_service"] = {"envoy_grpc": {"cluster_name": cluster}, "timeout": "5s"}
    else:
        cfg["http_service"] = {"http_uri": {"uri": f"http://{spec.collector_service}:4318/v1/traces",
                                            "cluster": cluster, "timeout": "5s"}}
    return {"name": "envoy.tracers.opentelemetry", "typed_config": cfg}


def _custom_tags(who: ProxyIdentity) -> list[dict[str, Any]]:
    tags = {"istio.canonical_service": who.app, "istio.namespace": who.namespace, "istio.mesh_id": "cluster.local",
            "istio.cluster_id": "Kubernetes", "k8s.pod.name": who.pod, "k8s.workload.name": who.workload}
    if who.version:
        tags["istio.canonical_revision"] = who.version
    return [{"tag": k, "literal": {"value": v}} for k, v in tags.items()]


def _otel_access_log(who: ProxyIdentity, cluster: str) -> dict[str, Any]:
    return {"name": "envoy.access_loggers.open_telemetry", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
        "log_name": "otel_envoy_accesslog",
        "grpc_service": {"envoy_grpc": {"cluster_name": cluster}},
        "resource_attributes": {"values": [
            {"key": "service.name", "value": {"string_value": who.service_name}},
            {"key": "k8s.pod.name", "value": {"string_value": who.pod}},
            {"key": "k8s.namespace.name", "value": {"string_value": who.namespace}},
        ]},
        "body": {"string_value": ISTIO_TEXT_FORMAT.rstrip("\n")},
        "attributes": {"values": [{"key": k, "value": {"string_value": v}} for k, v in ISTIO_JSON_FORMAT.items()]},
    }}
