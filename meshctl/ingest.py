"""The collection pipeline: sources → parser → identity → Dataset.append, streamed.

    from meshctl.ingest import file_sources, ingest
    from meshctl.parsers.accesslog import AccessLogParser

    report = ingest(file_sources(["logs/"]), AccessLogParser("auto"), Dataset(".meshctl/data"))
    print_summary(report)

Generic on purpose (trace collection reuses it): a *source* is anything with

    name: str              where rows come from (record_source, summaries): a path, ns/pod/container, a URL
    file: str              record_file of its rows
    reporter: Workload | None   the proxy/workload that wrote it, when known (meshctl.identity)
    open() -> BinaryIO     a fresh binary stream (closed by ingest)
    size() -> int | None   bytes, for the progress bar (None if unknown)

and a *parser* anything with `name` and `parse_stream(stream, *, file, source) -> Iterator[ParseResult]`
(meshctl/parsers/base.py). Rows pass through `Identity.enrich` (fills source/destination/reporter,
drops auxiliary columns, conforms to the requests table) and are appended to the dataset in
batches; every reject goes to the dataset's rejects file (spooled to disk when there are many).

Sources are read concurrently by `workers` threads (files: CPU-bound, Arrow releases the GIL;
pods: network-bound) through a bounded queue, so memory stays bounded however much is read.
A source that fails as a whole (unreadable file, a pod whose log keeps failing) is reported in its
summary (`error`) and the others still land.
"""

from __future__ import annotations

import contextlib
import json
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol

from meshctl.errors import MeshctlError
from meshctl.identity import Identity, Workload, workload_of
from meshctl.parsers.base import ParseResult, Reject
from meshctl.sources.files import InputFile, expand_inputs
from meshctl.store import AppendResult, Dataset, SourceSummary, concat_storage

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

BATCH_ROWS = 200_000  # rows per part file (and the most rows held before writing)
QUEUE_ITEMS = 16  # parsed blocks waiting for the writer: parsing goes on while a batch is written
PREPARE_THREADS = 2  # identity + dedup keys, in parallel with parsing and writing
SHOWN_REJECTS = 5


class Source(Protocol):
    name: str
    file: str
    reporter: Workload | None

    def open(self) -> BinaryIO: ...

    def size(self) -> int | None: ...


class Parser(Protocol):
    name: str

    def parse_stream(self, stream: BinaryIO, *, file: str, source: str | None = None) -> Iterator[ParseResult]: ...


@dataclass
class FileSource:
    """A file (or stdin) as an ingest source."""

    input: InputFile
    reporter: Workload | None = None

    @property
    def name(self) -> str:
        return self.input.name

    @property
    def file(self) -> str:
        return self.input.name

    def open(self) -> BinaryIO:
        return self.input.open()

    def size(self) -> int | None:
        return self.input.size()


def file_sources(
    specs: Iterable[str],
    *,
    workload: str | None = None,
    namespace: str | None = None,
    cluster: str | None = None,
    suffixes: tuple[str, ...] | None = None,
) -> list[FileSource]:
    """Paths, directories, globs, `-` → sources. `--workload/--namespace` say whose proxy wrote
    them; otherwise a Kubernetes node log path (/var/log/pods/<ns>_<pod>_<uid>/<container>/N.log)
    names the pod."""
    from meshctl.parsers.containers import pod_log_path

    out = []
    for inp in expand_inputs(specs, suffixes=suffixes):
        reporter = None
        if workload or namespace:
            reporter = workload_of(workload, namespace, cluster=cluster)
        elif inp.path is not None:
            pl = pod_log_path(str(inp.path))
            if pl:
                reporter = workload_of(pod=pl.pod, namespace=pl.namespace, cluster=cluster)
        out.append(FileSource(inp, reporter))
    return out


