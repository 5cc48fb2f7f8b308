"""Spans → request rows: one normalized span table for every trace format, and client/server pairing.

Trace parsers (otlp_traces, jaeger, zipkin) turn their input into a **span table** (`SPAN_SCHEMA`):
one row per span with the ids, kind, timing, status, the service identity and the attributes meshctl
cares about, already mapped from the OpenTelemetry semantic conventions (old and new names), Jaeger
tags, Zipkin tags and Envoy's tracing tags. `pair_spans(spans)` then turns the span table into
requests-table rows (analyzers/table.py), one row per call:

* **client/server pairs**, as the OpenTelemetry Collector's servicegraph connector (and Tempo's
  service-graph processor) pair them: the server (or consumer) span whose parent is the client (or
  producer) span, or, in Zipkin, the server half that shares the client's span id (`shared: true`).
  A producer with several consumers gives one row per consumer.
* **uninstrumented callers**: a server span (or a span without a kind, from OpenTracing tracers) whose
  parent span is in another service but is not a client span pairs with that parent (Jaeger's
  dependency rule). A server span that started after its parent server span ended (a browser
  following a redirect) is a new request from an unknown caller.
* **virtual callees**: a client/producer span with no server side becomes a row whose destination is
  a virtual peer named from `peer.service`, Zipkin's remote service, `server.address` /
  `net.peer.name`, `db.namespace`/`db.name`, the HTTP host, or Envoy's `upstream_cluster`, with
  `destination_kind` database (db.* attributes, well-known database names), messaging (producers,
  messaging.* attributes, well-known brokers), external (any other named peer) or unknown (no name).
* **entry rows**: a root server span (or a root span without a kind that carries request attributes,
  or a root client span written by a proxy: a gateway) is a request from outside the traced system:
  `source_kind` user. A non-root server span whose caller is missing has `source_kind` unknown, or the
  kind of the peer it names (a consumer's messaging system, `peer.service`).
* **no double counting** through sidecars: a client span whose work continues in a client span of
  another service or of a proxy (app → its sidecar) gives no row of its own, and a server span nested
  inside a server span of its caller's proxy (sidecar → app) neither.

Row conventions (documented for readers of the table in docs/traces.md):
  timestamp / duration_ms   the client span's start and length (what the caller waited), or the server
                            span's when there is no client span; upstream_service_time_ms is the server
                            span's length when both exist
  source_* / destination_*  identity of the client and server sides (service.name → *_app after removing
                            a `.namespace` suffix Istio adds; k8s.* resource attributes → workload,
                            namespace, cluster; service.version / istio.canonical_revision → version);
                            destination_service is the server's service.name or the virtual peer's name;
                            a virtual caller's name is in source_app with source_kind set
  direction                 outbound when a client/producer span saw the call, inbound when only the
                            server side did, gateway when the client side is a non-sidecar proxy
  span_id / parent_span_id  span_id is the span that handled the call (server side, or the client span
                            for a virtual callee); parent_span_id is the span_id of the row the call was
                            made from (nearest ancestor that is another row's span), else the raw parent:
                            rows of one trace form a tree on (trace_id, parent_span_id) → span_id
  span_status               error when either side's status is ERROR (or an `error` tag), ok when set OK

Everything here is vectorized over Arrow/pandas columns; parsers only loop once over their input to
build the span table (or not at all: see otlp_traces' Arrow fast path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshctl.parsers.base import Reject

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

# ---------------------------------------------------------------------------------------------
# The span table
# ---------------------------------------------------------------------------------------------
# Core fields every parser sets from the span itself.
CORE_FIELDS: list[tuple[str, str]] = [
    ("trace_id", "string"),
    ("span_id", "string"),
    ("parent_span_id", "string"),
    ("kind", "string"),  # client | server | producer | consumer | internal | null (not said)
    ("shared", "bool"),  # Zipkin: the server half of a span id shared with its client
    ("name", "string"),
    ("start_us", "int64"),  # epoch microseconds
    ("duration_ms", "float64"),
    ("status", "string"),  # ok | error | null (unset)
    ("status_message", "string"),
    ("remote_service", "string"),  # Zipkin remoteEndpoint.serviceName
    ("local_addr", "string"),  # ip[:port] of the span's own process
    ("record_format", "string"),
    ("record_source", "string"),
    ("record_file", "string"),
    ("record_line", "int64"),
]

# Fields read from attributes (resource attributes, Jaeger process tags, span attributes/tags).
# key -> (field, priority): within one level (resource or span) the lowest priority number wins;
# a span attribute beats a resource attribute.
_ATTRS: list[tuple[str, list[str]]] = [
    ("service", ["service.name"]),
    ("service_namespace", ["service.namespace"]),
    ("service_version", ["service.version"]),
    ("k8s_namespace", ["k8s.namespace.name", "istio.namespace"]),
    ("k8s_pod", ["k8s.pod.name"]),
    ("k8s_workload", ["k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name",
                      "k8s.job.name", "k8s.cronjob.name"]),
    ("k8s_replicaset", ["k8s.replicaset.name"]),
    ("k8s_cluster", ["k8s.cluster.name", "istio.cluster_id"]),
    ("canonical_service", ["istio.canonical_service", "app.kubernetes.io/name", "k8s.pod.label.app", "app"]),
    ("canonical_revision", ["istio.canonical_revision", "app.kubernetes.io/version", "k8s.pod.label.version",
                            "version"]),
    ("kind_tag", ["span.kind"]),  # Jaeger / OpenTracing
    ("error_tag", ["error", "otel.status_code"]),
    ("error_message", ["otel.status_description", "error.message", "exception.message"]),
    ("method", ["http.request.method", "http.method"]),
    ("status_code", ["http.response.status_code", "http.status_code", "response_status_code",
                     "client_status_code"]),
    ("grpc_status", ["rpc.grpc.status_code", "grpc.status_code"]),
    ("url", ["url.full", "http.url"]),
    ("path", ["url.path", "http.target", "http.path", "http.uri"]),
    ("host", ["http.host", "http.request.header.host", "http.request.header.:authority"]),
    ("protocol", ["http.protocol", "network.protocol.name", "rpc.system"]),
    ("protocol_version", ["network.protocol.version", "http.flavor"]),
    ("user_agent", ["user_agent.original", "http.user_agent", "user_agent"]),
    ("route", ["http.route"]),
    ("peer_service", ["peer.service", "service.peer.name"]),
    ("server_address", ["server.address"]),
    ("server_port", ["server.port"]),
    ("net_peer_name", ["net.peer.name"]),
    ("net_peer_port", ["net.peer.port"]),
    ("peer_ip", ["network.peer.address", "net.sock.peer.addr", "net.peer.ip", "client.address", "peer.ipv4",
                 "peer.ipv6", "peer.address"]),
    ("peer_port", ["network.peer.port", "net.sock.peer.port", "client.port", "peer.port"]),
    ("host_ip", ["net.host.ip", "host.ip"]),
    ("host_port", ["net.host.port"]),
    ("db_system", ["db.system.name", "db.system", "db.type"]),
    ("db_name", ["db.namespace", "db.name", "db.instance"]),
    ("messaging_system", ["messaging.system"]),
    ("messaging_destination", ["messaging.destination.name", "messaging.destination", "kafka.topic",
                               "rabbit.exchange"]),
    ("upstream_cluster", ["upstream_cluster", "upstream_cluster.name"]),
    ("upstream_host", ["upstream_address"]),
    ("response_flags", ["response_flags"]),
    ("request_id", ["guid:x-request-id", "http.request.header.x-request-id", "x-request-id",
                    "http.request.header.x_request_id"]),
    ("node_id", ["node_id"]),
    ("component", ["component"]),
    ("bytes_received", ["http.request.body.size", "http.request_content_length", "request_size",
                        "http.request_content_length_uncompressed"]),
    ("bytes_sent", ["http.response.body.size", "http.response_content_length", "response_size",
                    "http.response_content_length_uncompressed"]),
]
ATTR_FIELDS: list[str] = [f for f, _ in _ATTRS]
KEYMAP: dict[str, tuple[str, int]] = {k: (f, i) for f, keys in _ATTRS for i, k in enumerate(keys)}
# Attribute-key prefixes that say "this call went to a database / a message broker" (Zipkin tags
# rarely carry db.system).
_DB_PREFIXES = ("db.", "sql.", "cassandra.", "mongodb.", "redis.", "memcached.", "elasticsearch.", "jdbc.")
_MSG_PREFIXES = ("messaging.", "kafka.", "rabbit.", "rabbitmq.", "amqp.", "jms.", "sqs.", "sns.", "nats.")
HINT_FIELDS = ["db_hint", "msg_hint"]

RAW_FIELDS: list[str] = [f for f, _ in CORE_FIELDS] + ATTR_FIELDS + HINT_FIELDS

# Well-known names of databases and brokers (OpenTelemetry db.system / messaging.system values and
# their common spellings), for Zipkin/Jaeger peers that only carry a name.
DATABASE_NAMES = frozenset({
    "mysql", "mariadb", "postgresql", "postgres", "pg", "redis", "memcache", "memcached", "mongodb",
    "mongo", "cassandra", "scylla", "elasticsearch", "opensearch", "oracle", "mssql", "sqlserver", "db2",
    "sqlite", "couchbase", "couchdb", "dynamodb", "hbase", "neo4j", "clickhouse", "cockroachdb", "etcd",
    "h2", "hsqldb", "derby", "firebird", "spanner", "bigtable", "cosmosdb", "influxdb", "riak", "valkey",
})
MESSAGING_NAMES = frozenset({
    "kafka", "rabbitmq", "activemq", "artemis", "nats", "pulsar", "sqs", "sns", "kinesis", "pubsub",
    "gcp_pubsub", "eventhubs", "servicebus", "rocketmq", "jms", "amqp", "mqtt", "nsq", "zeromq",
})

_KIND_NAMES = {
    "client": "client", "server": "server", "producer": "producer", "consumer": "consumer",
    "internal": "internal", "span_kind_client": "client", "span_kind_server": "server",
    "span_kind_producer": "producer", "span_kind_consumer": "consumer", "span_kind_internal": "internal",
    "1": "internal", "2": "server", "3": "client", "4": "producer", "5": "consumer",
    "0": None, "span_kind_unspecified": None, "unspecified": None,
    # OpenTracing spellings
    "rpc.client": "client", "rpc.server": "server",
}
_UNNAMED_SERVICES = frozenset({"", "unknown", "unknown_service"})


def kind_name(value: Any) -> str | None:
    """OTLP enum number/name, Zipkin `CLIENT`, Jaeger `span.kind` value → client|server|... or None."""
    if value is None:
        return None
    return _KIND_NAMES.get(str(value).strip().lower())


_HEX = re.compile(r"[0-9a-fA-F]+")


def normalize_id(value: Any) -> str | None:
    """A trace/span id as lower-case hex: hex as written (Jaeger's dropped leading zeros restored to 16 or
    32 digits), or base64 (OTLP protobuf-JSON as Tempo and jsonpb write it) decoded. '' / all-zero → None."""
    if value is None:
        return None
    s = str(value).strip()
    if not s:
        return None
    if _HEX.fullmatch(s) and (len(s) <= 32):
        s = s.lower()
        if len(s) < 16:
            s = s.rjust(16, "0")
        elif 16 < len(s) < 32:
            s = s.rjust(32, "0")
    else:
        import base64
        import binascii

        try:
            raw = base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"not a hex or base64 id: {s[:40]!r}") from None
        if len(raw) not in (8, 16):
            raise ValueError(f"id of {len(raw)} bytes (expected 8 or 16): {s[:40]!r}")
        s = raw.hex()
    if s.strip("0") == "":
        return None
    return s


def attr_fields(items: Iterable[tuple[str, Any]], into: dict[str, Any] | None = None) -> dict[str, Any]:
    """Map (key, value) attribute pairs to span-table fields (see _ATTRS), highest priority key winning.

    Values are kept as Python scalars (str/int/float/bool); the span table casts them once, vectorized.
    Keys that mark a database or messaging call set `db_hint` / `msg_hint`."""
    out: dict[str, Any] = {} if into is None else into
    prio: dict[str, int] = {}
    for key, value in items:
        hit = KEYMAP.get(key)
        if hit is not None:
            if value is None or value == "":
                continue
            fname, p = hit
            if p < prio.get(fname, 99):
                out[fname] = value
                prio[fname] = p
        elif key.startswith(_DB_PREFIXES):
            out["db_hint"] = True
        elif key.startswith(_MSG_PREFIXES):
            out["msg_hint"] = True
    return out


@dataclass
class SpanResult:
    """What a trace parser returns: the span table, rejects, and how many spans (records) it read."""

    spans: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    records: int = 0
    format: str | None = None

    @property
    def count(self) -> int:
        return self.spans.num_rows


class SpanTableBuilder:
    """Accumulates spans (dicts of RAW_FIELDS) and turns them into the span table once."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def table(self) -> pa.Table:
        return raw_to_span_table(self.rows)


