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
                            a `.namespace` suffix Istio adds; k8s.* resource attributes or the Envoy
                            node id → workload, else the app; namespace, cluster; service.version /
                            istio.canonical_revision → version);
                            destination_service is the service the client proxy's Istio outbound cluster
                            names (an FQDN, as in access logs), else the server's service.name, or the
                            virtual peer's name;
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
    ("host", ["http.host", "http.authority", "http.request.header.host", "http.request.header.:authority"]),
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


class SpanError(ValueError):
    """A span field that cannot be read; `field` names it for the reject."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


END_OF_TIME_S = 253402300800  # 10000-01-01: a later time is garbage (and it keeps int64 safe)


def epoch_int(v: Any, name: str, *, per_second: int, unit: str) -> int | None:
    """A non-negative integer time or duration in `unit` (1/per_second s), as trace formats write them
    (numbers or numeric strings); anything else is a SpanError naming the field."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise SpanError(f"expected {unit}, got {type(v).__name__}", name)
    try:
        n = int(v)
    except ValueError:
        raise SpanError(f"expected {unit}, got {v!r}", name) from None
    if n < 0:
        raise SpanError(f"negative value {n}", name)
    if n >= END_OF_TIME_S * per_second:
        raise SpanError(f"out of range: {n} (after the year 9999)", name)
    return n


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


def read_id(value: Any, name: str) -> str | None:
    """normalize_id of a span's id field; an id that is neither hex nor base64 is a SpanError naming it."""
    try:
        return normalize_id(value)
    except ValueError as exc:
        raise SpanError(str(exc), name) from None


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
    ("authority", "string"), ("peer_addr", "string"),
    ("status_code_i", "int32"), ("grpc_status_i", "int32"),
    ("bytes_received_i", "int64"), ("bytes_sent_i", "int64"), ("proto", "string"),
]


def span_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(list(_raw_schema()) + [pa.field(n, _arrow_type(t)) for n, t in SPAN_SCHEMA_EXTRA])


# Envoy node id: sidecar~10.1.2.3~reviews-v2-5d8f8b8b7c-abcde.default~default.svc.cluster.local
_NODE_ID = r"^(?P<t>sidecar|router|ingress)~[^~]*~(?P<pod>[^.~]+)\.(?P<ns>[^~]+)~"