class RejectSpool:
    """Every reject of a collection: the first ones in memory (to show), all of them on disk."""

    def __init__(self, keep: int = 50, memory: int = 10_000) -> None:
        self.first: list[Reject] = []
        self._mem: list[Reject] = []
        self._memory = memory
        self._keep = keep
        self._file: IO[str] | None = None
        self._count = 0
        self._lock = threading.Lock()

    def add(self, rejects: Sequence[Reject]) -> None:
        if not rejects:
            return
        with self._lock:
            self._count += len(rejects)
            room = self._keep - len(self.first)
            if room > 0:
                self.first.extend(rejects[:room])
            self._mem.extend(rejects)
            if len(self._mem) > self._memory:
                if self._file is None:
                    self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed in close()
                for r in self._mem:
                    self._file.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
                self._mem = []

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Reject]:
        if self._file is not None:
            self._file.flush()
            self._file.seek(0)
            for line in self._file:
                yield Reject(**json.loads(line))
        yield from self._mem

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class IngestReport:
    sources: list[SourceSummary]
    append: AppendResult
    lines: int = 0
    parsed: int = 0  # rows parsed (before deduplication)
    rejected: int = 0
    ignored: int = 0
    bytes: int = 0
    seconds: float = 0.0
    first_rejects: list[Reject] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows stored (after deduplication)."""
        return self.append.rows

    @property
    def failed(self) -> list[SourceSummary]:
        return [s for s in self.sources if s.error]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "parsed": self.parsed, "duplicates": self.append.duplicates,
            "rejected": self.rejected, "ignored": self.ignored, "lines": self.lines, "bytes": self.bytes,
            "seconds": round(self.seconds, 3), "sources": [asdict(s) for s in self.sources],
            "rejects_shown": [asdict(r) for r in self.first_rejects[:SHOWN_REJECTS]],
        }


class _Counting:
    """Counts bytes read from the underlying file (compressed bytes for .gz) for the progress bar."""

    def __init__(self, stream: BinaryIO) -> None:
        self._s = stream
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self._s.read(n)
        self.read_bytes += len(data)
        return data

    def readline(self, n: int = -1) -> bytes:
        data = self._s.readline(n)
        self.read_bytes += len(data)
        return data

    @property
    def plain_file(self) -> Any:
        """The file object itself (lets the block reader see an uncompressed regular file)."""
        return self._s

    def position(self) -> int:
        inner = getattr(self._s, "fileobj", None)  # GzipFile: where we are in the compressed file
        try:
            return inner.tell() if inner is not None else self.read_bytes
        except (OSError, ValueError):
            return self.read_bytes

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)


_DONE = object()
SourceErrors = (MeshctlError, OSError, EOFError)


def ingest(
    sources: Sequence[Any],
    parser: Parser,
    dataset: Dataset,
    *,
    identity: Identity | None = None,
    workers: int = 2,
    progress: bool = True,
    batch_rows: int = BATCH_ROWS,
    dedup: bool = True,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    label: str = "sources",
) -> IngestReport:
    """Read every source with `parser`, resolve identities, append to `dataset`; never raises for a
    single bad source (its summary carries the error)."""
    import zlib

    t0 = time.perf_counter()
    identity = identity or Identity()
    summaries = [SourceSummary(s.name, format=getattr(parser, "name", None)) for s in sources]
    spool = RejectSpool()
    totals = {"lines": 0, "parsed": 0, "ignored": 0, "bytes": 0}
    q: queue.Queue[Any] = queue.Queue(maxsize=max(QUEUE_ITEMS, 2 * workers))
    stop = threading.Event()
    errors = (*SourceErrors, zlib.error)
    sizes = [s.size() for s in sources]
    by_bytes = bool(sources) and all(x is not None for x in sizes)

    def prepare(ident: Identity, res: ParseResult) -> pa.Table | None:
        """Identity and dedup keys of one parsed batch (in the `prepare` pool, off the writer's thread)."""
        from meshctl.store import dedup_keys, storage_conform

        if not res.table.num_rows:
            return None
        table = ident.enrich(res.table, encoded=True)
        return storage_conform(table.append_column("_key", dedup_keys(table)))

    def work(idx: int) -> None:
        src = sources[idx]
        summary = summaries[idx]
        start = time.perf_counter()
        ident = identity.for_reporter(src.reporter) if getattr(src, "reporter", None) else identity
        last_pos = 0
        try:
            with contextlib.closing(src.open()) as raw:
                stream = _Counting(raw)
                for res in parser.parse_stream(stream, file=src.file, source=src.name):
                    if stop.is_set():
                        return
                    pos = stream.position()
                    q.put(("result", idx, prep.submit(prepare, ident, res), res, pos - last_pos))
                    last_pos = pos
        except errors as exc:
            summary.error = str(exc) if isinstance(exc, MeshctlError) else f"{type(exc).__name__}: {exc}"
        except BaseException as exc:  # a bug: hand it to the main thread, which re-raises
            q.put(("crash", idx, exc))
        finally:
            summary.seconds = round(time.perf_counter() - start, 3)
            q.put(("done", idx))

    from concurrent.futures import ThreadPoolExecutor

    prep = ThreadPoolExecutor(max_workers=PREPARE_THREADS, thread_name_prefix="meshctl-prepare")

    def run_workers() -> None:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="meshctl-ingest") as ex:
            for i in range(len(sources)):
                ex.submit(work, i)
        q.put(_DONE)

    bar = _Progress(progress, total=sum(sizes) if by_bytes else len(sources), by_bytes=by_bytes,
                    label=f"collecting {len(sources)} {label}")

    def tables() -> Iterator[pa.Table]:
        feeder = threading.Thread(target=run_workers, name="meshctl-ingest-pool", daemon=True)
        feeder.start()
        buffered: list[pa.Table] = []
        nrows = 0
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    break
                kind, idx = item[0], item[1]
                if kind == "crash":
                    stop.set()
                    raise item[2]
                if kind == "done":
                    if not by_bytes:
                        bar.advance(1)
                    s = summaries[idx]
                    if on_event:
                        on_event("source_done", asdict(s))
                    continue
                _, _, future, res, nbytes = item
                table = future.result()  # a bug in identity resolution surfaces here, in the caller
                s = summaries[idx]
                s.rows += res.rows
                s.rejected += len(res.rejects)
                if res.format and (s.format in (None, "auto") or s.format != res.format):
                    s.format = res.format
                spool.add(res.rejects)
                totals["lines"] += res.lines
                totals["parsed"] += res.rows
                totals["ignored"] += res.ignored
                totals["bytes"] += nbytes
                if by_bytes:
                    bar.advance(nbytes)
                bar.detail(f"{totals['parsed']:,} rows · {len(spool):,} rejected · {totals['lines']:,} lines")
                if table is not None and table.num_rows:
                    buffered.append(table)
                    nrows += table.num_rows
                if nrows >= batch_rows:
                    yield concat_storage(buffered)
                    buffered, nrows = [], 0
            if buffered:
                yield concat_storage(buffered)
        finally:
            stop.set()
            # Unblock workers waiting on a full queue so the pool can finish.
            while feeder.is_alive():
                with contextlib.suppress(queue.Empty):
                    q.get(timeout=0.05)

    try:
        with bar:
            result = dataset.append(tables(), rejects=spool, sources=summaries, dedup=dedup)
    finally:
        prep.shutdown(wait=True, cancel_futures=True)
        spool.close()
    return IngestReport(
        sources=summaries, append=result, lines=totals["lines"], parsed=totals["parsed"],
        rejected=len(spool), ignored=totals["ignored"], bytes=totals["bytes"],
        seconds=time.perf_counter() - t0, first_rejects=list(spool.first),
    )


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool, *, total: int, by_bytes: bool, label: str) -> None:
        self.enabled = enabled
        self._p = None
        self._task = None
        self.total = total
        self.by_bytes = by_bytes
        self.label = label

    def __enter__(self) -> _Progress:
        if self.enabled:
            from meshctl.output import progress

            self._p = progress()
            self._p.__enter__()
            unit = " (bytes)" if self.by_bytes else ""
            self._task = self._p.add_task(f"{self.label}{unit}", total=self.total or None, detail="")
        return self

    def advance(self, n: int) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)

    def detail(self, text: str) -> None:
        if self._p is not None:
            self._p.update(self._task, detail=text)

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)