def _raw_schema() -> pa.Schema:
    import pyarrow as pa

    types = {"string": pa.string(), "bool": pa.bool_(), "int64": pa.int64(), "float64": pa.float64()}
    fields = [pa.field(n, types[t]) for n, t in CORE_FIELDS]
    fields += [pa.field(n, pa.string()) for n in ATTR_FIELDS]
    fields += [pa.field(n, pa.bool_()) for n in HINT_FIELDS]
    return pa.schema(fields)


def raw_to_span_table(rows: list[dict[str, Any]]) -> pa.Table:
    """List of span dicts → the span table (attribute values stringified, then normalized)."""
    import pyarrow as pa

    schema = _raw_schema()
    cols: dict[str, list[Any]] = {}
    for f in schema:
        name = f.name
        if f.type == pa.string() and name in ATTR_FIELDS:
            cols[name] = [_as_text(r.get(name)) for r in rows]
        else:
            cols[name] = [r.get(name) for r in rows]
    table = pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in schema}, schema=schema)
    return finish_span_table(table)


def _as_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v) if v else None
    return str(v)


# Identity and typed columns the pairing reads (derived from the raw columns in finish_span_table).
SPAN_SCHEMA_EXTRA = [
    ("app", "string"), ("workload", "string"), ("namespace", "string"), ("version", "string"),
    ("cluster", "string"), ("is_proxy", "bool"), ("is_sidecar", "bool"), ("is_gateway", "bool"),
    ("authority", "string"),
    ("status_code_i", "int32"), ("grpc_status_i", "int32"),
    ("bytes_received_i", "int64"), ("bytes_sent_i", "int64"), ("proto", "string"),
]


