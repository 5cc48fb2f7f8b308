"""Access logs from a byte stream: envelopes, format detection, vectorized blocks, per-line fallback.

    parser = AccessLogParser("auto")                 # or "istio-json", or format_string=...
    for result in parser.parse_stream(stream, file="proxy.log"):
        ...  # ParseResult: rows (requests-table columns + identity inputs), rejects, counts

For each block of lines (meshctl/parsers/blocks.py):
1. the container envelope found on the file's first lines (CRI, Docker json-file, ...) is removed;
2. the format's vectorized reader parses the block (Arrow CSV/JSON readers, string kernels);
3. lines it could not place — and only those — go through the format's per-line reader, after
   taking off any envelope they carry; a line that still does not read is a `Reject` naming file,
   line and reason (and the format it looks like, when it is another one);
4. values are converted to the requests-table types (normalize.py); a row with an unreadable
   value is rejected, naming the field.

Per block: rows + rejected + ignored == lines read, where ignored counts blank lines and a proxy's
own diagnostic lines (pilot-agent, Envoy, linkerd2-proxy logs share the container's stdout).
An OTLP file may hold several records per line; its counts are records, not lines.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from meshctl.parsers.base import ParseResult, Reject, json_text
from meshctl.parsers.blocks import BLOCK_BYTES, Block, LongLine, iter_blocks
from meshctl.parsers.containers import detect_wrapper, unwrap_block, unwrap_line
from meshctl.parsers.detect import (
    detect_format_name,
    is_proxy_diagnostic,
    make_format,
    score_formats,
)
from meshctl.parsers.fields import AUX_REPORTER_POD
from meshctl.parsers.normalize import RawBatch, normalize
from meshctl.parsers.text import BlockFailed, LineError
from meshctl.sources.files import MAX_LINE_BYTES

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

SAMPLE_LINES = 64
EXPLAINED_REJECTS = 1000  # rejects per file whose reason says which other format the line looks like
MAX_DOCUMENT_BYTES = 1 << 30  # a pretty-printed OTLP document is read whole, up to this size
# Blocks parsed at once. Three on two cores (measured): while one thread waits in polars or Arrow
# (no GIL held), another converts a finished block in Python.
PARSE_THREADS = 3


class AccessLogParser:
    """Parser for `meshctl.ingest`: any supported access-log format, auto-detected per file."""

    kind = "access_log"

    def __init__(
        self,
        format: str = "auto",
        format_string: str | None = None,
        *,
        block_bytes: int | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        threads: int = PARSE_THREADS,
    ) -> None:
        if format_string and format == "auto":
            format = "envoy-format"
        if format != "auto":
            make_format(format, format_string)  # fail early on a bad name or format string
        self.format = format
        self.format_string = format_string
        self.block_bytes = block_bytes  # None: the format's own size (JSON lines: larger blocks), else BLOCK_BYTES
        self.max_line_bytes = max_line_bytes
        self.threads = max(1, threads)

    @property
    def name(self) -> str:
        return self.format

    def parse_stream(self, stream: BinaryIO, *, file: str, source: str | None = None) -> Iterator[ParseResult]:
        """ParseResults in file order; blocks are parsed `threads` at a time (Arrow releases the GIL)."""
        from concurrent.futures import Future, ThreadPoolExecutor

        state = _FileState(self, file, source)
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="meshctl-parse") if self.threads > 1 else None
        pending: deque[Future[ParseResult] | ParseResult] = deque()

        def ready(limit: int) -> Iterator[ParseResult]:
            while len(pending) > limit:
                x = pending.popleft()
                yield x.result() if isinstance(x, Future) else x

        try:
            def size() -> int:
                if self.block_bytes is not None:
                    return self.block_bytes
                return getattr(state.fmt, "block_bytes", BLOCK_BYTES) if state.fmt is not None else BLOCK_BYTES

            for item in iter_blocks(stream, block_bytes=size, max_line_bytes=self.max_line_bytes):
                if isinstance(item, LongLine):
                    reason = f"line longer than {self.max_line_bytes} bytes ({item.size_hint}+ bytes); skipped"
                    pending.append(state.result(None, [Reject.of(file, item.line, reason, item.head)], lines=1))
                elif state.document is not None:
                    state.document.append(item.data)
                    state.document_bytes += len(item.data)
                    if state.document_bytes > MAX_DOCUMENT_BYTES:
                        pending.append(state.result(
                            None, [Reject.of(file, state.document_line, "OTLP document too large", b"")], lines=1))
                        break
                else:
                    if state.wrapper is None:
                        state.sniff(item)
                        if state.document is not None:
                            state.document.append(item.data)
                            state.document_bytes += len(item.data)
                            continue
                    pending.append(pool.submit(state.parse_block, item) if pool else state.parse_block(item))
                yield from ready(self.threads)  # bounded read-ahead: memory stays a few blocks
            yield from ready(0)
            if state.document is not None and state.document_bytes <= MAX_DOCUMENT_BYTES:
                yield state.parse_document()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)


class _FileState:
    """What one file's parse has learnt so far (envelope, format) plus counters."""

    def __init__(self, parser: AccessLogParser, file: str, source: str | None) -> None:
        self.parser = parser
        self.file = file
        self.source = source
        self.wrapper: str | None = None
        self.fmt: Any = None
        if parser.format != "auto":
            self.fmt = make_format(parser.format, parser.format_string)
        self.document: list[bytes] | None = None
        self.document_bytes = 0
        self.document_line = 1
        self._meta: _MetaFormat | None = None
        self._explained = 0

    # ---- detection --------------------------------------------------------------------------
    def sniff(self, block: Block) -> None:
        head = block.data[: 1 << 20]
        raw = [ln.rstrip(b"\r") for ln in head.split(b"\n")[:-1] if ln.strip()][:SAMPLE_LINES]
        self.wrapper = detect_wrapper(raw)
        inner = [unwrap_line(ln)[0].decode("utf-8", "replace") for ln in raw]
        if (self.fmt is None or self.fmt.name == "otlp-logs") and _pretty_otlp(inner, block.data):
            self.fmt = self.fmt or make_format("otlp-logs")
            self.document = []
            self.document_line = block.first_line
            return
        if self.fmt is None:
            name = detect_format_name(inner)
            if name:
                self.fmt = make_format(name)

    # ---- results ----------------------------------------------------------------------------
    def result(self, table: pa.Table | None, rejects: list[Reject], *, lines: int, ignored: int = 0) -> ParseResult:
        import pyarrow as pa

        if table is None:
            table = pa.table({})
        return ParseResult(table=table, rejects=rejects, lines=lines, ignored=ignored,
                           format=self.fmt.name if self.fmt is not None else None)

    # ---- blocks -----------------------------------------------------------------------------
    def parse_block(self, block: Block) -> ParseResult:
        import numpy as np

        original = block
        block = unwrap_block(block, self.wrapper or "none")
        data, numbers, ignored = block.data, block.numbers(), 0
        fmt = self.fmt
        fast = None
        if fmt is not None and block.count and hasattr(fmt, "parse_block"):
            fast = _fast(fmt, data, block.count)
            if fast is None and block.has_blank_lines():
                # Readers skip blank lines, which breaks row → line numbering: drop them and retry.
                data, numbers, ignored = block.without_blank_lines()
                fast = _fast(fmt, data, len(numbers)) if len(numbers) else None
        count = len(numbers)
        tables: list[pa.Table] = []
        rejects: list[Reject] = []
        lines_cache: list[bytes] | None = None

        def lines() -> list[bytes]:
            nonlocal lines_cache
            if lines_cache is None:
                lines_cache = [ln[:-1] if ln.endswith(b"\r") else ln for ln in data.split(b"\n")[:-1]]
            return lines_cache

        retry: list[int] | range = range(count)
        fast_rows = 0
        if fast is not None:
            retry = fast.retry
            rows = fast.rows
            fast_rows = len(rows)
            if fast_rows:
                raw = RawBatch(
                    columns=fast.columns,
                    fields={k: f for k in fast.columns if (f := fmt.field_of(k)) is not None},
                    lines=numbers[rows],
                    constants=dict(fmt.constants),
                    sample=lambda i, rows=rows: lines()[int(rows[i])],
                )
                t, rj = normalize(raw, fmt=fmt.name, file=self.file, source=self.source, kind=fmt.kind)
                tables.append(t)
                rejects.extend(rj)
        records = 0
        if retry:
            originals = None
            if ignored == 0 and self.wrapper not in (None, "none"):
                originals = original.lines()
            t, rj, ign, records = self._per_line(
                [lines()[i] for i in retry], numbers[np.asarray(retry, dtype=np.int64)],
                [originals[i] for i in retry] if originals else None)
            if t is not None:
                tables.append(t)
            rejects.extend(rj)
            ignored += ign
        # Every line is a row, a reject or ignored (an OTLP line may hold several records).
        return self.result(_concat(tables), rejects, lines=fast_rows + records + ignored, ignored=ignored)

    def _per_line(
        self, lines: list[bytes], numbers: Any, originals: list[bytes] | None
    ) -> tuple[pa.Table | None, list[Reject], int, int]:
        """The slow path: one line at a time. Returns (table, rejects, ignored, records)."""
        import numpy as np

        groups: dict[str, tuple[Any, list[dict[str, Any]], list[int], list[bytes]]] = {}
        rejects: list[Reject] = []
        ignored = 0
        records = 0
        for k, ln in enumerate(lines):
            number = int(numbers[k])
            text = ln.decode("utf-8", "replace")
            if not text.strip():
                ignored += 1
                continue
            fmt, recs, err = self._read_line(ln)
            if recs is None and originals is not None and originals[k] != ln:
                fmt, recs, err2 = self._read_line(originals[k])
                err = err or err2
            if recs is None:
                if is_proxy_diagnostic(text) or is_proxy_diagnostic(unwrap_line(ln)[0].decode("utf-8", "replace")):
                    ignored += 1
                    continue
                records += 1
                rejects.append(Reject.of(self.file, number, self._why(ln, err), ln, field=err.field if err else None))
                continue
            if not recs:  # a valid document without records (an empty OTLP export)
                ignored += 1
                continue
            records += len(recs)
            g = groups.setdefault(str(id(fmt)), (fmt, [], [], []))
            for r in recs:
                g[1].append(r)
                g[2].append(number)
                g[3].append(ln)
        tables = []
        for fmt, recs, nums, raws in groups.values():
            keys = list(dict.fromkeys(k for r in recs for k in r))
            rank = getattr(fmt, "key_rank", None)
            if rank is not None:
                keys.sort(key=rank)
            t, rj = self._records_table(fmt, recs, keys, np.asarray(nums, dtype=np.int64),
                                        lambda i, raws=raws: raws[i])
            tables.append(t)
            rejects.extend(rj)
        return (_concat(tables) if tables else None), rejects, ignored, records

    def _records_table(self, fmt: Any, recs: list[dict[str, Any]], keys: list[str], lines: Any,
                       sample: Any) -> tuple[pa.Table, list[Reject]]:
        """Records read one by one (key → raw value) → rows and rejects. `keys` in the order their
        values are tried: the first non-null source of a column wins."""
        import pyarrow as pa

        fields = {k: f for k in keys if (f := fmt.field_of(k)) is not None}
        columns = {k: pa.array([json_text(r.get(k)) for r in recs], type=pa.string()) for k in fields}
        raw = RawBatch(columns=columns, fields=fields, lines=lines, constants=dict(fmt.constants), sample=sample)
        return normalize(raw, fmt=fmt.name, file=self.file, source=self.source, kind=fmt.kind)

    def _read_line(self, ln: bytes) -> tuple[Any, list[dict[str, Any]] | None, LineError | None]:
        """Try the file's format on a line, then the line without any envelope it carries."""
        err: LineError | None = None
        candidates = [ln]
        inner, meta = unwrap_line(ln)
        if inner != ln:
            candidates.append(inner)
        fmt = self.fmt
        if fmt is None:
            name = detect_format_name([c.decode("utf-8", "replace") for c in candidates[-1:]])
            if name is None:
                return None, None, LineError("not an access-log line in any format meshctl reads")
            # The first readable line decides the file's format from here on.
            self.fmt = fmt = make_format(name)
        for cand in candidates:
            try:
                recs = fmt.parse_line(cand)
            except LineError as exc:
                err = err or exc
                continue
            if meta is not None and cand is not ln:
                for r in recs:
                    if meta.pod:
                        r.setdefault("_meta_pod", meta.pod)
                    if meta.namespace:
                        r.setdefault("_meta_ns", meta.namespace)
                if self._meta is None or self._meta.fmt is not fmt:
                    self._meta = _MetaFormat(fmt)
                return self._meta, recs, None
            return fmt, recs, None
        return fmt, None, err

    def _why(self, ln: bytes, err: LineError | None) -> str:
        reason = err.reason if err else "unreadable line"
        self._explained += 1
        if self.fmt is None or self._explained > EXPLAINED_REJECTS:
            return reason  # telling which format a line looks like costs a detection per line
        try:
            text = unwrap_line(ln)[0].decode("utf-8")
        except UnicodeDecodeError:
            return reason
        others = [name for s, name in score_formats([text]) if s >= 0.5 and name != self.fmt.name]
        if others:
            reason += f" (the line looks like {others[0]}: a line of another format)"
        return reason

    # ---- whole OTLP documents ---------------------------------------------------------------
    def parse_document(self) -> ParseResult:
        import numpy as np

        data = b"".join(self.document or [])
        self.document = None
        fmt = self.fmt
        try:
            doc = json.loads(data)
            recs = fmt.records(doc)
        except (ValueError, UnicodeDecodeError) as exc:
            return self.result(None, [Reject.of(self.file, self.document_line, f"malformed OTLP JSON document: {exc}",
                                                data[:512])], lines=1)
        except LineError as exc:
            return self.result(None, [Reject.of(self.file, self.document_line, exc.reason, data[:512])], lines=1)
        if not recs:
            return self.result(None, [], lines=0)
        rank = getattr(fmt, "key_rank", lambda k: 0)
        keys = sorted({k for r in recs for k in r}, key=lambda k: (rank(k), k))
        t, rj = self._records_table(fmt, recs, keys, np.arange(1, len(recs) + 1, dtype=np.int64),
                                    lambda i: json.dumps(recs[i])[:512])
        return self.result(t, rj, lines=len(recs))


class _MetaFormat:
    """A format seen through an envelope that named the pod (shipper JSON with kubernetes.*)."""

    def __init__(self, fmt: Any) -> None:
        self.fmt = fmt
        self.name = fmt.name
        self.kind = fmt.kind
        self.constants = fmt.constants
        self.key_rank = getattr(fmt, "key_rank", None)

    def field_of(self, key: str) -> Any:
        from meshctl.parsers.fields import Field

        if key == "_meta_pod":
            return Field(AUX_REPORTER_POD)
        if key == "_meta_ns":
            return Field("reporter_namespace")
        return self.fmt.field_of(key)


def _fast(fmt: Any, data: bytes, count: int) -> Any:
    try:
        return fmt.parse_block(data, count)
    except BlockFailed:
        return None


def _concat(tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pa.table({})
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="default")


def _pretty_otlp(inner: list[str], data: bytes) -> bool:
    """A pretty-printed OTLP document (first line `{` alone) rather than one document per line."""
    if not inner or not inner[0].lstrip().startswith("{"):
        return False
    try:
        json.loads(inner[0])
        return False
    except ValueError:
        pass
    return b'"resourceLogs"' in data[: 1 << 20]
