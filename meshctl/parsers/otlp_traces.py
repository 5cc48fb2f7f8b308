"""OTLP traces (JSON and protobuf) → the span table (meshctl.parsers.spans).

JSON shapes: a TracesData / ExportTraceServiceRequest document (`{"resourceSpans": [...]}`), the
Collector file exporter's JSON lines (one such document per line), Tempo's `{"batches": [...]}` and
`{"trace": {...}}`, Jaeger's `/api/v3` `{"result": {...}}`; older `instrumentationLibrarySpans` and
snake_case keys are accepted. Ids are hex (OTLP/JSON) or base64 (protobuf-JSON as Tempo and jsonpb
write it); int64 values (`startTimeUnixNano`, `intValue`) may be strings or numbers; `kind` and
`status.code` may be numbers or enum names.

Protobuf: one TracesData / ExportTraceServiceRequest message, or a stream of messages each prefixed by
its length (4 bytes big-endian, as the Collector's file exporter writes `format: proto`).

Speed: JSON lines go through pyarrow's JSON reader with an explicit schema and are flattened and
pivoted with Arrow compute (no Python loop per span); a block the fast reader cannot take (another
shape, mixed value types, a bad line) falls back to the per-document Python path, which is also what
reports bad lines with their line numbers.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from meshctl.parsers.base import Reject, json_sample
from meshctl.parsers.spans import (
    _DB_PREFIXES,
    _KIND_NAMES,
    _MSG_PREFIXES,
    ATTR_FIELDS,
    END_OF_TIME_S,
    KEYMAP,
    SpanError,
    SpanResult,
    SpanTableBuilder,
    _raw_schema,
    attr_fields,
    concat_span_tables,
    empty_span_table,
    epoch_int,
    finish_span_table,
    kind_name,
    read_id,
)
from meshctl.parsers.trace_detect import load_json

MAX_NANOS = END_OF_TIME_S * 10**9  # also keeps microseconds well inside int64
FORMAT_JSON = "otlp-json"
FORMAT_PROTO = "otlp-proto"

_STATUS = {"0": None, "1": "ok", "2": "error", "status_code_unset": None, "status_code_ok": "ok",
           "status_code_error": "error", "unset": None, "ok": "ok", "error": "error"}



# ---------------------------------------------------------------------------------------------
# JSON, per document (the reference path)
# ---------------------------------------------------------------------------------------------
def parse_otlp_json(data: bytes, *, file: str, source: str | None = None, fast: bool = True) -> SpanResult:
    """OTLP/JSON bytes (one document or JSON lines) → SpanResult."""
    if fast and _is_json_lines(data):
        return parse_otlp_json_lines(_line_blocks(data), file=file, source=source)
    loaded = load_json(data, file=file, what="OTLP JSON")
    return parse_otlp_docs(loaded.docs, file=file, source=source, rejects=loaded.rejects)


def read_otlp_json_lines(head: bytes, stream: BinaryIO, *, file: str, source: str | None = None) -> SpanResult:
    """The Collector's JSON lines from an open file, read in blocks (bounded memory); `head` is what was
    already read from the stream."""

    def blocks() -> Iterator[bytes]:
        buf = head
        while True:
            chunk = stream.read(_BLOCK_BYTES)
            if not chunk:
                break
            buf += chunk
            cut = buf.rfind(b"\n")
            if cut >= 0:
                yield buf[: cut + 1]
                buf = buf[cut + 1:]
        if buf:
            yield buf

    return parse_otlp_json_lines(blocks(), file=file, source=source)


def parse_otlp_docs(docs: Iterable[tuple[int, Any]], *, file: str, source: str | None = None,
                    rejects: list[Reject] | None = None, fmt: str = FORMAT_JSON, first_record: int = 0) -> SpanResult:
    builder = SpanTableBuilder()
    rejects = list(rejects or [])
    state = {"records": first_record}
    for line, doc in docs:
        rs_list = _resource_spans(doc)
        if rs_list is None:
            rejects.append(Reject.of(file, line, "not OTLP trace JSON (expected {\"resourceSpans\": [...]})",
                                     json_sample(doc)))
            continue
        for rs in rs_list:
            _resource(rs, builder, rejects, state, file=file, source=source or file, line=line, fmt=fmt)
    return SpanResult(builder.table(), rejects, state["records"] - first_record, fmt)


_BLOCK_BYTES = 16 << 20


def _is_json_lines(data: bytes) -> bool:
    if len(data) < _FAST_MIN_BYTES:
        return False
    head = data[:4096].lstrip()
    return head.startswith(b'{"resourceSpans"') and b"\n" in data[: 1 << 22].rstrip(b"\r\n\t ")


def is_json_lines_head(head: bytes) -> bool:
    """Whether a file that starts with `head` is OTLP JSON lines (one export document per line)."""
    text = head.lstrip()
    if not text.startswith(b'{"resourceSpans"'):
        return False
    nl = text.find(b"\n")
    return 0 <= nl < len(text.rstrip()) - 1


def _line_blocks(data: bytes) -> Iterator[bytes]:
    pos, n = 0, len(data)
    while pos < n:
        end = data.find(b"\n", min(pos + _BLOCK_BYTES, n - 1))
        end = n if end < 0 else end + 1
        yield data[pos:end]
        pos = end


def parse_otlp_json_lines(blocks: Iterable[bytes], *, file: str, source: str | None = None) -> SpanResult:
    """JSON lines in blocks of whole lines: each block through the vectorized reader, or, when that
    cannot take it (a bad line, base64 ids, another shape), through the reference path; line numbers
    and span indexes stay global."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tables, rejects = [], []
    records = line_off = 0
    for block in blocks:
        res = _fast_json_lines(block, file=file, source=source)
        if res is None:
            loaded = load_json(block, file=file, what="OTLP JSON")
            docs = [(line + line_off, doc) for line, doc in loaded.docs]
            for r in loaded.rejects:
                r.line += line_off
            res = parse_otlp_docs(docs, file=file, source=source, rejects=loaded.rejects, first_record=records)
        elif records:
            ix = res.spans.schema.get_field_index("record_line")
            res.spans = res.spans.set_column(ix, "record_line", pc.add(res.spans.column("record_line"),
                                                                         pa.scalar(records, pa.int64())))
        tables.append(res.spans)
        rejects.extend(res.rejects)
        records += res.records
        line_off += block.count(b"\n")
    return SpanResult(concat_span_tables(tables), rejects, records, FORMAT_JSON)