def span_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(list(_raw_schema()) + [pa.field(n, _arrow_type(t)) for n, t in SPAN_SCHEMA_EXTRA])


# Pod names: <workload>-<replicaset hash>-<pod hash> (Deployments, Argo Rollouts), <workload>-<5 chars>
# (DaemonSets, Jobs), <statefulset>-<ordinal>.
_POD_RS = r"^(.+?)-[0-9a-f]{6,10}-[0-9a-z]{5}$"
_POD_SHORT = r"^(.+?)-[0-9a-z]{5}$"
_RS = r"^(.+?)-[0-9a-f]{6,10}$"
# Envoy node id: sidecar~10.1.2.3~reviews-v2-5d8f8b8b7c-abcde.default~default.svc.cluster.local
_NODE_ID = r"^(?P<t>sidecar|router|ingress)~[^~]*~(?P<pod>[^.~]+)\.(?P<ns>[^~]+)~"


def finish_span_table(raw: pa.Table) -> pa.Table:
    """Derive the identity and typed columns from the raw span columns (vectorized)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = raw.combine_chunks()
    n = raw.num_rows

    def col(name: str) -> pa.Array:
        c = raw.column(name)
        return c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()

    def blank_to_null(a):
        return pc.if_else(pc.equal(a, ""), pa.scalar(None, pa.string()), a)

    def coalesce(*arrays):
        return pc.coalesce(*arrays)

    # Service names a tracer uses when it does not know its own name count as no name.
    svc = col("service")
    svc_l = pc.utf8_lower(svc)
    unnamed = pc.or_(pc.is_in(svc_l, value_set=pa.array(sorted(_UNNAMED_SERVICES))),
                     pc.starts_with(svc_l, "unknown_service:"))
    svc = pc.if_else(unnamed, pa.scalar(None, pa.string()), svc)

    # Envoy node id → pod and namespace (sidecars, gateways).
    node = col("node_id")
    node_parts = pc.extract_regex(node, _NODE_ID)
    node_type = node_parts.field("t") if n else pa.array([], pa.string())
    node_pod = node_parts.field("pod") if n else pa.array([], pa.string())
    node_ns = node_parts.field("ns") if n else pa.array([], pa.string())
    node_ns = pc.if_else(pc.is_valid(node_parts), node_ns, pa.scalar(None, pa.string()))
    node_pod = pc.if_else(pc.is_valid(node_parts), node_pod, pa.scalar(None, pa.string()))
    node_type = pc.if_else(pc.is_valid(node_parts), node_type, pa.scalar(None, pa.string()))

    namespace = coalesce(col("k8s_namespace"), col("service_namespace"), node_ns)
    pod = coalesce(col("k8s_pod"), node_pod)
    workload = coalesce(col("k8s_workload"), _strip(col("k8s_replicaset"), _RS), _pod_workload(pod))

    # Istio names sidecar spans `<app>.<namespace>`; the app is the part before the namespace.
    suffix_ns = pc.binary_join_element_wise(pa.scalar("."), namespace, "") if n else pa.array([], pa.string())
    svc_ns_stripped = _strip_suffix(svc, suffix_ns)
    app = coalesce(col("canonical_service"), svc_ns_stripped)
    version = coalesce(col("canonical_revision"), col("service_version"))
    cluster = col("k8s_cluster")

    component = pc.utf8_lower(col("component"))
    is_proxy = pc.fill_null(pc.or_kleene(pc.equal(component, "proxy"), pc.is_valid(node_type)), False)
    # Sidecar or gateway: from the Envoy node id; without one, only sidecars have inbound| clusters.
    is_sidecar = pc.fill_null(pc.equal(node_type, "sidecar"), False)
    is_gateway = pc.fill_null(pc.is_in(node_type, value_set=pa.array(["router", "ingress"])), False)
    uc = col("upstream_cluster")
    is_sidecar = pc.or_(is_sidecar, pc.and_(pc.is_null(node_type),
                                            pc.fill_null(pc.starts_with(uc, "inbound|"), False)))

    # Authority: the Host header, else the URL's host.
    url_host = pc.extract_regex(col("url"), r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/]*@)?(?P<h>[^/?#]+)")
    url_host = pc.if_else(pc.is_valid(url_host), url_host.field("h"), _null()) if n else pa.array([], pa.string())
    authority = coalesce(blank_to_null(col("host")), url_host)
    # Path: url.path / http.target without the query, else the URL's path.
    url_path = pc.extract_regex(col("url"), r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*(?P<p>/[^?#]*)")
    url_path = pc.if_else(pc.is_valid(url_path), url_path.field("p"), _null()) if n else pa.array([], pa.string())
    path = coalesce(_strip(col("path"), r"^([^?#]*)"), url_path)

    # Response flags: '-' means none.
    flags = col("response_flags")
    flags = pc.if_else(pc.is_in(flags, value_set=pa.array(["-", ""])), pa.scalar(None, pa.string()), flags)

    proto = _protocol(col("protocol"), col("protocol_version"), col("grpc_status"))

    out = raw
    for name, arr in (("service", svc), ("path", path), ("response_flags", flags)):
        out = out.set_column(out.schema.get_field_index(name), name, arr)
    extras = {
        "app": app, "workload": workload, "namespace": namespace, "version": version, "cluster": cluster,
        "is_proxy": is_proxy, "is_sidecar": is_sidecar, "is_gateway": is_gateway, "authority": authority,
        "status_code_i": _to_int(col("status_code"), pa.int32()),
        "grpc_status_i": _to_int(col("grpc_status"), pa.int32()),
        "bytes_received_i": _to_int(col("bytes_received"), pa.int64()),
        "bytes_sent_i": _to_int(col("bytes_sent"), pa.int64()),
        "proto": proto,
    }
    for name, t in SPAN_SCHEMA_EXTRA:
        arr = extras[name]
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        out = out.append_column(name, arr.cast(t) if not arr.type.equals(_arrow_type(t)) else arr)
    return out


def _arrow_type(t: str):
    import pyarrow as pa

    return {"string": pa.string(), "bool": pa.bool_(), "int64": pa.int64(), "int32": pa.int32(),
            "float64": pa.float64()}[t]


def _strip(arr, pattern: str):
    """First capture group of `pattern` (null when it does not match)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(arr) == 0:
        return pa.array([], pa.string())
    pat = pattern.replace("(", "(?P<g>", 1) if "(?P<" not in pattern else pattern
    m = pc.extract_regex(arr, pat)
    return pc.if_else(pc.is_valid(m), m.field(0), pa.scalar(None, pa.string()))