def finish_span_table(raw: pa.Table) -> pa.Table:
    """Derive the identity and typed columns from the raw span columns (vectorized)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = raw.combine_chunks()

    def col(name: str) -> pa.Array:
        c = raw.column(name)
        return c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()

    def blank_to_null(a):
        return pc.if_else(pc.equal(a, ""), pa.scalar(None, pa.string()), a)

    def coalesce(*arrays):
        return pc.coalesce(*arrays)

    # Most of these columns repeat a few distinct values (services, pods, URLs, status codes): string
    # work runs once per distinct value (dictionary-encode, transform the dictionary, take back).
    # Service names a tracer uses when it does not know its own name count as no name.
    def unnamed_to_null(d):
        low = pc.utf8_lower(d)
        bad = pc.or_(pc.is_in(low, value_set=pa.array(sorted(_UNNAMED_SERVICES))),
                     pc.starts_with(low, "unknown_service:"))
        return pc.if_else(bad, _null(), d)

    svc = _via_dict(col("service"), unnamed_to_null)

    # Envoy node id → pod and namespace (sidecars, gateways).
    node = col("node_id")
    node_type = _via_dict(node, lambda d: _group(d, _NODE_ID, "t"))
    node_pod = _via_dict(node, lambda d: _group(d, _NODE_ID, "pod"))
    node_ns = _via_dict(node, lambda d: _group(d, _NODE_ID, "ns"))

    namespace = coalesce(col("k8s_namespace"), col("service_namespace"), node_ns)
    pod = coalesce(col("k8s_pod"), node_pod)
    workload = coalesce(col("k8s_workload"), _via_dict(col("k8s_replicaset"), _replicaset_workload),
                        _via_dict(pod, _pod_workload))

    # Istio names sidecar spans `<app>.<namespace>`; the app is the part before the namespace.
    app = coalesce(col("canonical_service"), _strip_namespace(svc, namespace))
    # Without Kubernetes attributes the service is the unit that runs: the workload is named after
    # it, on both sides of a call alike (so callers and callees group the same way).
    workload = coalesce(workload, app)
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

    # Authority: the Host header, else the URL's host. Path: url.path / http.target without the
    # query, else the URL's path.
    url = col("url")
    url_host = _via_dict(url, lambda d: _group(d, r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/]*@)?(?P<h>[^/?#]+)", "h"))
    authority = coalesce(blank_to_null(col("host")), url_host)
    url_path = _via_dict(url, lambda d: _group(d, r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*(?P<p>/[^?#]*)", "p"))
    path = coalesce(_via_dict(col("path"), lambda d: _strip(d, r"^([^?#]*)")), url_path)

    # Response flags: '-' means none.
    flags = col("response_flags")
    flags = pc.if_else(pc.is_in(flags, value_set=pa.array(["-", ""])), pa.scalar(None, pa.string()), flags)

    proto = _protocol(col("protocol"), col("protocol_version"), col("grpc_status"))

    out = raw
    for name, arr in (("service", svc), ("path", path), ("response_flags", flags),
                      ("db_hint", pc.fill_null(col("db_hint"), False)),
                      ("msg_hint", pc.fill_null(col("msg_hint"), False))):
        out = out.set_column(out.schema.get_field_index(name), name, arr)
    extras = {
        "app": app, "workload": workload, "namespace": namespace, "version": version, "cluster": cluster,
        "is_proxy": is_proxy, "is_sidecar": is_sidecar, "is_gateway": is_gateway, "authority": authority,
        "peer_addr": _addr(col("peer_ip"), col("peer_port")),
        "status_code_i": _via_dict(col("status_code"), lambda d: _to_int(d, pa.int32())),
        "grpc_status_i": _via_dict(col("grpc_status"), lambda d: _to_int(d, pa.int32())),
        "bytes_received_i": _via_dict(col("bytes_received"), lambda d: _to_int(d, pa.int64())),
        "bytes_sent_i": _via_dict(col("bytes_sent"), lambda d: _to_int(d, pa.int64())),
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


def _pod_workload(pods):
    """Pod names → workload names (ReplicaSet / Rollout / DaemonSet / Job hashes off), by the same
    rules access logs use (meshctl.identity.workload_from_pod)."""
    import pyarrow as pa

    from meshctl.identity import workload_from_pod

    return pa.array([workload_from_pod(p) if p else None for p in pods.to_pylist()], pa.string())


def _replicaset_workload(names):
    import pyarrow as pa

    from meshctl.identity import workload_from_pod

    return pa.array([workload_from_pod("", owner=("ReplicaSet", n)) if n else None for n in names.to_pylist()],
                    pa.string())


def _via_dict(arr, fn):
    """fn applied to the distinct values of a string column, mapped back to every row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(arr) == 0:
        return fn(pa.array([], pa.string()))
    enc = pc.dictionary_encode(arr)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return fn(enc.dictionary).take(enc.indices)


def _group(arr, pattern: str, name: str):
    """Named group `name` of `pattern` (null when it does not match)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(arr) == 0:
        return pa.array([], pa.string())
    m = pc.extract_regex(arr, pattern)
    return pc.if_else(pc.is_valid(m), pc.struct_field(m, name), pa.scalar(None, pa.string()))


def _strip_namespace(svc, namespace):
    """`reviews.bookinfo` with namespace `bookinfo` → `reviews`; other names unchanged."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(svc) == 0:
        return svc
    pairs = pc.binary_join_element_wise(svc, pc.fill_null(namespace, ""), "\x1f")
    enc = pc.dictionary_encode(pairs)
    out = []
    for v in enc.dictionary.to_pylist():  # distinct (service, namespace) pairs: few
        name, _, ns = v.partition("\x1f")
        out.append(name[: -len(ns) - 1] if ns and name.endswith("." + ns) and len(name) > len(ns) + 1 else name)
    return pa.array(out, pa.string()).take(enc.indices)


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
    """Span tables → one table with single-chunk columns. The list is consumed (emptied) so that each
    column's blocks are freed as soon as that column is combined: the peak is one copy plus a column."""
    import pyarrow as pa

    parts = [t for t in tables if t is not None]
    if isinstance(tables, list):
        tables.clear()
    if not parts:
        return empty_span_table()
    if len(parts) == 1:
        return parts[0]
    schema = parts[0].schema
    chunks = {name: [t.column(name) for t in parts] for name in schema.names}
    del parts
    arrays = []
    for name in schema.names:
        arrays.append(pa.chunked_array([c for col in chunks.pop(name) for c in col.chunks],
                                       type=schema.field(name).type).combine_chunks())
    return pa.Table.from_arrays(arrays, schema=schema)