def _g(d: dict[str, Any], camel: str, snake: str) -> Any:
    v = d.get(camel)
    return d.get(snake) if v is None else v


def _resource_spans(doc: Any) -> list[Any] | None:
    if not isinstance(doc, dict):
        return None
    for wrapper in ("result", "trace"):  # Jaeger /api/v3, Tempo /api/v2/traces
        inner = doc.get(wrapper)
        if isinstance(inner, dict):
            doc = inner
    for key in ("resourceSpans", "resource_spans", "batches"):
        v = doc.get(key)
        if isinstance(v, list):
            return v
    if not doc:  # {} : an empty export
        return []
    return None




def any_value(v: Any) -> Any:
    """OTLP AnyValue (JSON form) → a Python scalar (arrays joined with ',', kvlists as JSON)."""
    if not isinstance(v, dict):
        return v
    for k in ("stringValue", "string_value"):
        if k in v:
            return v[k]
    for k in ("intValue", "int_value"):
        if k in v:
            x = v[k]
            try:
                return int(x)
            except (TypeError, ValueError):
                return x
    for k in ("boolValue", "bool_value", "doubleValue", "double_value"):
        if k in v:
            return v[k]
    arr = v.get("arrayValue") or v.get("array_value")
    if isinstance(arr, dict):
        vals = [any_value(x) for x in arr.get("values") or []]
        return ",".join(str(x) for x in vals if x is not None) or None
    kvl = v.get("kvlistValue") or v.get("kvlist_value")
    if isinstance(kvl, dict):
        return json.dumps({kv.get("key"): any_value(kv.get("value")) for kv in kvl.get("values") or []
                           if isinstance(kv, dict)})
    return None