def _pod_workload(pod):
    import pyarrow.compute as pc

    return pc.coalesce(_strip(pod, _POD_RS), _strip(pod, _POD_SHORT))


def _strip_suffix(values, suffixes):
    """values with `suffixes` (row-wise) removed when they end with it and are longer; else unchanged."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(values) == 0:
        return pa.array([], pa.string())
    vlen = pc.utf8_length(values)
    slen = pc.utf8_length(suffixes)
    keep = pc.subtract(vlen, pc.fill_null(slen, 0))
    head = pc.utf8_slice_codeunits(values, 0, 1 << 30)
    # Row-wise "ends with": compare the tail of the value with the suffix.
    tail_start = pc.if_else(pc.greater(keep, 0), keep, pa.scalar(0, keep.type))
    tails = _slice_from(values, tail_start)
    ok = pc.fill_null(pc.and_(pc.greater(slen, 1), pc.and_(pc.greater(keep, 0), pc.equal(tails, suffixes))), False)
    return pc.if_else(ok, _slice_to(head, keep), values)


def _slice_from(values, starts):
    """values[i][starts[i]:] (row-wise start offsets)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    # Group by distinct offsets: few distinct namespace lengths in practice.
    starts_np = pc.fill_null(starts, 0).to_numpy(zero_copy_only=False)
    out = pa.nulls(len(values), pa.string())
    for st in np.unique(starts_np):
        mask = pa.array(starts_np == st)
        out = pc.if_else(mask, pc.utf8_slice_codeunits(values, int(st), 1 << 30), out)
    return out


def _slice_to(values, stops):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    stops_np = pc.fill_null(stops, 0).to_numpy(zero_copy_only=False)
    out = pa.nulls(len(values), pa.string())
    for st in np.unique(stops_np):
        mask = pa.array(stops_np == st)
        out = pc.if_else(mask, pc.utf8_slice_codeunits(values, 0, int(max(st, 0))), out)
    return out


def _to_int(arr, t):
    """Strings like '200', '200.0', 'OK'(→null) → integers; never raises."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(arr) == 0:
        return pa.array([], t)
    ok = pc.fill_null(pc.match_substring_regex(arr, r"^\s*-?\d+(\.0+)?\s*$"), False)
    clean = pc.if_else(ok, pc.utf8_trim_whitespace(arr), pa.scalar(None, pa.string()))
    clean = _strip(clean, r"^(-?\d+)")
    as64 = pc.cast(clean, pa.int64(), safe=False)
    if t == pa.int32():
        in_range = pc.fill_null(pc.and_(pc.greater_equal(as64, -(2**31)), pc.less(as64, 2**31)), False)
        as64 = pc.if_else(in_range, as64, pa.scalar(None, pa.int64()))
    return pc.cast(as64, t)


_GRPC = {"grpc": "gRPC"}


def _protocol(protocol, version, grpc_status):
    """http.protocol ('HTTP/1.1'), network.protocol.name+version, http.flavor, rpc.system → one string."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(protocol) == 0:
        return pa.array([], pa.string())
    p = pc.utf8_lower(protocol)
    is_grpc = pc.or_kleene(pc.equal(p, "grpc"), pc.is_valid(grpc_status))
    has_slash = pc.fill_null(pc.match_substring(protocol, "/"), False)
    v = pc.utf8_trim(version, characters=" ")
    v = pc.if_else(pc.equal(v, "2.0"), pa.scalar("2"), v)
    v = pc.if_else(pc.equal(v, "3.0"), pa.scalar("3"), v)
    name = pc.if_else(pc.or_kleene(pc.is_null(p), pc.equal(p, "http")), pa.scalar("HTTP"), pc.utf8_upper(protocol))
    joined = pc.binary_join_element_wise(name, v, "/")
    out = pc.if_else(has_slash, protocol, pc.if_else(pc.is_valid(v), joined, protocol))
    out = pc.if_else(pc.fill_null(is_grpc, False), pa.scalar("gRPC"), out)
    return out


def empty_span_table() -> pa.Table:
    return raw_to_span_table([])