# ---------------------------------------------------------------------------------------------
# Pairing
# ---------------------------------------------------------------------------------------------
_KIND_CODES = ["client", "producer", "server", "consumer", "internal"]  # codes 1..5; 0 = not said
K_NONE, K_CLIENT, K_PRODUCER, K_SERVER, K_CONSUMER, K_INTERNAL = range(6)


class _Spans:
    """The span table as single-chunk Arrow columns, with integer codes for the (trace, span id) and
    (trace, parent id) keys and for the service, so the pairing steps are numpy array arithmetic."""

    def __init__(self, table: pa.Table) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        self.t = table if all(c.num_chunks <= 1 for c in table.columns) else table.combine_chunks()
        self.n = n = self.t.num_rows
        k = pc.index_in(self.col("kind"), value_set=pa.array(_KIND_CODES))
        self.kind = pc.fill_null(k, -1).to_numpy(zero_copy_only=False).astype(np.int8) + 1
        # (trace, span id) and (trace, parent id) → one integer code space: encode the ids (span and
        # parent ids together, so equal ids get equal codes) and the trace ids, then compact the pairs.
        tcode = _codes(self.col("trace_id"))
        ids = pc.dictionary_encode(pa.concat_arrays([self.col("span_id"), self.col("parent_span_id")]))
        icode = pc.fill_null(ids.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        width = len(ids.dictionary) + 1
        pair = np.concatenate([tcode * width + icode[:n], np.where(icode[n:] >= 0, tcode * width + icode[n:], -1)])
        uniq, inv = np.unique(pair, return_inverse=True)
        inv = inv.reshape(-1).astype(np.int64)
        if len(uniq) and uniq[0] < 0:  # the null parent key
            inv = inv - 1
        self.code, self.pcode = inv[:n], inv[n:]
        self.ncodes = int(inv.max()) + 1 if len(inv) else 0
        self.refresh_service()

    def refresh_service(self) -> None:
        self.svc = _codes(self.col("service"))

    def col(self, name: str) -> pa.Array:
        c = self.t.column(name)
        return c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()

    def np(self, name: str, fill: Any = None) -> Any:
        import pyarrow.compute as pc

        c = self.col(name)
        if fill is not None:
            c = pc.fill_null(c, fill)
        return c.to_numpy(zero_copy_only=False)

    def flag(self, name: str) -> Any:
        return self.np(name, False).astype(bool)

    def take(self, name: str, ix: Any) -> pa.Array:
        import pyarrow as pa

        return self.col(name).take(pa.array(ix, type=pa.int64(), mask=ix < 0))

    def set(self, name: str, arr: pa.Array) -> None:
        self.t = self.t.set_column(self.t.schema.get_field_index(name), name, arr)


def _codes(arr: pa.Array) -> Any:
    """Dictionary codes of a column as int64 (-1 for null)."""
    import numpy as np
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(arr)
    return pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _first_by_code(codes: Any, order: Any, size: int) -> Any:
    """For each code, the first index in `order` that has it (-1 if none): a code → row lookup table."""
    import numpy as np

    out = np.full(size + 1, -1, dtype=np.int64)
    oc = codes[order]
    keep = oc >= 0
    oc, oi = oc[keep], order[keep]
    # np.unique's return_index gives the first occurrence in the (already ordered) sequence.
    uniq, first = np.unique(oc, return_index=True)
    out[uniq] = oi[first]
    return out


def _lookup(table: Any, codes: Any) -> Any:
    import numpy as np

    return np.where(codes >= 0, table[np.maximum(codes, 0)], -1)


def _m(mask: Any) -> pa.Array:
    import pyarrow as pa

    return pa.array(mask, type=pa.bool_())


def _null(t: pa.DataType | None = None) -> pa.Scalar:
    import pyarrow as pa

    return pa.scalar(None, t or pa.string())


def _isnull(a: pa.Array) -> Any:
    import pyarrow.compute as pc

    return pc.is_null(a).to_numpy(zero_copy_only=False)


def _labels(codes: Any, labels: list[str]) -> pa.Array:
    """Small integer codes (-1 = null) → a string array of those labels."""
    import numpy as np
    import pyarrow as pa

    codes = np.asarray(codes, dtype=np.int32)
    d = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), pa.array(labels, pa.string()))
    return d.cast(pa.string())