def _common_dir(names: list[str]) -> str:
    import os

    paths = [n for n in names if os.sep in n and not n.startswith("<") and "://" not in n]
    if len(paths) < 2 or len(paths) != len(names):
        return ""
    try:
        base = os.path.commonpath(paths)
    except ValueError:  # absolute and relative paths mixed
        return ""
    return os.path.dirname(base) if base in paths else base


def summary_rows(report: IngestReport) -> list[list[Any]]:
    """One row per source; file paths shown relative to the directory they share."""
    import os

    base = _common_dir([s.source for s in report.sources])
    rows = []
    for s in report.sources:
        shown = os.path.relpath(s.source, base) if base else s.source
        rows.append([shown, s.format, s.rows, s.rejected, round(s.seconds, 2), s.error])
    return rows


def print_summary(report: IngestReport, *, file: Any = None, title: str = "collected") -> None:
    """The end-of-run table (one line per source), the first rejects, and totals, on stderr."""
    import sys

    from meshctl.output import print_table

    out = file or sys.stderr
    print_table(["source", "format", "rows", "rejected", "seconds", "error"], summary_rows(report),
                title=title, file=out)
    base = _common_dir([s.source for s in report.sources])
    if base:
        out.write(f"(paths relative to {base})\n")
    for r in report.first_rejects[:SHOWN_REJECTS]:
        out.write(f"rejected {r}\n")
    if report.rejected > SHOWN_REJECTS:
        out.write(f"... {report.rejected - SHOWN_REJECTS:,} more rejected lines: meshctl dataset rejects\n")
    mb = report.bytes / 1e6
    rate = report.lines / report.seconds if report.seconds else 0.0
    out.write(
        f"{report.rows:,} rows stored ({report.append.duplicates:,} duplicates skipped), "
        f"{report.rejected:,} rejected, {report.ignored:,} ignored, from {report.lines:,} records "
        f"({mb:,.1f} MB) in {report.seconds:.2f}s ({rate:,.0f} records/s)\n"
    )