def concat_span_tables(tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    tables = [t for t in tables if t is not None]
    if not tables:
        return empty_span_table()
    return pa.concat_tables(tables, promote_options="none")


# ---------------------------------------------------------------------------------------------
# Pairing
# ---------------------------------------------------------------------------------------------
_KIND_CODES = ["client", "producer", "server", "consumer", "internal"]  # codes 1..5; 0 = not said
K_NONE, K_CLIENT, K_PRODUCER, K_SERVER, K_CONSUMER, K_INTERNAL = range(6)


class _Spans:
    """The span table as single-chunk Arrow columns plus a few numpy views, for the pairing steps."""

    def __init__(self, table: pa.Table) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        self.t = table.combine_chunks()
        self.n = self.t.num_rows
        k = pc.index_in(self.col("kind"), value_set=pa.array(_KIND_CODES))
        self.kind = pc.fill_null(k, -1).to_numpy(zero_copy_only=False).astype(np.int8) + 1
        self.key = _keys(self.col("trace_id"), self.col("span_id"))

    def col(self, name: str) -> pa.Array:
        c = self.t.column(name)
        return c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()

    def np(self, name: str, fill: Any = None) -> Any:
        import pyarrow.compute as pc

        c = self.col(name)
        if fill is not None:
            c = pc.fill_null(c, fill)
        return c.to_numpy(zero_copy_only=False)

    def take(self, name: str, ix: Any) -> pa.Array:
        import pyarrow as pa

        return self.col(name).take(pa.array(ix, type=pa.int64(), mask=ix < 0))

    def set(self, name: str, arr: pa.Array) -> None:
        self.t = self.t.set_column(self.t.schema.get_field_index(name), name, arr)


def _keys(trace: pa.Array, ids: pa.Array) -> Any:
    """'trace:span' keys as a numpy object array (None where the id is null)."""
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(trace, ids, ":").to_numpy(zero_copy_only=False)


def _index_of(keys: Any, where: Any) -> Any:
    """Position of each of `keys` in the unique-keyed array `where` (-1 when absent or null)."""
    import numpy as np
    import pandas as pd

    ix = pd.Index(where).get_indexer(pd.Index(keys))
    return np.asarray(ix, dtype=np.int64)


def _m(mask: Any) -> pa.Array:
    import pyarrow as pa

    return pa.array(mask, type=pa.bool_())


def _null(t: pa.DataType | None = None) -> pa.Scalar:
    import pyarrow as pa

    return pa.scalar(None, t or pa.string())


def _isnull(a: pa.Array) -> Any:
    import pyarrow.compute as pc

    return pc.is_null(a).to_numpy(zero_copy_only=False)


def pair_spans(spans: pa.Table) -> pa.Table:
    """The span table → requests-table rows (an Arrow table conforming to analyzers/table.py)."""
    import numpy as np
    import pandas as pd
    import pyarrow.compute as pc

    from analyzers import table as rt

    if spans.num_rows == 0:
        return rt.empty_arrow()
    # Spans without ids cannot take part; the same span collected twice (overlapping files or API
    # pages) counts once.
    spans = spans.filter(pc.and_(pc.is_valid(spans.column("trace_id")), pc.is_valid(spans.column("span_id"))))
    if spans.num_rows == 0:
        return rt.empty_arrow()
    dkey = pd.DataFrame({c: spans.column(c).to_numpy() for c in ("trace_id", "span_id", "kind", "service",
                                                                 "start_us")})
    dup = dkey.duplicated().to_numpy()
    if dup.any():
        spans = spans.filter(_m(~dup))
    S = _Spans(spans)
    n, kind = S.n, S.kind
    idx = np.arange(n, dtype=np.int64)
    is_client = (kind == K_CLIENT) | (kind == K_PRODUCER)
    is_server = (kind == K_SERVER) | (kind == K_CONSUMER)
    no_kind = kind == K_NONE
    shared = S.np("shared", False).astype(bool)
    start = S.np("start_us").astype("float64")
    dur = S.np("duration_ms", 0.0).astype("float64")
    end = start + dur * 1000.0

    # Parent lookup on (trace, id). Where Zipkin shares an id between a client and a server half, a
    # child belongs to the server half (it ran in the server's process).
    rank = np.where(is_server, 0, np.where(is_client, 2, 1))
    order = np.lexsort((idx, rank))
    keys_sorted = S.key[order]
    first = ~pd.Series(keys_sorted).duplicated().to_numpy()
    uniq_keys, uniq_ix = keys_sorted[first], order[first]
    pkeys = _keys(S.col("trace_id"), S.col("parent_span_id"))
    pos = _index_of(pkeys, uniq_keys)
    parent = np.where(pos >= 0, uniq_ix[np.maximum(pos, 0)], -1)
    has_parent_id = S.np("parent_span_id") != None  # noqa: E711 - elementwise on an object array
    has_p = parent >= 0
    pp = np.maximum(parent, 0)

    # A span that does not know its service (Zipkin `unknown`, an Envoy without --service-cluster)
    # runs in its parent's process: it borrows the parent's identity.
    no_svc = _isnull(S.col("service")) & has_p
    if no_svc.any():
        src = np.where(no_svc, parent, idx)
        for c in ("service", "app", "workload", "namespace", "version", "cluster"):
            S.set(c, S.take(c, src))
    service = S.np("service")
    is_proxy = S.np("is_proxy", False).astype(bool)

    # 1. client/producer ↔ server/consumer: the server's parent (or, when shared, its own id) is the
    #    client. A producer with several consumers pairs with each.
    link = np.where(shared, S.key, pkeys)
    c_ix = idx[is_client]
    ckeys = S.key[c_ix]
    cfirst = ~pd.Series(ckeys).duplicated().to_numpy()
    ckeys, c_ix = ckeys[cfirst], c_ix[cfirst]
    s_ix = idx[is_server]
    hit = _index_of(link[s_ix], ckeys)
    ok = hit >= 0
    pair_c = [c_ix[hit[ok]]]
    pair_s = [s_ix[ok]]
    paired_server = np.zeros(n, dtype=bool)
    paired_server[s_ix[ok]] = True

    # 2. a server span (or a span without a kind, OpenTracing-style) whose caller left no client span:
    #    the parent span in the other service is the caller (Jaeger's dependency rule). A server span
    #    nested in its parent server span is the same request handled twice (sidecar → app, or two
    #    instrumentations); one that starts after its parent server span ended is a new request.
    p_kind = np.where(has_p, kind[pp], -1)
    p_serverish = (p_kind == K_SERVER) | (p_kind == K_CONSUMER)
    p_service = np.where(has_p, service[pp], None)
    other_service = (service != None) & (p_service != None) & (service != p_service)  # noqa: E711
    rest_server = is_server & ~paired_server
    nested = has_p & p_serverish & (start >= np.where(has_p, start[pp], 0) - 1000.0) & \
        (start < np.where(has_p, end[pp], 0))
    by_parent = has_p & ~is_client & (
        (rest_server & ~p_serverish) | (rest_server & shared) | (no_kind & other_service)
    )
    hop = rest_server & has_p & p_serverish & nested & ~shared
    pair_c.append(parent[by_parent])
    pair_s.append(idx[by_parent])
    paired_server |= by_parent

    # 3. server spans with no caller in the data (a root: from a user; else an unknown or virtual
    #    caller), and roots without a kind that carry request attributes.
    looks_like_request = ~(_isnull(S.col("method")) & _isnull(S.col("status_code_i"))
                           & _isnull(S.col("grpc_status_i")) & _isnull(S.col("url")))
    entry = (rest_server & ~paired_server & ~hop) | (no_kind & ~has_parent_id & looks_like_request & ~paired_server)
    # A root client span written by a gateway proxy (Envoy node type router) also received the request
    # first: the user → gateway request is a row of its own. (A sidecar's root client span is its app's
    # call, not a user's.)
    gateway_entry = is_client & S.np("is_gateway", False).astype(bool) & ~has_parent_id

    # 4. client spans with no server side → virtual callee; unless the call continues in a child client
    #    span of another service or of a proxy (the app's span above its sidecar's span).
    all_c = np.concatenate(pair_c)
    paired_client = np.zeros(n, dtype=bool)
    paired_client[all_c] = True
    child_client = is_client & has_p & (other_service | is_proxy)
    delegated = np.zeros(n, dtype=bool)
    par = parent[child_client]
    delegated[par[is_client[par]]] = True
    virtual = is_client & ~paired_client & ~delegated

    nv, ne, ng = int(virtual.sum()), int(entry.sum()), int(gateway_entry.sum())
    c = np.concatenate([*pair_c, idx[virtual], np.full(ne, -1), idx[gateway_entry]]).astype(np.int64)
    s = np.concatenate([*pair_s, np.full(nv, -1), idx[entry], np.full(ng, -1)]).astype(np.int64)
    how = np.concatenate([np.zeros(len(pair_c[0]), np.int8), np.ones(len(pair_c[1]), np.int8),
                          np.zeros(nv + ne, np.int8), np.full(ng, 2, np.int8)])
    rows = _build_rows(S, c, s, how, parent)
    return rt.conform_arrow(rows)


def _build_rows(S: _Spans, c: Any, s: Any, how: Any, parent: Any) -> pa.Table:
    """Requests-table columns from (caller-side span, callee-side span) index pairs (-1: absent).

    how: 0 = the caller side is a client/producer span (or a virtual callee / an entry row),
         1 = the caller side is a parent span that is not a client span (an uninstrumented call),
         2 = a gateway's entry row (c is the proxy's root client span, the callee is the proxy)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(c)
    has_c, has_s = c >= 0, s >= 0
    gw = how == 2
    ckind = np.where(has_c, S.kind[np.maximum(c, 0)], -1)
    skind = np.where(has_s, S.kind[np.maximum(s, 0)], -1)
    c_is_call = has_c & ~gw & ((ckind == K_CLIENT) | (ckind == K_PRODUCER) | (ckind == K_NONE))
    c_fields = c_is_call | gw  # the caller's span describes this call

    def C(name: str) -> pa.Array:
        return S.take(name, c)

    def Sv(name: str) -> pa.Array:
        return S.take(name, s)

    def Cc(name: str) -> pa.Array:
        """Caller-side field only where the caller's span is the call itself."""
        a = C(name)
        return pc.if_else(_m(c_fields), a, _null(a.type))

    def pick(name: str, prefer_server: bool = False) -> pa.Array:
        a, b = Cc(name), Sv(name)
        return pc.coalesce(b, a) if prefer_server else pc.coalesce(a, b)

    def where(mask: Any, a: Any, b: Any) -> pa.Array:
        return pc.if_else(_m(mask), a, b)

    # Timing.
    start_c, start_s = C("start_us"), Sv("start_us")
    dur_c, dur_s = C("duration_ms"), Sv("duration_ms")
    caller_time = c_is_call | gw | ~has_s
    # One client/producer span answered by several servers/consumers (a message fan-out): each
    # delivery is its own row, stamped with its own start so that the rows stay distinct.
    fan = np.zeros(n, dtype=bool)
    if has_s.any():
        paired_c = np.where(has_c & has_s, c, -1)
        counts = np.bincount(paired_c[paired_c >= 0], minlength=S.n)
        fan = (paired_c >= 0) & (counts[np.maximum(paired_c, 0)] > 1)
    ts = where(caller_time & ~fan, start_c, start_s)
    duration = where(caller_time, dur_c, dur_s)
    upstream_time = where(c_is_call & has_s, dur_s, _null(pa.float64()))

    # Status.
    def failed(status: pa.Array, err: pa.Array) -> Any:
        e = pc.utf8_lower(err)
        bad = pc.and_(pc.is_valid(e), pc.invert(pc.is_in(e, value_set=pa.array(["false", "0", "ok", "unset"]))))
        return pc.fill_null(pc.or_(pc.equal(status, "error"), bad), False).to_numpy(zero_copy_only=False) | \
            pc.fill_null(pc.equal(status, "error"), False).to_numpy(zero_copy_only=False)

    is_err = failed(Cc("status"), Cc("error_tag")) | failed(Sv("status"), Sv("error_tag"))
    is_ok = pc.fill_null(pc.or_(pc.equal(Cc("status"), "ok"), pc.equal(Sv("status"), "ok")), False).to_numpy(
        zero_copy_only=False)
    span_status = np.where(is_err, "error", np.where(is_ok, "ok", None)).astype(object)

    # Source: the caller's identity, or a virtual / user / unknown caller.
    ident = ("app", "workload", "namespace", "version", "cluster")
    src = {k: where(has_c & ~gw, C(k), _null()) for k in ident}
    peer = pc.coalesce(Sv("peer_service"), Sv("remote_service"))
    consumer_msg = pc.if_else(pc.and_(_m(skind == K_CONSUMER), pc.is_null(peer)), Sv("messaging_system"), _null())
    vname = pc.coalesce(peer, consumer_msg)
    vkind = np.where(~_isnull(consumer_msg) | _known(peer, MESSAGING_NAMES), "messaging", "external")
    root = _isnull(Sv("parent_span_id"))
    no_caller = ~has_c
    source_kind = np.where(no_caller, np.where(~_isnull(vname), vkind, np.where(root, "user", "unknown")), None)
    source_kind = np.where(gw, "user", source_kind).astype(object)
    src["app"] = where(no_caller, vname, src["app"])

    # Destination: the callee's identity, or a virtual peer named by the caller's attributes.
    dst = {k: where(has_s, Sv(k), _null()) for k in ident}
    dst_service = where(has_s, Sv("service"), _null())
    dst_kind = np.full(n, None, dtype=object)
    uc = pick("upstream_cluster")
    uc_host, uc_subset = _parse_cluster(uc)
    only_c = has_c & ~has_s & ~gw
    if only_c.any():
        name, kind_v = _virtual_peer(S, c)
        dst_service = where(only_c, name, dst_service)
        dst_kind = np.where(only_c, kind_v, dst_kind)
    if gw.any():  # the gateway proxy is the callee of the user's request
        for k in ident:
            dst[k] = where(gw, C(k), dst[k])
        dst_service = where(gw, C("service"), dst_service)
        dst_kind = np.where(gw, "gateway", dst_kind)
    # A proxy span with no service name (an Envoy without --service-cluster): its upstream cluster or
    # authority names where the request went.
    proxy_s = has_s & S.np("is_proxy", False).astype(bool)[np.maximum(s, 0)] & _isnull(dst_service) & ~gw
    if proxy_s.any():
        dst_service = where(proxy_s, pc.coalesce(uc_host, _host_only(pick("authority")), _cluster_name(uc)),
                            dst_service)

    # Direction and the reporting span.
    c_gateway = has_c & S.np("is_gateway", False).astype(bool)[np.maximum(c, 0)]
    direction = np.where(gw, "inbound", np.where(c_is_call, np.where(c_gateway, "gateway", "outbound"),
                                                 "inbound")).astype(object)
    rep = np.where(c_is_call | gw, c, s)

    # Correlation: span_id is the span that handled the call; rows form a tree (module docstring).
    span_id = where(gw, C("span_id"), where(has_s, Sv("span_id"), C("span_id")))
    first = np.where(c_is_call | gw, c, np.where(has_s, s, c))
    # A gateway's forwarded call hangs under the gateway's entry row (which carries the proxy span's id).
    gw_spans = np.zeros(S.n, dtype=bool)
    gw_spans[c[gw]] = True
    parent_row = _calling_row(S, first, span_id, parent, np.where((how == 0) & has_c & has_s, c, -1), gw_spans)

    ts_us = pc.cast(ts, pa.int64())
    cols: dict[str, Any] = {
        "timestamp": pc.cast(ts_us, pa.timestamp("us", tz="UTC")),
        "duration_ms": duration,
        "upstream_service_time_ms": upstream_time,
        "response_code": pick("status_code_i", prefer_server=True),
        "grpc_status": pick("grpc_status_i", prefer_server=True),
        "response_flags": pick("response_flags"),
        "method": pick("method"),
        "authority": pick("authority"),
        "path": pick("path", prefer_server=True),
        "protocol": pc.coalesce(pick("proto"), _call_protocol(S, c, s, ckind, skind)),
        "user_agent": pick("user_agent", prefer_server=True),
        "route_name": Sv("route"),
        "bytes_received": pick("bytes_received_i", prefer_server=True),
        "bytes_sent": pick("bytes_sent_i", prefer_server=True),
        "source_workload": src["workload"],
        "source_namespace": src["namespace"],
        "source_app": src["app"],
        "source_version": src["version"],
        "source_cluster": src["cluster"],
        "source_kind": pa.array(source_kind, pa.string()),
        "downstream_remote_address": _addr(Sv("peer_ip"), Sv("peer_port")),
        "destination_service": dst_service,
        "destination_workload": dst["workload"],
        "destination_namespace": dst["namespace"],
        "destination_app": dst["app"],
        "destination_version": dst["version"],
        "destination_subset": uc_subset,
        "destination_cluster": dst["cluster"],
        "destination_kind": pa.array(dst_kind, pa.string()),
        "upstream_host": pc.coalesce(Cc("upstream_host"), where(c_is_call, _addr(C("peer_ip"), C("peer_port")),
                                                                _null()), Sv("local_addr")),
        "upstream_cluster": uc,
        "direction": pa.array(direction, pa.string()),
        "reporter_workload": pc.coalesce(S.take("workload", rep), S.take("app", rep)),
        "reporter_namespace": S.take("namespace", rep),
        "trace_id": where(has_s, Sv("trace_id"), C("trace_id")),
        "span_id": span_id,
        "parent_span_id": pa.array(parent_row, pa.string()),
        "request_id": pick("request_id"),
        "span_status": pa.array(span_status, pa.string()),
        "record_kind": pa.array(np.full(n, "span", dtype=object), pa.string()),
        "record_format": S.take("record_format", rep),
        "record_source": S.take("record_source", rep),
        "record_file": S.take("record_file", rep),
        "record_line": S.take("record_line", rep),
    }
    table = pa.table(cols)
    # Input order of the reporting spans (file, then position), so output is reproducible.
    line = S.np("record_line", 0).astype(np.int64)[np.maximum(rep, 0)]
    order = np.lexsort((np.arange(n), line, rep))
    return table.take(pa.array(order))


def _known(names: pa.Array, known: frozenset[str]) -> Any:
    """Whether the first word of each name ('mysql' in 'mysql-primary:3306') is a well-known name."""
    import pyarrow as pa
    import pyarrow.compute as pc

    word = pc.extract_regex(pc.utf8_lower(names), r"^(?P<w>[a-z0-9]+)")
    word = pc.if_else(pc.is_valid(word), word.field("w") if len(names) else pa.array([], pa.string()),
                      _null()) if len(names) else pa.array([], pa.string())
    return pc.fill_null(pc.is_in(word, value_set=pa.array(sorted(known))), False).to_numpy(zero_copy_only=False)


def _host_only(a: pa.Array) -> pa.Array:
    """'host:8080' → 'host', '[::1]:80' → '[::1]'; anything else unchanged."""
    import pyarrow.compute as pc

    return pc.replace_substring_regex(a, pattern=r"^(\[[^\]]*\]|[^:\[\]]*):\d+$", replacement=r"\1")


def _addr(ip: pa.Array, port: pa.Array) -> pa.Array:
    """ip + port → 'ip:port' ('[v6]:port'); an ip that already carries its port is kept."""
    import pyarrow as pa
    import pyarrow.compute as pc

    colons = pc.count_substring(ip, ":")
    bracket = pc.starts_with(ip, "[")
    v6 = pc.and_(pc.greater(colons, 1), pc.invert(bracket))
    host = pc.if_else(pc.fill_null(v6, False), pc.binary_join_element_wise(pa.scalar("["), ip, pa.scalar("]"), ""), ip)
    has_port = pc.fill_null(pc.or_(pc.and_(pc.equal(colons, 1), pc.invert(bracket)),
                                   pc.match_substring_regex(ip, r"^\[.*\]:\d+$")), False)
    joined = pc.binary_join_element_wise(host, pc.cast(port, pa.string()), ":")
    return pc.if_else(pc.or_(has_port, pc.is_null(port)), ip, joined)


def _parse_cluster(uc: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Istio `outbound|PORT|SUBSET|HOST` → (host, subset); other clusters → nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(uc) == 0:
        return pa.array([], pa.string()), pa.array([], pa.string())
    m = pc.extract_regex(uc, r"^outbound\|(?P<port>[^|]*)\|(?P<subset>[^|]*)\|(?P<host>[^|]+)$")
    valid = pc.is_valid(m)
    host = pc.if_else(valid, m.field("host"), _null())
    subset = pc.if_else(valid, m.field("subset"), _null())
    subset = pc.if_else(pc.equal(subset, ""), _null(), subset)
    return host, subset


def _cluster_name(uc: pa.Array) -> pa.Array:
    """A non-Istio cluster name, as a last-resort callee name (`service_google`)."""
    import pyarrow.compute as pc

    istio = pc.fill_null(pc.match_substring_regex(uc, r"^(inbound|outbound)\||Cluster$"), False)
    return pc.if_else(istio, _null(), uc)


def _virtual_peer(S: _Spans, c: Any) -> tuple[pa.Array, Any]:
    """Name and destination_kind of the callee of a client span that has no server side."""
    import numpy as np
    import pyarrow.compute as pc

    def C(name: str) -> pa.Array:
        return S.take(name, c)

    peer = pc.coalesce(C("peer_service"), C("remote_service"))
    server_addr = pc.coalesce(C("server_address"))
    net_peer = C("net_peer_name")
    db_system, db_name = C("db_system"), C("db_name")
    ckind = np.where(c >= 0, S.kind[np.maximum(c, 0)], -1)
    has_db_attr = ~_isnull(db_system) | ~_isnull(db_name)
    is_db = has_db_attr | S.np("db_hint", False).astype(bool)[np.maximum(c, 0)] | _known(peer, DATABASE_NAMES)
    is_msg = (ckind == K_PRODUCER) | ~_isnull(C("messaging_system")) | \
        S.np("msg_hint", False).astype(bool)[np.maximum(c, 0)] | _known(peer, MESSAGING_NAMES)
    is_msg &= ~has_db_attr
    is_db &= ~(is_msg & ~has_db_attr)
    uc_host, _ = _parse_cluster(C("upstream_cluster"))

    # Databases: the precedence of Tempo's service-graph processor (peer.service, server.address,
    # network.peer.address[:port], db.name), then the older net.peer.name and the system itself.
    db_label = pc.coalesce(peer, server_addr, _addr(C("peer_ip"), C("peer_port")), db_name, net_peer, db_system)
    msg_label = pc.coalesce(peer, server_addr, net_peer, C("messaging_system"))
    other = pc.coalesce(peer, server_addr, net_peer, uc_host, _host_only(C("authority")))
    name = pc.if_else(_m(is_db), db_label, pc.if_else(_m(is_msg), msg_label, other))
    kind = np.where(is_db, "database", np.where(is_msg, "messaging", "external")).astype(object)
    # An Istio outbound cluster to a mesh service: an in-mesh callee whose own span is missing.
    in_mesh = pc.fill_null(pc.match_substring(uc_host, ".svc."), False).to_numpy(zero_copy_only=False) | \
        pc.fill_null(pc.ends_with(uc_host, ".svc.cluster.local"), False).to_numpy(zero_copy_only=False)
    kind = np.where(in_mesh & ~is_db & ~is_msg, None, kind)
    kind = np.where(_isnull(name), "unknown", kind).astype(object)
    return name, kind


def _call_protocol(S: _Spans, c: Any, s: Any, ckind: Any, skind: Any) -> pa.Array:
    """Protocol of calls that are not HTTP/gRPC: the broker (messaging.system or Zipkin's remote
    service) for producer → consumer, the database system for database calls."""
    import pyarrow.compute as pc

    msg = (ckind == K_PRODUCER) | (skind == K_CONSUMER)
    broker = pc.coalesce(S.take("messaging_system", c), S.take("messaging_system", s),
                         S.take("remote_service", c), S.take("remote_service", s))
    return pc.if_else(_m(msg), broker, S.take("db_system", c))


def _calling_row(S: _Spans, first: Any, row_span: pa.Array, parent: Any, pair_client: Any,
                 gw_spans: Any) -> Any:
    """For each row, the span_id of the row it was called from: the nearest ancestor of its first span
    that is some row's span (or a gateway's entry span); else the first span's raw parent id."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    trace = S.take("trace_id", np.maximum(first, 0))
    row_keys = pc.binary_join_element_wise(trace, row_span, ":").to_numpy(zero_copy_only=False)
    is_row_span = pd.Index(row_keys[row_keys != None]).unique().get_indexer(  # noqa: E711
        pd.Index(S.key)) >= 0
    is_row_span = np.asarray(is_row_span, dtype=bool) | gw_spans
    span_ids = S.np("span_id")
    out = np.full(len(first), None, dtype=object)
    # A call made by a gateway proxy's own root client span hangs under the gateway entry row.
    via_gw = (pair_client >= 0) & gw_spans[np.maximum(pair_client, 0)]
    out[via_gw] = span_ids[pair_client[via_gw]]
    cur = np.where(first >= 0, parent[np.maximum(first, 0)], -1)
    unresolved = (first >= 0) & ~via_gw
    for _ in range(512):  # bounded: a malformed trace with a parent cycle cannot loop forever
        alive = unresolved & (cur >= 0)
        if not alive.any():
            break
        hit = alive & is_row_span[np.maximum(cur, 0)]
        out[hit] = span_ids[cur[hit]]
        unresolved = alive & ~hit
        cur = np.where(unresolved, parent[np.maximum(cur, 0)], -1)
    missing = np.array([v is None for v in out], dtype=bool) & (first >= 0)
    raw_parent = S.np("parent_span_id")
    out[missing] = raw_parent[first[missing]]
    del pa
    return out
