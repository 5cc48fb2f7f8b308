"""Which trace format a file is, and reading JSON documents so that a bad one loses as little as possible.

Formats (each can be forced with `--format`):

  otlp-json   OTLP/JSON: a TracesData / ExportTraceServiceRequest document (`{"resourceSpans": ...}`), or
              the OpenTelemetry Collector file exporter's JSON lines (one such document per line);
              Tempo's `{"batches": ...}` / `{"trace": ...}` and Jaeger's `/api/v3` `{"result": ...}` wrappers;
              ids hex or base64 (protobuf-JSON, as Tempo writes it)
  otlp-proto  OTLP protobuf: one TracesData / ExportTraceServiceRequest message, or a stream of them each
              prefixed by its length (4 bytes, big-endian, as the Collector's file exporter writes them)
  jaeger      Jaeger JSON: `/api/traces` responses and UI downloads (`{"data": [trace...]}`), one trace
              object (`{"traceID", "spans", "processes"}`), the UI's internal shape (`process` on each span)
  zipkin      Zipkin v2 JSON: a span list (`/api/v2/trace/{id}`) or a list of traces (`/api/v2/traces`)
  tempo       an alias of otlp-json (Tempo's exports are OTLP JSON)

`detect_trace_format(head)` looks at the first bytes only. `load_json(data, file)` parses a JSON
document, or newline-delimited documents, and when a document is truncated or corrupt keeps every
record before the damage: the top-level array of spans / traces / resourceSpans is decoded element by
element, and the error names the file, line and column where it broke.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from meshctl.parsers.base import Reject

TRACE_FORMATS = ("otlp-json", "otlp-proto", "jaeger", "zipkin")
FORMAT_ALIASES = {"tempo": "otlp-json", "otlp": "otlp-json", "otlp-protobuf": "otlp-proto", "proto": "otlp-proto",
                  "zipkin-v2": "zipkin", "zipkin2": "zipkin", "jaeger-json": "jaeger", "json": "otlp-json"}
HEAD_BYTES = 1 << 16


def canonical_format(name: str) -> str:
    """A user-given format name (or alias) → one of TRACE_FORMATS; ValueError if unknown."""
    f = name.strip().lower()
    f = FORMAT_ALIASES.get(f, f)
    if f not in TRACE_FORMATS:
        raise ValueError(f"unknown trace format {name!r} (one of: {', '.join(TRACE_FORMATS)}, tempo, auto)")
    return f


_WS = b" \t\r\n\xef\xbb\xbf"  # whitespace and a UTF-8 byte-order mark


def detect_trace_format(head: bytes) -> str | None:
    """The trace format of a file from its first bytes (up to HEAD_BYTES); None if it is not one."""
    text = head.lstrip(_WS)
    if not text:
        return None
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 JSON
        try:
            return detect_trace_format(head.decode("utf-16").encode("utf-8"))
        except UnicodeDecodeError:
            return None
    first = text[:1]
    if first == b"[":
        return "zipkin" if _looks_zipkin(text) else None
    if first == b"{":
        # Keys that only one format uses, looked for near the start (a key name can also be a value
        # far away in a big document, so search a bounded window, largest clue first).
        window = text[:HEAD_BYTES]
        if re.search(rb'"(resourceSpans|resource_spans|batches|scopeSpans|instrumentationLibrarySpans)"\s*:', window):
            return "otlp-json"
        if re.search(rb'"(traceID|spanID|operationName|processes)"\s*:', window):
            return "jaeger"
        if re.search(rb'"result"\s*:\s*\{', window) and b"resourceSpans" in window:
            return "otlp-json"
        if re.search(rb'"(localEndpoint|remoteEndpoint)"\s*:', window):
            return "zipkin"
        if re.search(rb'"data"\s*:', window):
            return "jaeger"
        return None
    if _looks_protobuf(head):
        return "otlp-proto"
    return None


def _looks_zipkin(text: bytes) -> bool:
    window = text[:HEAD_BYTES]
    if re.match(rb"\[\s*\]", window):
        return True  # an empty span list
    return bool(re.search(rb'"(traceId|localEndpoint|remoteEndpoint)"\s*:', window)) and \
        b'"resourceSpans"' not in window


def _looks_protobuf(head: bytes) -> bool:
    """TracesData starts with field 1 (resource_spans, length-delimited: tag 0x0a); a length-prefixed
    stream starts with 4 bytes of big-endian length then that tag."""
    if head[:1] == b"\x0a":
        return True
    return len(head) > 5 and head[:2] == b"\x00\x00" and head[4:5] == b"\x0a"


# ---------------------------------------------------------------------------------------------
# Tolerant JSON
# ---------------------------------------------------------------------------------------------
@dataclass
class JsonDocs:
    """Documents read from one input, with where each started (line) and what could not be read."""

    docs: list[tuple[int, Any]] = field(default_factory=list)  # (1-based line, value)
    rejects: list[Reject] = field(default_factory=list)
    partial: bool = False  # a document was cut short: its records before the damage are in docs


def position(text: str, pos: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def decode_text(data: bytes) -> str:
    """Bytes → text: UTF-8 (a BOM is dropped), UTF-16/32 with a BOM; undecodable bytes become U+FFFD so
    one bad byte in a tag value does not cost a whole file."""
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8", errors="replace")


_ARRAY_KEYS = ("resourceSpans", "resource_spans", "batches", "data", "spans")


def load_json(data: bytes, *, file: str, what: str = "trace document") -> JsonDocs:
    """One JSON document, or JSON lines; on damage keep what is readable and reject the rest."""
    out = JsonDocs()
    text = decode_text(data)
    stripped = text.strip()
    if not stripped:
        return out
    try:
        out.docs.append((1, json.loads(text)))
        return out
    except json.JSONDecodeError as exc:
        first_error = exc
    # JSON lines (the Collector's file exporter): one document per line, each judged on its own.
    lines = text.split("\n")
    if len(lines) > 1 and _mostly_json_lines(lines):
        for no, line in enumerate(lines, start=1):
            s = line.strip()
            if not s:
                continue
            try:
                out.docs.append((no, json.loads(s)))
            except json.JSONDecodeError as exc:
                out.rejects.append(Reject.of(file, no, f"invalid JSON at column {exc.colno}: {exc.msg}", line))
        return out
    # One damaged document: recover the complete elements of its main array.
    recovered = _recover(text)
    line, col = first_error.lineno, first_error.colno
    if recovered is not None:
        value, n_ok, stop = recovered
        sline, scol = position(text, stop)
        out.docs.append((1, value))
        out.partial = True
        out.rejects.append(Reject.of(
            file, sline,
            f"{what} is damaged at line {line} column {col} ({first_error.msg}); kept the {n_ok} complete "
            f"record(s) before line {sline} column {scol}, the rest is lost",
            text[stop:stop + 200]))
    else:
        out.rejects.append(Reject.of(file, line, f"invalid JSON at line {line} column {col}: {first_error.msg}",
                                     text[max(0, first_error.pos - 80):first_error.pos + 120]))
    return out


def _mostly_json_lines(lines: list[str]) -> bool:
    starts = [ln.lstrip()[:1] for ln in lines if ln.strip()]
    return len(starts) > 1 and sum(1 for s in starts if s in ("{", "[")) >= max(2, len(starts) // 2)


def _recover(text: str) -> tuple[Any, int, int] | None:
    """Decode the leading elements of the document's main array (a top-level array, or the array under
    one of _ARRAY_KEYS); returns (document with that array, element count, offset where decoding stopped)."""
    dec = json.JSONDecoder()
    i = _skip_ws(text, 0)
    if i >= len(text):
        return None
    if text[i] == "[":
        items, stop = _decode_elements(dec, text, i + 1)
        # A Zipkin list of traces whose last trace is cut: recover its complete spans too.
        if stop < len(text) and _skip_ws(text, stop) < len(text) and text[_skip_ws(text, stop)] == "[":
            inner, stop2 = _decode_elements(dec, text, _skip_ws(text, stop) + 1)
            if inner:
                items.append(inner)
                stop = stop2
        return (items, sum(len(x) if isinstance(x, list) else 1 for x in items), stop) if items else None
    if text[i] != "{":
        return None
    for key in _ARRAY_KEYS:
        m = re.search(rf'"{re.escape(key)}"\s*:\s*\[', text)
        if m:
            items, stop = _decode_elements(dec, text, m.end())
            doc: dict[str, Any] = {key: items}
            # Keep the small sibling keys a Jaeger trace object needs (traceID, processes before spans).
            head = text[:m.start()].rstrip().rstrip(",")
            with contextlib.suppress(json.JSONDecodeError):
                doc = {**json.loads(head + "}"), key: items}
            if items:
                return doc, len(items), stop
    return None


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in " \t\r\n,":
        i += 1
    return i


def _decode_elements(dec: json.JSONDecoder, text: str, i: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    n = len(text)
    while True:
        i = _skip_ws(text, i)
        if i >= n or text[i] == "]":
            return items, i
        try:
            value, j = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            return items, i
        items.append(value)
        i = j
