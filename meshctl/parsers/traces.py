"""Trace files → spans → request rows: the one entry point for every trace format.

    from meshctl.parsers.traces import read_trace_file, trace_rows, trace_file_rows

    spans = read_trace_file("trace.json")            # SpanResult: .spans (span table), .rejects, .records
    rows = trace_rows(spans.spans)                   # requests-table Arrow table (analyzers/table.py)
    res = trace_file_rows("a.json", "b.json.gz")     # ParseResult: rows of all files paired together

Formats are detected from the first bytes (meshctl.parsers.trace_detect) or forced (`fmt=`). Pairing
runs over all spans given at once, so a call whose client and server spans sit in different files
(or API pages) still pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from meshctl.parsers.base import ParseResult, Reject
from meshctl.parsers.spans import SpanResult, concat_span_tables, empty_span_table, pair_spans
from meshctl.parsers.trace_detect import HEAD_BYTES, TRACE_FORMATS, canonical_format, detect_trace_format

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from meshctl.sources.files import InputFile


def _parser(fmt: str) -> Callable[..., SpanResult]:
    if fmt == "zipkin":
        from meshctl.parsers.zipkin import parse_zipkin

        return parse_zipkin
    if fmt == "jaeger":
        from meshctl.parsers.jaeger import parse_jaeger

        return parse_jaeger
    if fmt == "otlp-json":
        from meshctl.parsers.otlp_traces import parse_otlp_json

        return parse_otlp_json
    if fmt == "otlp-proto":
        from meshctl.parsers.otlp_traces import parse_otlp_proto

        return parse_otlp_proto
    raise ValueError(f"unknown trace format {fmt!r}")


def parse_trace_bytes(data: bytes, *, file: str, source: str | None = None, fmt: str = "auto") -> SpanResult:
    """Bytes of one trace file (or API response) → SpanResult. Undetectable input is one reject."""
    if fmt in (None, "", "auto"):
        detected = detect_trace_format(data[:HEAD_BYTES])
        if detected is None:
            if not data.strip():
                return SpanResult(empty_span_table(), [], 0, None)
            return SpanResult(empty_span_table(), [Reject.of(
                file, 1, "not a trace file: expected OTLP JSON/protobuf, Jaeger JSON or Zipkin v2 JSON "
                f"(force one with --format {'|'.join(TRACE_FORMATS)})", data[:200])], 1, None)
        fmt = detected
    else:
        fmt = canonical_format(fmt)
    res = _parser(fmt)(data, file=file, source=source)
    res.format = res.format or fmt
    return res


def read_trace_file(path: str | Path | InputFile, *, fmt: str = "auto") -> SpanResult:
    """One trace file (plain or gzip; an InputFile may be stdin) → SpanResult."""
    from meshctl.sources.files import InputFile

    inp = path if isinstance(path, InputFile) else InputFile(str(path), Path(path))
    with inp.open() as f:
        head = f.read(HEAD_BYTES)
        if head[:2] == b"\x1f\x8b":  # gzip the opener could not see (a stdin without peek)
            import gzip

            return parse_trace_bytes(gzip.decompress(head + f.read()), file=inp.name, source=inp.name, fmt=fmt)
        chosen = canonical_format(fmt) if fmt not in (None, "", "auto") else detect_trace_format(head)
        if chosen == "otlp-json":
            from meshctl.parsers.otlp_traces import is_json_lines_head, read_otlp_json_lines

            if is_json_lines_head(head):  # the Collector's JSON lines: read in blocks, not all at once
                return read_otlp_json_lines(head, f, file=inp.name, source=inp.name)
        data = head + f.read()
    return parse_trace_bytes(data, file=inp.name, source=inp.name, fmt=fmt)


def trace_rows(spans: pa.Table | SpanResult | Iterable[pa.Table | SpanResult]) -> pa.Table:
    """Span table(s) → requests-table rows (client/server pairing across all of them)."""
    if isinstance(spans, SpanResult):
        tables = [spans.spans]
    elif hasattr(spans, "num_rows"):
        tables = [spans]  # type: ignore[list-item]
    else:
        tables = [s.spans if isinstance(s, SpanResult) else s for s in spans]  # type: ignore[union-attr]
    return pair_spans(concat_span_tables(tables))


def trace_file_rows(*paths: str | Path, fmt: str = "auto") -> ParseResult:
    """Trace files → ParseResult(rows, rejects, lines=spans read), all files paired together."""
    results = [read_trace_file(p, fmt=fmt) for p in paths]
    rejects = [r for res in results for r in res.rejects]
    return ParseResult(trace_rows(results), rejects, sum(res.records for res in results))
