"""The requests table: the one data contract between collection and analysis.

One row per request as seen by one proxy (an access-log line) or by a pair of spans (a client span
and the server span of the same call). Every source (files, Kubernetes, Jaeger, Zipkin, Tempo, OTLP)
produces rows with exactly these columns; every analyzer reads only these columns. Missing values
are nulls, never empty strings or "-". A new column is added here, with a null default and a line
of documentation, and nowhere else. docs/requests-table.md renders this list for readers.

Columns
-------
Timing
  timestamp                 timestamp[us, UTC]  request start (START_TIME / span start)
  duration_ms               float64  total duration as the reporter saw it (DURATION / span length)
  upstream_service_time_ms  float64  x-envoy-upstream-service-time (time spent upstream)
Response
  response_code             int32    HTTP status; 0 when no response was sent (e.g. DC)
  grpc_status               int32    gRPC status code number (0 = OK)
  response_flags            string   Envoy response flags, comma separated (`UF,URX`); null for `-`
  response_code_details     string   Envoy RESPONSE_CODE_DETAILS (`via_upstream`, `no_healthy_upstream`)
Request
  method, authority, path, protocol  string   (protocol: HTTP/1.1, HTTP/2, gRPC ...)
  user_agent                string
  route_name                string   Envoy route name
  bytes_received, bytes_sent int64
Source (the caller)
  source_workload, source_namespace, source_app, source_version, source_cluster   string
  source_principal          string   mTLS identity (spiffe://...)
  source_kind               string   null for an in-mesh caller; otherwise user (a trace root: the request
                                     came from outside the traced system) | external | messaging |
                                     gateway | unknown (a caller not in the data); a virtual caller's
                                     name is in source_app
  downstream_remote_address string   ip:port of the caller as the proxy saw it
Destination (the callee)
  destination_service       string   FQDN or short service/host name (reviews.bookinfo.svc.cluster.local)
  destination_workload, destination_namespace, destination_app, destination_version,
  destination_subset, destination_cluster   string
  destination_kind          string   null for an in-mesh workload; otherwise one of
                                     external | database | messaging | gateway | unknown (virtual peers)
  upstream_host             string   ip:port the proxy sent the request to
  upstream_cluster          string   Envoy cluster (`outbound|9080|v2|reviews.default.svc.cluster.local`)
Reporter
  direction                 string   inbound | outbound | gateway: which proxy wrote the row
  reporter_workload         string   the workload whose proxy (or span) reported the row
  reporter_namespace        string
Correlation
  trace_id, span_id, parent_span_id, request_id   string (ids lower-case hex, as written)
  span_status               string   ok | error: OpenTelemetry span status of a trace-derived row (a failed
                                     call with no HTTP/gRPC code, e.g. a database error); null if unset
Provenance
  record_kind               string   access_log | span | otlp_log
  record_format             string   parser that produced the row (istio-json, envoy-text, zipkin, ...)
  record_source             string   where it was read from (file, k8s pod, Jaeger URL)
  record_file               string   file name (or pod/container) when there is one
  record_line               int64    1-based line (or span index) inside that file

Conventions: `record_*` columns identify a row uniquely enough to find it again; `request_id` and
`span_id` are used to deduplicate when the same data is collected twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

SCHEMA_VERSION = 1

# (name, arrow type name). Kept as plain data so that importing this module costs nothing.
COLUMNS: list[tuple[str, str]] = [
    ("timestamp", "timestamp"),
    ("duration_ms", "float64"),
    ("upstream_service_time_ms", "float64"),
    ("response_code", "int32"),
    ("grpc_status", "int32"),
    ("response_flags", "string"),
    ("response_code_details", "string"),
    ("method", "string"),
    ("authority", "string"),
    ("path", "string"),
    ("protocol", "string"),
    ("user_agent", "string"),
    ("route_name", "string"),
    ("bytes_received", "int64"),
    ("bytes_sent", "int64"),
    ("source_workload", "string"),
    ("source_namespace", "string"),
    ("source_app", "string"),
    ("source_version", "string"),
    ("source_cluster", "string"),
    ("source_principal", "string"),
    ("downstream_remote_address", "string"),
    ("source_kind", "string"),
    ("destination_service", "string"),
    ("destination_workload", "string"),
    ("destination_namespace", "string"),
    ("destination_app", "string"),
    ("destination_version", "string"),
    ("destination_subset", "string"),
    ("destination_cluster", "string"),
    ("destination_kind", "string"),
    ("upstream_host", "string"),
    ("upstream_cluster", "string"),
    ("direction", "string"),
    ("reporter_workload", "string"),
    ("reporter_namespace", "string"),
    ("trace_id", "string"),
    ("span_id", "string"),
    ("parent_span_id", "string"),
    ("request_id", "string"),
    ("span_status", "string"),
    ("record_kind", "string"),
    ("record_format", "string"),
    ("record_source", "string"),
    ("record_file", "string"),
    ("record_line", "int64"),
]

COLUMN_NAMES: list[str] = [name for name, _ in COLUMNS]
STRING_COLUMNS: list[str] = [name for name, t in COLUMNS if t == "string"]
DIRECTIONS = ("inbound", "outbound", "gateway")
DESTINATION_KINDS = ("external", "database", "messaging", "gateway", "unknown")
SOURCE_KINDS = ("user", "external", "messaging", "gateway", "unknown")
RECORD_KINDS = ("access_log", "span", "otlp_log")


def is_gateway_name(name: str | None) -> bool:
    """Workloads named like Istio's gateways (istio-ingressgateway, egress-gateway) are gateways even
    where nothing else says so (a log file without pod labels)."""
    import re

    return bool(name) and re.search(r"(ingress|egress)-?gateway", name) is not None


def arrow_schema() -> pa.Schema:
    """The pyarrow schema of the requests table (timestamps in microseconds, UTC)."""
    import pyarrow as pa

    types = {
        "timestamp": pa.timestamp("us", tz="UTC"),
        "float64": pa.float64(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "string": pa.string(),
    }
    return pa.schema(
        [pa.field(name, types[t]) for name, t in COLUMNS],
        metadata={b"meshctl.schema_version": str(SCHEMA_VERSION).encode()},
    )


def empty_arrow() -> pa.Table:
    return arrow_schema().empty_table()


def conform_arrow(table: pa.Table) -> pa.Table:
    """Reorder/cast an Arrow table to the schema, adding missing columns as nulls.

    Unknown columns are an error: they mean a parser and this contract disagree.
    """
    import pyarrow as pa

    schema = arrow_schema()
    names = set(table.column_names)
    extra = names - set(COLUMN_NAMES)
    if extra:
        raise ValueError(f"columns not in the requests table schema: {sorted(extra)}")
    arrays = []
    for field in schema:
        if field.name in names:
            col = table.column(field.name)
            if not col.type.equals(field.type):
                col = col.cast(field.type)
            arrays.append(col)
        else:
            arrays.append(pa.nulls(table.num_rows, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def empty_frame() -> pd.DataFrame:
    return to_frame(empty_arrow())


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow → pandas with nullable dtypes (Int32/Int64, string[pyarrow]) so nulls stay nulls."""

    return table.to_pandas(types_mapper=_types_mapper())


def _types_mapper():
    import pandas as pd
    import pyarrow as pa

    mapping = {
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.string(): pd.StringDtype("pyarrow"),
        pa.float64(): pd.Float64Dtype(),
    }
    return mapping.get


def conform_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce a DataFrame (built by hand in a notebook or a test) to the table's columns and dtypes.

    Missing columns become nulls, empty strings become nulls, naive timestamps are taken as UTC.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    frame = df.copy()
    for name in COLUMN_NAMES:
        if name not in frame.columns:
            frame[name] = None
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[us, UTC]")
    table = pa.Table.from_pandas(frame[COLUMN_NAMES], preserve_index=False)
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
        cols.append(col)
    return to_frame(conform_arrow(pa.Table.from_arrays(cols, names=table.column_names)))
