"""Trace collection: sources → spans → pairing → identity → Dataset.append.

    from meshctl.ingest import file_sources, print_summary
    from meshctl.trace_ingest import ingest_traces

    report = ingest_traces(file_sources(["traces/"]), Dataset(".meshctl/data"), fmt="auto")
    print_summary(report, title="collected")

Access logs stream line by line through `meshctl.ingest.ingest`; traces cannot, because a request row
needs both of its spans, which may sit in different files or API pages. So this runs in two phases
and reuses the access-log pipeline's parts (sources, reject spool, identity, report and summary):

1. every source is read into the span table (a few at a time, with a progress bar); a source that
   fails as a whole (unreadable file, an API that keeps failing) is reported in its summary and the
   others go on;
2. the spans of all sources are paired at once (meshctl.parsers.spans.pair_spans), identities are
   completed (meshctl.identity.Identity.enrich fills what is still null), and the rows are appended.

A source's summary counts the rows whose reporting span came from it; `lines` counts spans read.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

from meshctl.ingest import IngestReport, RejectSpool, SourceErrors
from meshctl.parsers.spans import SpanResult, concat_span_tables
from meshctl.store import Dataset, SourceSummary


def read_source(src: Any, fmt: str = "auto") -> SpanResult:
    """One source → SpanResult: a trace API query (has `read`) or a file/stdin (has `input`/`open`)."""
    if hasattr(src, "read"):
        return src.read(fmt)
    from meshctl.parsers.traces import read_trace_file

    inp = getattr(src, "input", None)
    if inp is not None:
        return read_trace_file(inp, fmt=fmt)
    with contextlib.closing(src.open()) as f:
        data = f.read()
    from meshctl.parsers.traces import parse_trace_bytes

    return parse_trace_bytes(data, file=src.file, source=src.name, fmt=fmt)


def ingest_traces(
    sources: Sequence[Any],
    dataset: Dataset,
    *,
    fmt: str = "auto",
    identity: Any = None,
    workers: int = 2,
    progress: bool = True,
    dedup: bool = True,
) -> IngestReport:
    """Read, pair and store the spans of `sources`; never raises for a single bad source."""
    import zlib
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from meshctl.errors import MeshctlError
    from meshctl.identity import Identity
    from meshctl.parsers.spans import pair_spans

    t0 = time.perf_counter()
    identity = identity or Identity()
    summaries = [SourceSummary(s.name, format=None if fmt == "auto" else fmt) for s in sources]
    spool = RejectSpool()
    results: list[SpanResult | None] = [None] * len(sources)
    sizes = [s.size() for s in sources]

    def work(i: int) -> None:
        start = time.perf_counter()
        try:
            results[i] = read_source(sources[i], fmt)
        except (*SourceErrors, ValueError, zlib.error) as exc:
            summaries[i].error = str(exc) if isinstance(exc, MeshctlError) else f"{type(exc).__name__}: {exc}"
        finally:
            summaries[i].seconds = round(time.perf_counter() - start, 3)

    spans_read = 0
    with _bar(progress, len(sources)) as advance, \
            ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="meshctl-traces") as ex:
        futures = [ex.submit(work, i) for i in range(len(sources))]
        for i, fut in enumerate(futures):
            fut.result()  # a bug (not a bad source) propagates
            res = results[i]
            spans_read += res.count if res is not None else 0
            advance(f"{spans_read:,} spans")

    for i, res in enumerate(results):
        if res is None:
            continue
        s = summaries[i]
        s.rejected = len(res.rejects)
        s.format = res.format or s.format
        spool.add(res.rejects)

    parts = []
    for r in results:
        if r is not None:
            parts.append(r.spans)
            r.spans = None  # type: ignore[assignment]  # only the concatenation holds the spans now
    spans = concat_span_tables(parts)
    rows = pair_spans(spans)
    if rows.num_rows:
        rows = identity.enrich(rows)
        # Rows per source: by the reporting span's source.
        names = [s.name for s in sources]
        codes = pc.index_in(rows.column("record_source"), value_set=pa.array(names, pa.string()))
        counts = np.bincount(pc.fill_null(codes, len(names)).to_numpy(zero_copy_only=False),
                             minlength=len(names) + 1)
        for i, s in enumerate(summaries):
            s.rows = int(counts[i])
    try:
        result = dataset.append([rows] if rows.num_rows else [], rejects=spool, sources=summaries, dedup=dedup)
    finally:
        spool.close()
    return IngestReport(
        sources=summaries, append=result, lines=sum(r.records for r in results if r is not None),
        parsed=rows.num_rows, rejected=len(spool), bytes=sum(x or 0 for x in sizes),
        seconds=time.perf_counter() - t0, first_rejects=list(spool.first),
    )


@contextlib.contextmanager
def _bar(enabled: bool, total: int):
    """A progress bar over sources on stderr (or nothing); yields advance(detail)."""
    if not enabled:
        yield lambda detail: None
        return
    from meshctl.output import progress

    with progress() as p:
        task = p.add_task("reading traces (sources)", total=total or None, detail="")
        yield lambda detail: p.update(task, advance=1, detail=detail)