def _attr_items(attrs: Any, name: str) -> list[tuple[str, Any]]:
    if attrs is None:
        return []
    if not isinstance(attrs, list):
        raise SpanError("expected a list of {key, value}", name)
    out = []
    for kv in attrs:
        if isinstance(kv, dict) and isinstance(kv.get("key"), str):
            out.append((kv["key"], any_value(kv.get("value"))))
    return out


def _resource(rs: Any, builder: SpanTableBuilder, rejects: list[Reject], state: dict[str, int], *, file: str,
              source: str, line: int, fmt: str) -> None:
    if not isinstance(rs, dict):
        state["records"] += 1
        rejects.append(Reject.of(file, line, "resourceSpans element is not an object", json_sample(rs)))
        return
    res = rs.get("resource") or {}
    try:
        base = attr_fields(_attr_items(res.get("attributes") if isinstance(res, dict) else None,
                                       "resource.attributes"))
    except SpanError as exc:
        base = {}
        rejects.append(Reject.of(file, line, str(exc), json_sample(res), field=exc.field))
    scopes = _g(rs, "scopeSpans", "scope_spans")
    if scopes is None:
        scopes = _g(rs, "instrumentationLibrarySpans", "instrumentation_library_spans") or []
    if not isinstance(scopes, list):
        state["records"] += 1
        rejects.append(Reject.of(file, line, "scopeSpans is not a list", json_sample(scopes), field="scopeSpans"))
        return
    for ss in scopes:
        spans = ss.get("spans") if isinstance(ss, dict) else None
        if not isinstance(spans, list):
            continue
        for sp in spans:
            state["records"] += 1
            index = state["records"]
            try:
                builder.add(_span(sp, base, file=file, source=source, index=index, fmt=fmt))
            except (SpanError, ValueError, TypeError, AttributeError, OverflowError) as exc:
                rejects.append(Reject.of(file, line, f"span #{index}: {exc}", json_sample(sp),
                                         field=getattr(exc, "field", None)))