def pair_spans(spans: pa.Table) -> pa.Table:
    """The span table → requests-table rows (an Arrow table conforming to analyzers/table.py)."""
    import numpy as np
    import pyarrow.compute as pc

    from analyzers import table as rt

    if spans.num_rows == 0:
        return rt.empty_arrow()
    # Spans without ids cannot take part.
    spans = spans.filter(pc.and_(pc.is_valid(spans.column("trace_id")), pc.is_valid(spans.column("span_id"))))
    if spans.num_rows == 0:
        return rt.empty_arrow()
    S = _Spans(spans)
    # The same span collected twice (overlapping files or API pages) counts once.
    start = S.np("start_us", -1).astype(np.int64)
    dup_order = np.lexsort((np.arange(S.n), start, S.kind, S.svc, S.code))
    same = np.zeros(S.n, dtype=bool)
    if S.n > 1:
        a, b = dup_order[1:], dup_order[:-1]
        same[a] = (S.code[a] == S.code[b]) & (S.kind[a] == S.kind[b]) & (S.svc[a] == S.svc[b]) & (start[a] == start[b])
    if same.any():
        S = _Spans(S.t.filter(_m(~same)))
    n, kind = S.n, S.kind
    idx = np.arange(n, dtype=np.int64)
    is_client = (kind == K_CLIENT) | (kind == K_PRODUCER)
    is_server = (kind == K_SERVER) | (kind == K_CONSUMER)
    no_kind = kind == K_NONE
    shared = S.flag("shared")
    start = S.np("start_us", -1).astype("float64")
    end = start + S.np("duration_ms", 0.0).astype("float64") * 1000.0

    # Parent lookup on (trace, id). Where Zipkin shares an id between a client and a server half, a
    # child belongs to the server half (it ran in the server's process).
    rank = np.where(is_server, 0, np.where(is_client, 2, 1))
    by_code = _first_by_code(S.code, np.lexsort((idx, rank)), S.ncodes)
    parent = _lookup(by_code, S.pcode)
    has_parent_id = ~_isnull(S.col("parent_span_id"))
    has_p = parent >= 0
    pp = np.maximum(parent, 0)

    # Parent and child run in the same process unless the child is the server side of a call its
    # parent made (or a shared Zipkin server half): only then may the child borrow from its parent.
    p_clientish = has_p & ((kind[pp] == K_CLIENT) | (kind[pp] == K_PRODUCER))
    in_process = has_p & ~(is_server & p_clientish) & ~shared
    # A span that does not know its service (Zipkin `unknown`, an Envoy without --service-cluster)
    # runs in its parent's process: it borrows the parent's identity.
    no_svc = (S.svc < 0) & in_process
    if no_svc.any():
        src = np.where(no_svc, parent, idx)
        for col in ("service", "app", "workload", "namespace", "version", "cluster"):
            S.set(col, S.take(col, src))
        S.refresh_service()
    svc = S.svc
    # An Envoy's upstream (router) span carries no node id or custom tags, only its downstream span
    # does: within one service a span takes what it lacks from its parent (same process).
    same_proc = in_process & (svc >= 0) & (svc == np.where(has_p, svc[pp], -2))
    if same_proc.any():
        src = np.where(same_proc, parent, -1)
        for col in ("workload", "namespace", "version", "cluster"):
            S.set(col, pc.coalesce(S.col(col), S.take(col, src)))
        for col in ("is_gateway", "is_sidecar"):
            S.set(col, pc.or_(S.col(col), pc.fill_null(S.take(col, src), False)))
    is_proxy = S.flag("is_proxy")

    # 1. client/producer ↔ server/consumer: the server's parent (or, when shared, its own id) is the
    #    client. A producer with several consumers pairs with each.
    client_by_code = _first_by_code(S.code, idx[is_client], S.ncodes)
    link = np.where(shared, S.code, S.pcode)
    hit = _lookup(client_by_code, np.where(is_server, link, -1))
    ok = hit >= 0
    pair_c = [hit[ok]]
    pair_s = [idx[ok]]
    paired_server = ok.copy()

    # 2. a server span (or a span without a kind, OpenTracing-style) whose caller left no client span:
    #    the parent span in the other service is the caller (Jaeger's dependency rule). A server span
    #    nested in its parent server span is the same request handled twice (sidecar → app, or two
    #    instrumentations); one that starts after its parent server span ended is a new request.
    p_kind = np.where(has_p, kind[pp], -1)
    p_serverish = (p_kind == K_SERVER) | (p_kind == K_CONSUMER)
    p_svc = np.where(has_p, svc[pp], -1)
    other_service = (svc >= 0) & (p_svc >= 0) & (svc != p_svc)
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
    gateway_entry = is_client & S.flag("is_gateway") & ~has_parent_id

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
    cc, ss = np.maximum(c, 0), np.maximum(s, 0)
    gw = how == 2
    ckind = np.where(has_c, S.kind[cc], -1)
    skind = np.where(has_s, S.kind[ss], -1)
    c_is_call = has_c & ~gw & ((ckind == K_CLIENT) | (ckind == K_PRODUCER) | (ckind == K_NONE))
    c_fields = c_is_call | gw  # the caller's span describes this call

    def C(name: str) -> pa.Array:
        return S.take(name, c)

    def Sv(name: str) -> pa.Array:
        return S.take(name, s)

    def Cc(name: str) -> pa.Array:
        """Caller-side field only where the caller's span is the call itself."""
        return S.take(name, np.where(c_fields, c, -1))

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

    # Status: error when either side failed (status ERROR or an error tag), ok when either said OK.
    def failed(ix: Any) -> Any:
        status = S.take("status", ix)
        e = pc.utf8_lower(S.take("error_tag", ix))
        bad = pc.and_(pc.is_valid(e), pc.invert(pc.is_in(e, value_set=pa.array(["false", "0", "ok", "unset"]))))
        return pc.fill_null(pc.or_kleene(pc.equal(status, "error"), bad), False).to_numpy(zero_copy_only=False)

    c_side = np.where(c_fields, c, -1)
    is_err = failed(c_side) | failed(s)
    is_ok = pc.fill_null(pc.or_kleene(pc.equal(S.take("status", c_side), "ok"), pc.equal(Sv("status"), "ok")),
                         False).to_numpy(zero_copy_only=False)
    span_status = _labels(np.where(is_err, 0, np.where(is_ok, 1, -1)), ["error", "ok"])

    # Source: the caller's identity, or a virtual / user / unknown caller.
    ident = ("app", "workload", "namespace", "version", "cluster")
    src_ix = np.where(has_c & ~gw, c, -1)
    src = {k: S.take(k, src_ix) for k in ident}
    peer = pc.coalesce(Sv("peer_service"), Sv("remote_service"))
    consumer_msg = pc.if_else(pc.and_(_m(skind == K_CONSUMER), pc.is_null(peer)), Sv("messaging_system"), _null())
    vname = pc.coalesce(peer, consumer_msg)
    named = ~_isnull(vname)
    messaging = ~_isnull(consumer_msg) | _known(peer, MESSAGING_NAMES)
    root = _isnull(Sv("parent_span_id"))
    no_caller = ~has_c
    # SOURCE_KINDS order: user, external, messaging, gateway, unknown
    sk = np.where(named, np.where(messaging, 2, 1), np.where(root, 0, 4))
    sk = np.where(no_caller, sk, -1)
    sk = np.where(gw, 0, sk)
    source_kind = _labels(sk, ["user", "external", "messaging", "gateway", "unknown"])
    src["app"] = where(no_caller, vname, src["app"])

    # Destination: the callee's identity, or a virtual peer named by the caller's attributes.
    dst_ix = np.where(gw, c, s)
    dst = {k: S.take(k, dst_ix) for k in ident}
    dst_service = S.take("service", dst_ix)
    dk = np.full(n, -1, dtype=np.int64)  # DESTINATION_KINDS order: external database messaging gateway unknown
    uc = pick("upstream_cluster")
    uc_host, uc_subset = _parse_cluster(uc)
    # The client proxy's Istio cluster names the service it called as access logs do (an FQDN): that
    # name wins over the server's service.name, so span rows and log rows land on the same service.
    dst_service = pc.coalesce(pc.if_else(_m(has_s & ~gw), uc_host, _null()), dst_service)
    only_c = has_c & ~has_s & ~gw
    if only_c.any():
        name, kind_code = _virtual_peer(S, np.where(only_c, c, -1))
        dst_service = where(only_c, name, dst_service)
        dk = np.where(only_c, kind_code, dk)
    dk = np.where(gw, 3, dk)
    # A proxy span with no service name (an Envoy without --service-cluster): its upstream cluster or
    # authority names where the request went.
    proxy_s = has_s & S.flag("is_proxy")[ss] & _isnull(dst_service) & ~gw
    if proxy_s.any():
        dst_service = where(proxy_s, pc.coalesce(uc_host, _host_only(pick("authority")), _cluster_name(uc)),
                            dst_service)
    destination_kind = _labels(dk, ["external", "database", "messaging", "gateway", "unknown"])

    # Direction and the reporting span.
    c_gateway = has_c & S.flag("is_gateway")[cc]
    direction = _labels(np.where(gw, 1, np.where(c_is_call, np.where(c_gateway, 2, 0), 1)),
                        ["outbound", "inbound", "gateway"])
    rep = np.where(c_is_call | gw, c, s)

    # Correlation: span_id is the span that handled the call; rows form a tree (module docstring).
    row_span = np.where(gw, c, np.where(has_s, s, c))
    first = np.where(c_is_call | gw, c, np.where(has_s, s, c))
    gw_spans = np.zeros(S.n, dtype=bool)
    gw_spans[c[gw]] = True
    parent_row = _calling_row(S, first, row_span, parent, np.where((how == 0) & has_c & has_s, c, -1), gw_spans)

    cols: dict[str, Any] = {
        "timestamp": pc.cast(pc.cast(ts, pa.int64()), pa.timestamp("us", tz="UTC")),
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
        "source_kind": source_kind,
        "downstream_remote_address": Sv("peer_addr"),
        "destination_service": dst_service,
        "destination_workload": dst["workload"],
        "destination_namespace": dst["namespace"],
        "destination_app": dst["app"],
        "destination_version": dst["version"],
        "destination_subset": uc_subset,
        "destination_cluster": dst["cluster"],
        "destination_kind": destination_kind,
        "upstream_host": pc.coalesce(Cc("upstream_host"),
                                     S.take("peer_addr", np.where(c_is_call, c, -1)), Sv("local_addr")),
        "upstream_cluster": uc,
        "direction": direction,
        "reporter_workload": pc.coalesce(S.take("workload", rep), S.take("app", rep)),
        "reporter_namespace": S.take("namespace", rep),
        "trace_id": S.take("trace_id", row_span),
        "span_id": S.take("span_id", row_span),
        "parent_span_id": parent_row,
        "request_id": pick("request_id"),
        "span_status": span_status,
        "record_kind": _labels(np.zeros(n), ["span"]),
        "record_format": S.take("record_format", rep),
        "record_source": S.take("record_source", rep),
        "record_file": S.take("record_file", rep),
        "record_line": S.take("record_line", rep),
    }
    table = pa.table(cols)
    # Input order of the reporting spans (file, then position), so output is reproducible.
    order = np.lexsort((np.arange(n), rep))
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
    """Name and destination_kind code (DESTINATION_KINDS order; -1 = an in-mesh callee) of the callee
    of each client span in `c` (-1: not a virtual-callee row) that has no server side."""
    import numpy as np
    import pyarrow.compute as pc

    def C(name: str) -> pa.Array:
        return S.take(name, c)

    cc = np.maximum(c, 0)
    peer = pc.coalesce(C("peer_service"), C("remote_service"))
    server_addr = C("server_address")
    net_peer = C("net_peer_name")
    db_system, db_name = C("db_system"), C("db_name")
    ckind = np.where(c >= 0, S.kind[cc], -1)
    has_db_attr = ~_isnull(db_system) | ~_isnull(db_name)
    is_msg = (ckind == K_PRODUCER) | ~_isnull(C("messaging_system")) | (S.flag("msg_hint")[cc] & (c >= 0)) | \
        _known(peer, MESSAGING_NAMES)
    is_msg &= ~has_db_attr
    is_db = has_db_attr | ((S.flag("db_hint")[cc] & (c >= 0)) | _known(peer, DATABASE_NAMES)) & ~is_msg
    uc_host, _ = _parse_cluster(C("upstream_cluster"))

    # Databases: the precedence of Tempo's service-graph processor (peer.service, server.address,
    # network.peer.address[:port], db.name), then the older net.peer.name and the system itself.
    db_label = pc.coalesce(peer, server_addr, C("peer_addr"), db_name, net_peer, db_system)
    msg_label = pc.coalesce(peer, server_addr, net_peer, C("messaging_system"))
    other = pc.coalesce(peer, server_addr, net_peer, uc_host, _host_only(C("authority")))
    name = pc.if_else(_m(is_db), db_label, pc.if_else(_m(is_msg), msg_label, other))
    kind = np.where(is_db, 1, np.where(is_msg, 2, 0))
    # An Istio outbound cluster to a mesh service: an in-mesh callee whose own span is missing.
    in_mesh = pc.fill_null(pc.match_substring(uc_host, ".svc."), False).to_numpy(zero_copy_only=False) | \
        pc.fill_null(pc.ends_with(uc_host, ".svc.cluster.local"), False).to_numpy(zero_copy_only=False)
    kind = np.where(in_mesh & ~is_db & ~is_msg, -1, kind)
    kind = np.where(_isnull(name), 4, kind)
    return name, kind


