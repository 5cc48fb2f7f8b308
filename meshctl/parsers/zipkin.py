"""Zipkin v2 JSON → the span table (meshctl.parsers.spans).

Accepts a span list (`/api/v2/trace/{id}`, a UI download, the zipkin-lens test data) and a list of
traces (`/api/v2/traces`). Zipkin specifics kept:

* `shared: true` marks the server half of an RPC that reuses the client's span id; a SERVER span whose
  id equals a CLIENT span's id in the same trace is treated as shared even without the flag (v1 data
  converted to v2 often lacks it);
* a span without `kind` is a local span (never a call), per the v2 model;
* `remoteEndpoint.serviceName` names the peer (a database, a broker, an uninstrumented service) and on
  a SERVER span the caller; a missing `localEndpoint.serviceName` (Envoy without a service cluster)
  leaves the service null;
* tags are strings: `error` (any value, even empty) marks a failure; Envoy's tags (`upstream_cluster`,
  `response_flags`, `guid:x-request-id`, `component: proxy`, `request_size`/`response_size`, `http.url`)
  and the usual `http.*` tags fill the request columns.

Clock skew between hosts (a server half that starts before its client) is left as recorded: rows take
their timestamp and duration from the client span, and the server span's length is kept as
`upstream_service_time_ms`.
"""

from __future__ import annotations

from typing import Any

from meshctl.parsers.base import Reject, json_sample
from meshctl.parsers.spans import (
    SpanError,
    SpanResult,
    SpanTableBuilder,
    attr_fields,
    epoch_int,
    kind_name,
    read_id,
)
from meshctl.parsers.trace_detect import load_json

FORMAT = "zipkin"


def parse_zipkin(data: bytes, *, file: str, source: str | None = None) -> SpanResult:
    """Zipkin v2 JSON bytes → SpanResult (spans, rejects, records read)."""
    loaded = load_json(data, file=file, what="Zipkin span list")
    builder = SpanTableBuilder()
    rejects: list[Reject] = list(loaded.rejects)
    records = 0
    for line, doc in loaded.docs:
        spans = _span_list(doc)
        if spans is None:
            rejects.append(Reject.of(file, line, "not a Zipkin v2 span list (expected a JSON array of spans, "
                                     "or of traces)", json_sample(doc)))
            continue
        start = len(builder)
        for sp in spans:
            records += 1
            try:
                builder.add(_span(sp, file=file, source=source or file, index=records))
            except (ValueError, TypeError, AttributeError, OverflowError) as exc:
                f = getattr(exc, "field", None)
                rejects.append(Reject.of(file, records, f"span #{records}: {exc}", json_sample(sp), field=f))
        _mark_shared(builder.rows[start:])
    return SpanResult(builder.table(), rejects, records + sum(1 for r in loaded.rejects if not loaded.partial),
                      FORMAT)


def _span_list(doc: Any) -> list[Any] | None:
    if isinstance(doc, dict) and ("traceId" in doc or "id" in doc):
        return [doc]  # one span (a JSON lines file of spans)
    if not isinstance(doc, list):
        return None
    if doc and all(isinstance(x, list) for x in doc):
        return [sp for trace in doc for sp in trace]
    return doc




def _endpoint(ep: Any, name: str) -> dict[str, Any]:
    if ep is None:
        return {}
    if not isinstance(ep, dict):
        raise SpanError("expected an object", name)
    return ep


def _ip_port(ep: dict[str, Any]) -> tuple[str | None, Any]:
    ip = ep.get("ipv4") or ep.get("ipv6")
    return ip, ep.get("port")


def _span(sp: Any, *, file: str, source: str, index: int) -> dict[str, Any]:
    if not isinstance(sp, dict):
        raise SpanError(f"expected a span object, got {type(sp).__name__}", "span")
    if "binaryAnnotations" in sp:
        raise SpanError("Zipkin v1 span (binaryAnnotations); export v2 JSON (/api/v2/...)", "binaryAnnotations")
    trace_id = read_id(sp.get("traceId"), "traceId")
    span_id = read_id(sp.get("id"), "id")
    if trace_id is None:
        raise SpanError("missing", "traceId")
    if span_id is None:
        raise SpanError("missing", "id")
    parent = read_id(sp.get("parentId"), "parentId")
    tags = sp.get("tags") or {}
    if not isinstance(tags, dict):
        raise SpanError("expected an object of strings", "tags")
    local = _endpoint(sp.get("localEndpoint"), "localEndpoint")
    remote = _endpoint(sp.get("remoteEndpoint"), "remoteEndpoint")
    ts = _micros(sp.get("timestamp"), "timestamp")
    dur = _micros(sp.get("duration"), "duration")
    kind = kind_name(sp.get("kind")) if sp.get("kind") is not None else "internal"
    if sp.get("kind") is not None and kind is None:
        raise SpanError(f"unknown kind {sp.get('kind')!r}", "kind")
    row: dict[str, Any] = attr_fields(tags.items())
    lip, lport = _ip_port(local)
    rip, rport = _ip_port(remote)
    row.update({
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent if parent != span_id else None,
        "kind": kind,
        "shared": bool(sp.get("shared")) and kind == "server",
        "name": sp.get("name") if isinstance(sp.get("name"), str) else None,
        "start_us": ts,
        "duration_ms": dur / 1000.0 if dur is not None else None,
        "remote_service": remote.get("serviceName") or None,
        "local_addr": (f"{lip}:{lport}" if lport else lip) if lip else None,
        "record_format": FORMAT,
        "record_source": source,
        "record_file": file,
        "record_line": index,
    })
    if local.get("serviceName"):
        row["service"] = local["serviceName"]
    if rip:
        row.setdefault("peer_ip", rip)
        if rport:
            row.setdefault("peer_port", rport)
    if "error" in tags:
        row["error_tag"] = tags["error"] if tags["error"] not in ("", None) else "true"
        row["status"] = "error"
    return row


def _mark_shared(rows: list[dict[str, Any]]) -> None:
    """A SERVER span with the same id as a CLIENT span of its trace is the shared server half."""
    clients = {(r["trace_id"], r["span_id"]) for r in rows if r.get("kind") == "client"}
    for r in rows:
        if r.get("kind") == "server" and not r.get("shared") and (r["trace_id"], r["span_id"]) in clients:
            r["shared"] = True


def _micros(v: Any, name: str) -> int | None:
    return epoch_int(v, name, per_second=10**6, unit="epoch microseconds")
