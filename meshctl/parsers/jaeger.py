"""Jaeger JSON → the span table (meshctl.parsers.spans).

Shapes accepted:
* `/api/traces` and `/api/traces/{id}` responses and the UI's "Download JSON": `{"data": [trace, ...]}`;
* one trace object `{"traceID", "spans", "processes"}`, or `{"data": {trace}}`, or a list of traces;
* the UI's internal trace shape (each span carries `process`, `depth`, `childSpanIds`, `relativeStartTime`,
  and references embed the referenced span recursively), as the DeathStarBench export has it;
* `/api/v3/traces` responses (`{"result": {"resourceSpans": ...}}`) are OTLP and go to otlp_traces.

Per span: the parent is the first CHILD_OF reference in the same trace, else the first FOLLOWS_FROM
(asynchronous work such as a consumer still hangs under its producer); a legacy `parentSpanID` is
honoured. Process tags are resource attributes (service identity, k8s.*, `ip` → the span's own
address). `span.kind` gives the kind; without it the kind is unknown (OpenTracing tracers often leave
it out), except for spans exported from OpenTelemetry (`otel.library.name` / `otel.scope.name` present),
where a missing kind means INTERNAL. `error=true` and `otel.status_code=ERROR` mark failures. Ids whose
leading zeros Jaeger dropped are padded back to 16/32 hex digits.
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
    normalize_id,
    read_id,
)
from meshctl.parsers.trace_detect import load_json

FORMAT = "jaeger"


def parse_jaeger(data: bytes, *, file: str, source: str | None = None) -> SpanResult:
    """Jaeger JSON bytes → SpanResult (spans, rejects, records read)."""
    loaded = load_json(data, file=file, what="Jaeger JSON")
    return parse_jaeger_docs(loaded.docs, file=file, source=source, rejects=loaded.rejects)


def parse_jaeger_docs(docs: list[tuple[int, Any]], *, file: str, source: str | None = None,
                      rejects: list[Reject] | None = None) -> SpanResult:
    builder = SpanTableBuilder()
    rejects = list(rejects or [])
    records = 0
    for line, doc in docs:
        traces = _traces(doc)
        if traces is None:
            if isinstance(doc, dict) and doc.get("errors") and not doc.get("data"):
                rejects.append(Reject.of(file, line, f"Jaeger query error: {doc['errors']}", json_sample(doc)))
            elif not (isinstance(doc, dict) and doc.get("data") in (None, [])):
                rejects.append(Reject.of(file, line, "not Jaeger trace JSON (expected {\"data\": [trace...]} or a "
                                         "trace with traceID/spans)", json_sample(doc)))
            continue
        for trace in traces:
            if not isinstance(trace, dict):
                records += 1
                rejects.append(Reject.of(file, line, "trace: expected an object", json_sample(trace), field="data"))
                continue
            processes = trace.get("processes") or {}
            if not isinstance(processes, dict):
                processes = {}
            proc_cache: dict[str, dict[str, Any]] = {}
            spans = trace.get("spans")
            if not isinstance(spans, list):
                records += 1
                rejects.append(Reject.of(file, line, "trace: 'spans' is not a list", json_sample(trace), field="spans"))
                continue
            for sp in spans:
                records += 1
                try:
                    builder.add(_span(sp, trace, processes, proc_cache, file=file, source=source or file,
                                      index=records))
                except (SpanError, ValueError, TypeError, AttributeError, OverflowError) as exc:
                    rejects.append(Reject.of(file, records, f"span #{records}: {exc}", json_sample(sp),
                                             field=getattr(exc, "field", None)))
    return SpanResult(builder.table(), rejects, records, FORMAT)


def _traces(doc: Any) -> list[Any] | None:
    if isinstance(doc, list):
        return doc if all(isinstance(t, dict) and "spans" in t for t in doc) else None
    if not isinstance(doc, dict):
        return None
    if "spans" in doc:
        return [doc]
    data = doc.get("data")
    if isinstance(data, list) and data:
        return data
    if isinstance(data, dict) and "spans" in data:
        return [data]
    return None




def _tag_items(tags: Any, name: str) -> list[tuple[str, Any]]:
    if tags is None:
        return []
    if isinstance(tags, dict):  # some exporters write tags as a plain object
        return list(tags.items())
    if not isinstance(tags, list):
        raise SpanError("expected a list of {key, type, value}", name)
    out = []
    for t in tags:
        if isinstance(t, dict) and isinstance(t.get("key"), str):
            if t.get("type") == "binary":
                continue
            out.append((t["key"], t.get("value")))
    return out


def _process(sp: dict[str, Any], processes: dict[str, Any], cache: dict[str, dict[str, Any]]) -> dict[str, Any]:
    pid = sp.get("processID")
    if isinstance(pid, str) and pid in cache:
        return cache[pid]
    proc = sp.get("process") if isinstance(sp.get("process"), dict) else processes.get(pid)
    fields: dict[str, Any] = {}
    if isinstance(proc, dict):
        items = _tag_items(proc.get("tags"), "process.tags")
        fields = attr_fields(items)
        if proc.get("serviceName"):
            fields["service"] = proc["serviceName"]
        tagmap = dict(items)
        ip = tagmap.get("ip") or tagmap.get("host.ip")
        if isinstance(ip, str) and ip:
            fields["local_addr"] = ip
    if isinstance(pid, str) and "process" not in sp:
        cache[pid] = fields
    return fields


def _parent(sp: dict[str, Any], trace_id: str) -> str | None:
    refs = sp.get("references") or []
    if not isinstance(refs, list):
        raise SpanError("expected a list", "references")
    chosen = None
    for want in ("CHILD_OF", "FOLLOWS_FROM"):
        for r in refs:
            if isinstance(r, dict) and str(r.get("refType", "")).upper() == want:
                tid = normalize_id(r.get("traceID")) if r.get("traceID") is not None else trace_id
                if tid == trace_id:
                    chosen = normalize_id(r.get("spanID"))
                    break
        if chosen:
            return chosen
    legacy = sp.get("parentSpanID")
    return normalize_id(legacy) if legacy else None


def _span(sp: Any, trace: dict[str, Any], processes: dict[str, Any], cache: dict[str, dict[str, Any]], *,
          file: str, source: str, index: int) -> dict[str, Any]:
    if not isinstance(sp, dict):
        raise SpanError(f"expected a span object, got {type(sp).__name__}", "span")
    trace_id = read_id(sp.get("traceID") or trace.get("traceID"), "traceID")
    span_id = read_id(sp.get("spanID"), "spanID")
    if trace_id is None:
        raise SpanError("missing", "traceID")
    if span_id is None:
        raise SpanError("missing", "spanID")
    try:
        parent = _parent(sp, trace_id)
    except ValueError as exc:
        raise SpanError(str(exc), "references") from None
    items = _tag_items(sp.get("tags"), "tags")
    row = dict(_process(sp, processes, cache))
    span_fields = attr_fields(items)
    row.update(span_fields)
    start = _micros(sp.get("startTime"), "startTime")
    dur = _micros(sp.get("duration"), "duration")
    kind_tag = span_fields.get("kind_tag")
    kind = kind_name(kind_tag)
    if kind is None and kind_tag is None and any(k in ("otel.library.name", "otel.scope.name") for k, _ in items):
        kind = "internal"
    err = span_fields.get("error_tag")
    status = None
    if err is not None:
        e = str(err).lower()
        status = "error" if e in ("true", "1", "error") else ("ok" if e == "ok" else None)
    row.update({
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent if parent != span_id else None,
        "kind": kind,
        "shared": False,
        "name": sp.get("operationName") if isinstance(sp.get("operationName"), str) else None,
        "start_us": start,
        "duration_ms": dur / 1000.0 if dur is not None else None,
        "status": status,
        "status_message": span_fields.get("error_message"),
        "record_format": FORMAT,
        "record_source": source,
        "record_file": file,
        "record_line": index,
    })
    return row


def _micros(v: Any, name: str) -> int | None:
    return epoch_int(v, name, per_second=10**6, unit="epoch microseconds")