def _call_protocol(S: _Spans, c: Any, s: Any, ckind: Any, skind: Any) -> pa.Array:
    """Protocol of calls that are not HTTP/gRPC: the broker (messaging.system or Zipkin's remote
    service) for producer → consumer, the database system for database calls."""
    import pyarrow.compute as pc

    msg = (ckind == K_PRODUCER) | (skind == K_CONSUMER)
    broker = pc.coalesce(S.take("messaging_system", c), S.take("messaging_system", s),
                         S.take("remote_service", c), S.take("remote_service", s))
    return pc.if_else(_m(msg), broker, S.take("db_system", c))


def _calling_row(S: _Spans, first: Any, row_span: Any, parent: Any, pair_client: Any, gw_spans: Any) -> pa.Array:
    """For each row, the span_id of the row it was called from: the nearest ancestor of its first span
    that is some row's span (or a gateway's entry span); else the first span's raw parent id."""
    import numpy as np
    import pyarrow.compute as pc

    is_row_code = np.zeros(S.ncodes + 1, dtype=bool)
    is_row_code[S.code[row_span[row_span >= 0]]] = True
    is_row_span = is_row_code[np.where(S.code >= 0, S.code, S.ncodes)] | gw_spans
    out = np.full(len(first), -1, dtype=np.int64)
    # A call made by a gateway proxy's own root client span hangs under the gateway entry row.
    via_gw = (pair_client >= 0) & gw_spans[np.maximum(pair_client, 0)]
    out[via_gw] = pair_client[via_gw]
    cur = np.where(first >= 0, parent[np.maximum(first, 0)], -1)
    unresolved = (first >= 0) & ~via_gw
    for _ in range(512):  # bounded: a malformed trace with a parent cycle cannot loop forever
        alive = unresolved & (cur >= 0)
        if not alive.any():
            break
        hit = alive & is_row_span[np.maximum(cur, 0)]
        out[hit] = cur[hit]
        unresolved = alive & ~hit
        cur = np.where(unresolved, parent[np.maximum(cur, 0)], -1)
    return pc.coalesce(S.take("span_id", out), S.take("parent_span_id", np.where(out < 0, first, -1)))
