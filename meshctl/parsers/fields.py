"""What each Envoy command operator, JSON key or OTLP attribute means in the requests table.

One catalog serves every access-log parser: a text format string (`%REQ(:METHOD)%`), an Envoy/Istio
JSON log (`"method": ...`), Linkerd's JSON log (`"total_ns": ...`) and OTLP log attributes all end
up as `Field(column, kind)`: the requests-table column (analyzers/table.py) and how to convert the
raw value (`kind`, see meshctl/parsers/normalize.py).

Columns starting with `_` are auxiliary: not stored, but read by identity resolution
(meshctl/identity.py), which drops them before the table is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Auxiliary columns (identity inputs; never stored).
AUX_DOWNSTREAM_LOCAL = "_downstream_local_address"
AUX_SNI = "_requested_server_name"
AUX_REPORTER_POD = "_reporter_pod"
AUX_COLUMNS = (AUX_DOWNSTREAM_LOCAL, AUX_SNI, AUX_REPORTER_POD)


@dataclass(frozen=True)
class Field:
    """Where a raw value goes and how to read it.

    kind: str | int | ms | us_ms | ns_ms | s_ms | time | flags | grpc | traceparent | epoch_ns | hexid | uri
          (an absolute or origin-form URI: path, and authority) | peer (Istio peer metadata: `column` is the side)
    arg: the operator argument when it matters (START_TIME's strftime format).
    """

    column: str
    kind: str = "str"
    arg: str | None = None


# ---- Envoy command operators --------------------------------------------------------------
# Keyed by the operator as written, upper-cased, with its argument (headers are case-insensitive).
_OPERATORS: dict[str, Field] = {
    "START_TIME": Field("timestamp", "time"),
    "DURATION": Field("duration_ms", "ms"),
    "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)": Field("upstream_service_time_ms", "ms"),
    "RESPONSE_CODE": Field("response_code", "int"),
    "GRPC_STATUS": Field("grpc_status", "grpc"),
    "GRPC_STATUS_NUMBER": Field("grpc_status", "grpc"),
    "RESPONSE_FLAGS": Field("response_flags", "flags"),
    "RESPONSE_FLAGS_LONG": Field("response_flags", "flags"),
    "RESPONSE_CODE_DETAILS": Field("response_code_details"),
    "REQ(:METHOD)": Field("method"),
    "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)": Field("path"),
    "REQ(:PATH)": Field("path"),
    "REQ(:PATH?X-ENVOY-ORIGINAL-PATH)": Field("path"),
    "REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)": Field("path"),
    "REQ_WITHOUT_QUERY(:PATH)": Field("path"),
    "REQ(:AUTHORITY)": Field("authority"),
    "REQ(HOST)": Field("authority"),
    "REQ(:AUTHORITY?HOST)": Field("authority"),
    "PROTOCOL": Field("protocol"),
    "REQ(USER-AGENT)": Field("user_agent"),
    "ROUTE_NAME": Field("route_name"),
    "BYTES_RECEIVED": Field("bytes_received", "int"),
    "BYTES_SENT": Field("bytes_sent", "int"),
    "DOWNSTREAM_REMOTE_ADDRESS": Field("downstream_remote_address"),
    "DOWNSTREAM_PEER_URI_SAN": Field("source_principal"),
    "UPSTREAM_HOST": Field("upstream_host"),
    "UPSTREAM_CLUSTER": Field("upstream_cluster"),
    "UPSTREAM_CLUSTER_RAW": Field("upstream_cluster"),
    "REQ(X-REQUEST-ID)": Field("request_id"),
    "TRACE_ID": Field("trace_id", "hexid"),
    "REQ(TRACEPARENT)": Field("trace_id", "traceparent"),
    "REQ(X-B3-TRACEID)": Field("trace_id", "hexid"),
    "REQ(X-B3-SPANID)": Field("span_id", "hexid"),
    "REQ(X-B3-PARENTSPANID)": Field("parent_span_id", "hexid"),
    "DOWNSTREAM_LOCAL_ADDRESS": Field(AUX_DOWNSTREAM_LOCAL),
    "REQUESTED_SERVER_NAME": Field(AUX_SNI),
    "ENVIRONMENT(POD_NAME)": Field(AUX_REPORTER_POD),
    "ENVIRONMENT(POD_NAMESPACE)": Field("reporter_namespace"),
    "ENVIRONMENT(HOSTNAME)": Field(AUX_REPORTER_POD),
}

# Istio peer metadata (filter_state.upstream_peer.* / downstream_peer.*, Istio >= 1.24 names;
# wasm.upstream_peer for older proxies): the upstream peer is the callee, the downstream peer the caller.
_PEER_FIELDS = {
    "workload": "workload", "namespace": "namespace", "app": "app", "version": "version",
    "cluster": "cluster", "service": "service", "name": "pod", "revision": "version",
}
_PEER_RE = re.compile(
    r"""^CEL\(\s*filter_state(?:\.|\[["'])(?:wasm\.)?(?P<side>upstream|downstream)_peer(?:["']\])?\.(?P<key>\w+)\s*\)$""",
    re.IGNORECASE,
)


def peer_column(side: str, key: str) -> str | None:
    """`upstream`/`downstream` peer metadata key → requests-table column (None if not kept)."""
    what = _PEER_FIELDS.get(key.lower())
    if what is None:
        return None
    prefix = "destination" if side.lower() == "upstream" else "source"
    if what == "pod":
        return None  # a pod name is not a column; the workload key carries identity
    if what == "service":
        return "destination_service" if prefix == "destination" else None
    return f"{prefix}_{what}"


def operator_field(op: str, arg: str | None = None) -> Field | None:
    """The field an Envoy command operator (`REQ`, `START_TIME`, ...) with its argument fills."""
    name = op.upper()
    if name == "START_TIME":
        return Field("timestamp", "time", arg)
    key = f"{name}({arg.upper()})" if arg is not None else name
    found = _OPERATORS.get(key)
    if found:
        return found
    if name == "CEL" and arg:
        m = _PEER_RE.match(f"CEL({arg})")
        if m:
            col = peer_column(m.group("side"), m.group("key"))
            return Field(col) if col else None
    return None


# ---- JSON keys ----------------------------------------------------------------------------
# Istio's JSON encoding (meshConfig.accessLogEncoding: JSON) uses these keys; custom JSON formats
# very often keep them. Values may be typed (numbers, null) or strings.
ISTIO_JSON_KEYS: dict[str, str] = {
    "start_time": "START_TIME",
    "route_name": "ROUTE_NAME",
    "method": "REQ(:METHOD)",
    "path": "REQ(X-ENVOY-ORIGINAL-PATH?:PATH)",
    "protocol": "PROTOCOL",
    "response_code": "RESPONSE_CODE",
    "response_flags": "RESPONSE_FLAGS",
    "response_code_details": "RESPONSE_CODE_DETAILS",
    "bytes_received": "BYTES_RECEIVED",
    "bytes_sent": "BYTES_SENT",
    "duration": "DURATION",
    "upstream_service_time": "RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)",
    "user_agent": "REQ(USER-AGENT)",
    "request_id": "REQ(X-REQUEST-ID)",
    "authority": "REQ(:AUTHORITY)",
    "upstream_host": "UPSTREAM_HOST",
    "upstream_cluster": "UPSTREAM_CLUSTER",
    "downstream_local_address": "DOWNSTREAM_LOCAL_ADDRESS",
    "downstream_remote_address": "DOWNSTREAM_REMOTE_ADDRESS",
    "requested_server_name": "REQUESTED_SERVER_NAME",
    # Common additions in custom formats.
    "grpc_status": "GRPC_STATUS",
    "trace_id": "TRACE_ID",
    "traceparent": "REQ(TRACEPARENT)",
    "x_request_id": "REQ(X-REQUEST-ID)",
    "downstream_peer_uri_san": "DOWNSTREAM_PEER_URI_SAN",
    "pod_name": "ENVIRONMENT(POD_NAME)",
    "pod_namespace": "ENVIRONMENT(POD_NAMESPACE)",
}

# Keys that name a requests-table column directly (custom formats built with CEL / peer metadata
# often use them, e.g. "source_workload": "%CEL(filter_state.downstream_peer.workload)%").
DIRECT_KEYS = (
    "source_workload", "source_namespace", "source_app", "source_version", "source_cluster",
    "source_principal", "destination_service", "destination_workload", "destination_namespace",
    "destination_app", "destination_version", "destination_subset", "destination_cluster",
    "span_id", "parent_span_id", "reporter_workload", "reporter_namespace",
)


def json_key_field(key: str) -> Field | None:
    """A JSON key of an Envoy/Istio JSON access log → its field (None: not used)."""
    op = ISTIO_JSON_KEYS.get(key)
    if op is not None:
        m = re.match(r"^([A-Z_]+)(?:\((.*)\))?$", op)
        assert m
        return operator_field(m.group(1), m.group(2))
    if key in DIRECT_KEYS:
        return Field(key, "hexid" if key.endswith("span_id") else "str")
    return None


# Linkerd proxy JSON access log (config.linkerd.io/access-log: json). Always the inbound side.
LINKERD_JSON_FIELDS: dict[str, Field] = {
    "timestamp": Field("timestamp", "time"),
    "client.addr": Field("downstream_remote_address"),
    "client.id": Field("source_principal"),
    "host": Field("authority"),
    "method": Field("method"),
    "uri": Field("path", "uri"),
    "version": Field("protocol"),
    "status": Field("response_code", "int"),
    "total_ns": Field("duration_ms", "ns_ms"),
    "request_bytes": Field("bytes_received", "int"),
    "response_bytes": Field("bytes_sent", "int"),
    "user_agent": Field("user_agent"),
    "trace_id": Field("trace_id", "hexid"),
}

# ---- Response flags -----------------------------------------------------------------------
# RESPONSE_FLAGS_LONG names → the short flags Istio's default format and analyzers use.
LONG_FLAGS: dict[str, str] = {
    "NoHealthyUpstream": "UH", "UpstreamConnectionFailure": "UF", "UpstreamOverflow": "UO",
    "NoRouteFound": "NR", "UpstreamRetryLimitExceeded": "URX", "NoClusterFound": "NC",
    "DurationTimeout": "DT", "DownstreamConnectionTermination": "DC", "FailedLocalHealthCheck": "LH",
    "UpstreamRequestTimeout": "UT", "LocalReset": "LR", "UpstreamRemoteReset": "UR",
    "UpstreamConnectionTermination": "UC", "DelayInjected": "DI", "FaultInjected": "FI",
    "RateLimited": "RL", "UnauthorizedExternalService": "UAEX", "RateLimitServiceError": "RLSE",
    "InvalidEnvoyRequestHeaders": "IH", "StreamIdleTimeout": "SI", "DownstreamProtocolError": "DPE",
    "UpstreamProtocolError": "UPE", "UpstreamMaxStreamDurationReached": "UMSDR",
    "ResponseFromCacheFilter": "RFCF", "NoFilterConfigFound": "NFCF", "OverloadManagerTerminated": "OM",
    "DnsResolutionFailed": "DF", "DropOverload": "DO", "DownstreamRemoteReset": "DR",
    "UnconditionalDropOverload": "UDO",
}

# gRPC status names (Envoy's %GRPC_STATUS% prints camel-case names by default).
GRPC_CODES: dict[str, int] = {
    name.lower(): i for i, name in enumerate([
        "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
        "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
        "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
    ])
}
GRPC_CODES.update({"cancelled": 1, "deadline_exceeded": 4, "not_found": 5, "already_exists": 6,
                   "permission_denied": 7, "resource_exhausted": 8, "failed_precondition": 9,
                   "out_of_range": 11, "data_loss": 15, "invalid_argument": 3})