def _span(sp: Any, base: dict[str, Any], *, file: str, source: str, index: int, fmt: str) -> dict[str, Any]:
    if not isinstance(sp, dict):
        raise SpanError(f"expected a span object, got {type(sp).__name__}", "span")
    ids = {camel: read_id(_g(sp, camel, snake), camel)
           for camel, snake in (("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id"))}
    if ids["traceId"] is None:
        raise SpanError("missing", "traceId")
    if ids["spanId"] is None:
        raise SpanError("missing", "spanId")
    start = _nanos(_g(sp, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano")
    end = _nanos(_g(sp, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano")
    k = sp.get("kind")
    kind = kind_name(k)
    if k is not None and kind is None and str(k).lower() not in ("0", "span_kind_unspecified"):
        raise SpanError(f"unknown span kind {k!r}", "kind")
    status = sp.get("status") or {}
    if not isinstance(status, dict):
        raise SpanError("expected an object", "status")
    code = status.get("code")
    row = dict(base)
    row.update(attr_fields(_attr_items(sp.get("attributes"), "attributes")))
    row.update({
        "trace_id": ids["traceId"],
        "span_id": ids["spanId"],
        "parent_span_id": ids["parentSpanId"],
        "kind": kind,
        "shared": False,
        "name": sp.get("name") if isinstance(sp.get("name"), str) else None,
        "start_us": start // 1000 if start is not None else None,
        "duration_ms": (end - start) / 1e6 if (start is not None and end is not None and end >= start) else None,
        "status": _STATUS.get(str(code).lower()) if code is not None else None,
        "status_message": status.get("message") or None,
        "record_format": fmt,
        "record_source": source,
        "record_file": file,
        "record_line": index,
    })
    return row


# ---------------------------------------------------------------------------------------------
# Protobuf
# ---------------------------------------------------------------------------------------------
def parse_otlp_proto(data: bytes, *, file: str, source: str | None = None) -> SpanResult:
    """OTLP protobuf bytes (one message, or length-prefixed messages) → SpanResult."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

    messages: list[tuple[int, bytes]] = []
    rejects: list[Reject] = []
    framed = _split_frames(data)
    messages = framed if framed is not None else [(0, data)]
    builder = SpanTableBuilder()
    state = {"records": 0}
    for offset, blob in messages:
        msg = TracesData()
        try:
            msg.ParseFromString(blob)
        except (DecodeError, RuntimeError, ValueError) as exc:
            rejects.append(Reject.of(file, offset, f"not an OTLP protobuf TracesData message at byte {offset}: {exc}",
                                     blob[:64].hex()))
            continue
        for rs in msg.resource_spans:
            base = attr_fields((kv.key, _pb_value(kv.value)) for kv in rs.resource.attributes)
            for ss in list(rs.scope_spans) + list(getattr(rs, "instrumentation_library_spans", [])):
                for sp in ss.spans:
                    state["records"] += 1
                    try:
                        builder.add(_pb_span(sp, base, file=file, source=source or file, index=state["records"]))
                    except ValueError as exc:
                        rejects.append(Reject.of(file, state["records"], f"span #{state['records']}: {exc}",
                                                 sp.SerializeToString()[:64].hex(), field=getattr(exc, "field", None)))
    return SpanResult(builder.table(), rejects, state["records"], FORMAT_PROTO)


def _split_frames(data: bytes) -> list[tuple[int, bytes]] | None:
    """A stream of 4-byte big-endian length-prefixed messages, if the whole input is exactly that."""
    frames = []
    pos, n = 0, len(data)
    if n < 5 or data[:1] == b"\x0a":
        return None
    while pos < n:
        if pos + 4 > n:
            return None
        (size,) = struct.unpack(">I", data[pos:pos + 4])
        if size == 0 or pos + 4 + size > n or data[pos + 4:pos + 5] != b"\x0a":
            return None
        frames.append((pos, data[pos + 4:pos + 4 + size]))
        pos += 4 + size
    return frames


def _pb_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return ",".join(str(_pb_value(x)) for x in v.array_value.values) or None
    if which == "kvlist_value":
        return json.dumps({kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values})
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


_PB_STATUS = {0: None, 1: "ok", 2: "error"}


def _pb_span(sp: Any, base: dict[str, Any], *, file: str, source: str, index: int) -> dict[str, Any]:
    trace_id = sp.trace_id.hex() or None
    span_id = sp.span_id.hex() or None
    if trace_id is None or trace_id.strip("0") == "":
        raise SpanError("missing", "trace_id")
    if span_id is None or span_id.strip("0") == "":
        raise SpanError("missing", "span_id")
    parent = sp.parent_span_id.hex() or None
    if parent is not None and parent.strip("0") == "":
        parent = None
    row = dict(base)
    row.update(attr_fields((kv.key, _pb_value(kv.value)) for kv in sp.attributes))
    start, end = sp.start_time_unix_nano, sp.end_time_unix_nano
    if start >= MAX_NANOS or end >= MAX_NANOS:
        raise SpanError(f"out of range: {max(start, end)} (after the year 9999)", "start_time_unix_nano")
    row.update({
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "kind": kind_name(sp.kind),
        "shared": False,
        "name": sp.name or None,
        "start_us": start // 1000 if start else None,
        "duration_ms": (end - start) / 1e6 if (start and end and end >= start) else None,
        "status": _PB_STATUS.get(sp.status.code),
        "status_message": sp.status.message or None,
        "record_format": FORMAT_PROTO,
        "record_source": source,
        "record_file": file,
        "record_line": index,
    })
    return row


# ---------------------------------------------------------------------------------------------
# JSON lines, vectorized (pyarrow JSON reader + Arrow compute)
# ---------------------------------------------------------------------------------------------
_FAST_MIN_BYTES = 1 << 20  # below 1 MiB the Python path is as quick and simpler


def _any_value_type(int_type):
    import pyarrow as pa

    return pa.struct([("stringValue", pa.string()), ("intValue", int_type), ("boolValue", pa.bool_()),
                      ("doubleValue", pa.float64())])


def _fast_schema(kind_type, code_type, int_type, time_type):
    import pyarrow as pa

    kv = pa.list_(pa.struct([("key", pa.string()), ("value", _any_value_type(int_type))]))
    span = pa.struct([
        ("traceId", pa.string()), ("spanId", pa.string()), ("parentSpanId", pa.string()), ("name", pa.string()),
        ("kind", kind_type), ("startTimeUnixNano", time_type), ("endTimeUnixNano", time_type),
        ("attributes", kv), ("status", pa.struct([("code", code_type), ("message", pa.string())])),
    ])
    rs = pa.struct([("resource", pa.struct([("attributes", kv)])),
                    ("scopeSpans", pa.list_(pa.struct([("spans", pa.list_(span))])))])
    return pa.schema([("resourceSpans", pa.list_(rs))])


def _fast_json_lines(data: bytes, *, file: str, source: str | None) -> SpanResult | None:
    """The vectorized reader for a block of the Collector's JSON lines; None when it does not apply."""
    import pyarrow as pa
    import pyarrow.json as pj

    try:  # Arrow's JSON reader would carry invalid UTF-8 inside strings into the table
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None

    # The Collector's JSON marshaller writes kind/status.code as numbers and int64 as strings; other
    # writers use enum names or numbers. Try the common combinations, fall back when none fits.
    variants = [
        (pa.int64(), pa.int64(), pa.string(), pa.string()),
        (pa.string(), pa.string(), pa.string(), pa.string()),
        (pa.int64(), pa.int64(), pa.int64(), pa.int64()),
        (pa.string(), pa.string(), pa.int64(), pa.int64()),
    ]
    table = None
    for kind_t, code_t, int_t, time_t in variants:
        try:
            table = pj.read_json(
                io.BytesIO(data),
                read_options=pj.ReadOptions(block_size=1 << 24, use_threads=True),
                parse_options=pj.ParseOptions(explicit_schema=_fast_schema(kind_t, code_t, int_t, time_t),
                                              unexpected_field_behavior="ignore", newlines_in_values=False),
            )
            break
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            continue
    if table is None:
        return None
    try:
        spans = _flatten(table, file=file, source=source or file)
    except _Fallback:
        return None
    return SpanResult(spans, [], spans.num_rows, FORMAT_JSON)


class _Fallback(Exception):
    """The fast path met something only the Python path handles (base64 ids, odd values)."""


def _flatten(table, *, file: str, source: str):
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rs = table.column("resourceSpans").combine_chunks()
    rs_flat = pc.list_flatten(rs)  # one row per resourceSpans element
    res_attrs = pc.struct_field(pc.struct_field(rs_flat, "resource"), "attributes")
    scopes = pc.struct_field(rs_flat, "scopeSpans")
    scope_flat = pc.list_flatten(scopes)
    scope_parent = pc.list_parent_indices(scopes).to_numpy()
    spans_l = pc.struct_field(scope_flat, "spans")
    spans = pc.list_flatten(spans_l)
    span_scope = pc.list_parent_indices(spans_l).to_numpy()
    span_res = scope_parent[span_scope] if len(span_scope) else np.zeros(0, dtype=np.int64)
    n = len(spans)
    if n == 0:
        return empty_span_table()

    def f(name):
        return pc.struct_field(spans, name)

    def ids(arr, required: bool):
        # Hex only here (16 or 32 digits: lower-cased); anything else, e.g. base64 as Tempo writes it,
        # goes to the Python path.
        length = pc.utf8_length(arr)
        ok = pc.fill_null(pc.or_(pc.is_in(length, value_set=pa.array([16, 32], pa.int32())), pc.equal(length, 0)),
                          True)
        if not pc.all(ok).as_py():
            raise _Fallback
        lower = pc.utf8_lower(arr)
        zero = pc.fill_null(pc.is_in(lower, value_set=pa.array(["", "0" * 16, "0" * 32])), True)
        out = pc.if_else(zero, pa.scalar(None, pa.string()), lower)
        if required and out.null_count:
            raise _Fallback
        return out

    start = _int_col(f("startTimeUnixNano"))
    end = _int_col(f("endTimeUnixNano"))
    for t in (start, end):  # out-of-range times are rejected span by span on the reference path
        mm = pc.min_max(t).as_py()
        if mm["min"] is not None and (mm["min"] < 0 or mm["max"] >= MAX_NANOS):
            raise _Fallback
    kind_raw = pc.cast(f("kind"), pa.string())
    kind = _map_values(kind_raw, {k: v for k, v in _KIND_NAMES.items() if v})
    status = pc.struct_field(f("status"), "code")
    status = _map_values(pc.utf8_lower(pc.cast(status, pa.string())), {k: v for k, v in _STATUS.items() if v})
    dur = pc.divide(pc.cast(pc.subtract(end, start), pa.float64()), 1e6)
    dur = pc.if_else(pc.fill_null(pc.greater_equal(end, start), False), dur, pa.scalar(None, pa.float64()))
    core = {
        "trace_id": ids(f("traceId"), True),
        "span_id": ids(f("spanId"), True),
        "parent_span_id": ids(f("parentSpanId"), False),
        "kind": kind,
        "shared": pa.array(np.zeros(n, dtype=bool)),
        "name": f("name"),
        "start_us": pc.divide(start, 1000),
        "duration_ms": dur,
        "status": status,
        "status_message": pc.struct_field(f("status"), "message"),
        "remote_service": pa.nulls(n, pa.string()),
        "local_addr": pa.nulls(n, pa.string()),
        "record_format": pa.array(np.full(n, FORMAT_JSON, dtype=object), pa.string()),
        "record_source": pa.array(np.full(n, source, dtype=object), pa.string()),
        "record_file": pa.array(np.full(n, file, dtype=object), pa.string()),
        "record_line": pa.array(np.arange(1, n + 1, dtype=np.int64)),
    }
    span_vals = _pivot(f("attributes"), n)
    res_vals = _pivot(res_attrs, len(rs_flat))
    cols = dict(core)
    take_res = pa.array(span_res, type=pa.int64())
    for name in ATTR_FIELDS:
        s_val = span_vals["fields"].get(name)
        r_val = res_vals["fields"].get(name)
        r_val = r_val.take(take_res) if r_val is not None else None
        if s_val is not None and r_val is not None:
            cols[name] = pc.coalesce(s_val, r_val)
        else:
            cols[name] = s_val if s_val is not None else (r_val if r_val is not None else pa.nulls(n, pa.string()))
    for hint in ("db_hint", "msg_hint"):
        s_h = span_vals[hint]
        r_h = res_vals[hint].take(take_res)
        cols[hint] = pc.or_(s_h, r_h)
    schema = _raw_schema()
    arrays = [cols[fld.name].cast(fld.type) if not cols[fld.name].type.equals(fld.type) else cols[fld.name]
              for fld in schema]
    return finish_span_table(pa.Table.from_arrays([_arr(a) for a in arrays], schema=schema))


def _arr(a):
    import pyarrow as pa

    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _map_values(arr, mapping: dict[str, str]):
    """Row-wise dictionary lookup of strings (lower-cased keys); unmatched → null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = list(mapping)
    ix = pc.index_in(pc.utf8_lower(arr), value_set=pa.array(keys))
    vals = pa.array([mapping[k] for k in keys], pa.string())
    return vals.take(ix)


def _int_col(arr):
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(arr.type):
        return pc.cast(arr, pa.int64())
    try:
        return pc.cast(arr, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise _Fallback from None


def _pivot(attrs, n: int) -> dict[str, Any]:
    """list<{key, value}> per row → {field: string array of length n} via KEYMAP priorities, plus the
    db/messaging hints. Vectorized: flatten, dictionary-encode keys, sort by priority, scatter."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    flat = pc.list_flatten(attrs)
    parent = pc.list_parent_indices(attrs).to_numpy()
    keys = pc.struct_field(flat, "key")
    value = pc.struct_field(flat, "value")
    sval = pc.struct_field(value, "stringValue")
    ival = pc.cast(pc.struct_field(value, "intValue"), pa.string())
    bval = pc.struct_field(value, "boolValue")
    bval = pc.if_else(bval, pa.scalar("true"), pa.scalar("false"))
    dval = pc.struct_field(value, "doubleValue")
    dval_int = pc.if_else(pc.equal(dval, pc.floor(dval)), pc.cast(pc.cast(dval, pa.int64(), safe=False), pa.string()),
                          pc.cast(dval, pa.string()))
    text = pc.coalesce(sval, ival, bval, dval_int)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    enc = pc.dictionary_encode(keys).combine_chunks() if isinstance(keys, pa.ChunkedArray) else pc.dictionary_encode(keys)
    dict_keys = enc.dictionary.to_pylist()
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    field_names = list(dict.fromkeys(f for f, _ in KEYMAP.values()))
    fid = {f: i for i, f in enumerate(field_names)}
    code_field = np.full(len(dict_keys) + 1, -1, dtype=np.int64)
    code_prio = np.full(len(dict_keys) + 1, 99, dtype=np.int64)
    db_code = np.zeros(len(dict_keys) + 1, dtype=bool)
    msg_code = np.zeros(len(dict_keys) + 1, dtype=bool)
    for i, k in enumerate(dict_keys):
        hit = KEYMAP.get(k) if k is not None else None
        if hit:
            code_field[i], code_prio[i] = fid[hit[0]], hit[1]
        elif k is not None:
            db_code[i] = k.startswith(_DB_PREFIXES)
            msg_code[i] = k.startswith(_MSG_PREFIXES)
    fcodes = code_field[codes]
    prio = code_prio[codes]
    valid = (fcodes >= 0) & ~pc.is_null(text).to_numpy(zero_copy_only=False)
    sel = np.nonzero(valid)[0]
    out: dict[str, Any] = {"fields": {}}
    if len(sel):
        # Sort by (row, field, priority): the first of each (row, field) run is the winner.
        order = sel[np.lexsort((prio[sel], fcodes[sel], parent[sel]))]
        rows, flds = parent[order], fcodes[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (flds[1:] != flds[:-1])
        order, rows, flds = order[first], rows[first], flds[first]
        for f_i in np.unique(flds):
            m = flds == f_i
            pos = np.full(n, -1, dtype=np.int64)
            pos[rows[m]] = order[m]
            out["fields"][field_names[f_i]] = text.take(pa.array(pos, mask=pos < 0))
    for hint, table in (("db_hint", db_code), ("msg_hint", msg_code)):
        flag = np.zeros(n, dtype=bool)
        hit_rows = parent[table[codes]]
        flag[hit_rows] = True
        out[hint] = pa.array(flag)
    return out


def _nanos(v: Any, name: str) -> int | None:
    return epoch_int(v, name, per_second=10**9, unit="Unix nanoseconds")
