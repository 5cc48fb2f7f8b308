"""The embedded store: the requests table as a Parquet dataset directory.

Layout of `--data DIR` (default ./.meshctl/data):

    requests/part-<utc>-<id>.parquet   rows, in the requests-table schema plus `_key` (dedup hash)
    rejects/rejects-<utc>-<id>.jsonl   every input record that could not be parsed (file, line, reason, sample)
    manifest.json                      one entry per collection: sources with rows / rejected / seconds

Each collection appends new part files (never rewrites old ones). Rows are deduplicated on append
by a key over (record_kind, direction, reporter, request_id, span_id, trace_id, timestamp,
upstream_host): the same log collected twice lands once, while the client-side and server-side
rows of one request (same request id, different direction) both stay.

The key (`dedup_keys`) is compared with keys stored by earlier collections, so its definition is
fixed, whatever the library versions: each value is hashed on its own (strings: SipHash-2-4 of the
UTF-8 bytes with pandas' documented default key, then the splitmix64 finalizer, i.e.
`pandas.util.hash_array`; timestamps: the finalizer over the int64 microseconds; null: 2**64-1) and
the columns are combined in KEY_COLUMNS order as CPython's tuple hash does (pandas'
`hash_pandas_object(index=False)`, the function earlier versions called on the whole frame).

Part files are written for speed: LZ4, dictionary pages only for the columns that repeat (the
identity, status and provenance columns, not ids or addresses), statistics only for `timestamp`
(the one column reads filter on).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzers import table as rt
from meshctl.errors import InputError
from meshctl.parsers.base import Reject

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

KEY_COLUMNS = ("record_kind", "direction", "reporter_workload", "request_id", "span_id", "trace_id",
               "timestamp", "upstream_host")
MANIFEST = "manifest.json"


@dataclass
class SourceSummary:
    """What one input (a file, a pod's container, an API query) contributed to a collection."""

    source: str
    format: str | None = None
    rows: int = 0
    rejected: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    error: str | None = None  # set when the source failed as a whole (e.g. a pod that kept failing)


@dataclass
class AppendResult:
    rows: int
    duplicates: int
    rejected: int
    parts: list[str] = field(default_factory=list)


# Key columns whose values are mostly distinct: hashed value by value, without a dictionary pass.
_DISTINCT_KEY_COLUMNS = frozenset({"request_id", "span_id", "trace_id"})
_NULL_HASH = 2**64 - 1
# Columns whose values repeat (few distinct values per part): dictionary-encoded in Parquet.
# The others (ids, addresses, numbers, times) are written plain: a dictionary would be dropped anyway.
_PLAIN_COLUMNS = frozenset({"timestamp", "duration_ms", "upstream_service_time_ms", "bytes_received", "bytes_sent",
                            "downstream_remote_address", "trace_id", "span_id", "parent_span_id", "request_id",
                            "record_line", "_key"})
# The Arrow schema is not stored: columns are read as the requests table says (Dataset.arrow), so a
# column written from a dictionary array reads back as plain strings.
WRITE_OPTIONS: dict[str, Any] = {"compression": "lz4", "write_statistics": ["timestamp"], "store_schema": False}


def storage_conform(table: pa.Table) -> pa.Table:
    """Like analyzers.table.conform_arrow (columns, order, types), except that a string column may stay
    dictionary-encoded, as the writer takes it without hashing every value again."""
    import pyarrow as pa

    schema = rt.arrow_schema()
    names = set(table.column_names) - {"_key"}
    extra = names - set(rt.COLUMN_NAMES)
    if extra:
        raise ValueError(f"columns not in the requests table schema: {sorted(extra)}")
    arrays, fields = [], []
    for f in schema:
        if f.name not in names:
            col: Any = pa.nulls(table.num_rows, type=f.type)
        else:
            col = table.column(f.name)
            t = col.type
            if not t.equals(f.type) and not (pa.types.is_dictionary(t) and t.value_type.equals(f.type)
                                             and pa.types.is_string(f.type)):
                col = col.cast(f.type)
        arrays.append(col)
        fields.append(pa.field(f.name, col.type))
    if "_key" in table.column_names:
        arrays.append(table.column("_key"))
        fields.append(pa.field("_key", pa.uint64()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def concat_storage(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate storage-conformed tables (see storage_conform): a column that is dictionary-encoded
    in every table keeps one dictionary for the batch, otherwise it becomes plain strings."""
    import pyarrow as pa

    if len(tables) == 1:
        return tables[0].unify_dictionaries()
    first = tables[0].schema
    if all(t.schema.equals(first) for t in tables[1:]):
        return pa.concat_tables(tables).unify_dictionaries()
    mixed = {f.name for t in tables for f in t.schema if not f.type.equals(first.field(f.name).type)}
    fixed = []
    for t in tables:
        for name in mixed:
            i = t.schema.get_field_index(name)
            if pa.types.is_dictionary(t.schema.field(i).type):
                t = t.set_column(i, name, t.column(i).cast(t.schema.field(i).type.value_type))
        fixed.append(t)
    return pa.concat_tables(fixed).unify_dictionaries()


def _value_hashes(col: pa.Array | pa.ChunkedArray, distinct: bool) -> Any:
    """uint64 hash of every value of one key column (see the module docstring)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    n = len(col)
    if col.null_count == n:
        return np.full(n, _NULL_HASH, dtype=np.uint64)
    if pa.types.is_dictionary(col.type):
        # Already one entry per distinct value (and nulls in the indices).
        hashed = pd.util.hash_array(_utf8_objects(col.dictionary), categorize=False)
        out = hashed.take(col.indices.fill_null(0).to_numpy()) if len(hashed) else np.zeros(n, dtype=np.uint64)
        nulls = col.indices.is_null()
    elif pa.types.is_timestamp(col.type) or pa.types.is_integer(col.type):
        out = pd.util.hash_array(col.cast(pa.int64()).fill_null(0).to_numpy())
        nulls = col.is_null()
    elif distinct:
        out = pd.util.hash_array(_utf8_objects(col.fill_null("")), categorize=False)
        nulls = col.is_null()
    else:
        # Repeated values: hash each distinct value once.
        enc = col.dictionary_encode()
        hashed = pd.util.hash_array(_utf8_objects(enc.dictionary), categorize=False)
        out = hashed.take(enc.indices.fill_null(0).to_numpy()) if len(hashed) else np.zeros(n, dtype=np.uint64)
        nulls = enc.indices.is_null()
    if col.null_count:
        out[nulls.to_numpy(zero_copy_only=False)] = _NULL_HASH
    return out


def _utf8_objects(strings: pa.Array) -> Any:
    """Strings as an object array of their UTF-8 bytes: SipHash reads bytes, and `bytes` objects are
    made without decoding (pandas hashes a str as its UTF-8 encoding, so the hashes are the same)."""
    import pyarrow as pa

    if pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type):
        strings = strings.cast(pa.binary() if pa.types.is_string(strings.type) else pa.large_binary())
    return strings.to_numpy(zero_copy_only=False)


def dedup_keys(table: pa.Table) -> pa.Array:
    """A uint64 hash per row over KEY_COLUMNS (see the module docstring: stable across versions)."""
    import numpy as np
    import pyarrow as pa

    # CPython's tuple hash combination (as pandas.core.util.hashing.combine_hash_arrays), pinned here.
    rows = table.num_rows
    names = set(table.column_names)
    out = np.full(rows, 0x345678, dtype=np.uint64)
    mult = np.uint64(1000003)
    n = len(KEY_COLUMNS)
    for i, name in enumerate(KEY_COLUMNS):
        if name in names:
            out ^= _value_hashes(table.column(name), name in _DISTINCT_KEY_COLUMNS)
        else:  # a column the table does not have yet: all null
            out ^= np.uint64(_NULL_HASH)
        out *= mult
        mult += np.uint64(82520 + 2 * (n - i))
    out += np.uint64(97531)
    return pa.array(out, type=pa.uint64())


class Dataset:
    """A requests-table dataset directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def requests_dir(self) -> Path:
        return self.path / "requests"

    @property
    def rejects_dir(self) -> Path:
        return self.path / "rejects"

    def exists(self) -> bool:
        return self.requests_dir.is_dir() and any(self.requests_dir.glob("*.parquet"))

    def require(self) -> Dataset:
        if not self.exists():
            raise InputError(
                "no requests table here yet",
                file=str(self.path),
                hint="collect first: meshctl collect logs FILE... --data DIR (or meshctl demo)",
            )
        return self

    # ---- writing -------------------------------------------------------------------------
    def _existing_keys(self):
        """Dedup keys of every stored row, as a sorted numpy uint64 array (8 bytes a row)."""
        import numpy as np
        import pyarrow.parquet as pq

        arrays = [pq.read_table(part, columns=["_key"]).column("_key").to_numpy()
                  for part in sorted(self.requests_dir.glob("*.parquet"))]
        return np.unique(np.concatenate(arrays)) if arrays else np.empty(0, dtype=np.uint64)

    def append(
        self,
        tables: Iterable[pa.Table],
        *,
        rejects: Sequence[Reject] = (),
        sources: Sequence[SourceSummary] = (),
        dedup: bool = True,
    ) -> AppendResult:
        """Append conforming tables (streamed: one part file per table) and record the collection.

        A table may carry its rows' `_key` column (`dedup_keys`) already computed; it is used as is.
        """
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        self.requests_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        collection_id = uuid.uuid4().hex[:10]
        seen = self._existing_keys() if dedup else np.empty(0, dtype=np.uint64)
        result = AppendResult(rows=0, duplicates=0, rejected=0)
        for i, tbl in enumerate(tables):
            if tbl.num_rows == 0:
                continue
            keys = None
            if "_key" in tbl.column_names:
                # Keys computed by the caller (dedup_keys, e.g. in ingest's worker threads).
                keys = tbl.column("_key").combine_chunks().cast(pa.uint64())
                tbl = tbl.drop_columns(["_key"])
            tbl = storage_conform(tbl).unify_dictionaries()
            if keys is None:
                keys = dedup_keys(tbl)
            if dedup:
                keep, new_sorted = _first_unseen(keys.to_numpy(), seen)
                if keep is not None:
                    dropped = int((~keep).sum())
                    mask = pa.array(keep)
                    tbl, keys = tbl.filter(mask), pc.filter(keys, mask)
                    result.duplicates += dropped
                # Both runs are sorted: the stable (merge) sort joins them in linear time.
                seen = np.sort(np.concatenate([seen, new_sorted]), kind="stable") if len(seen) else new_sorted
            if tbl.num_rows == 0:
                continue
            part = self.requests_dir / f"part-{stamp}-{collection_id}-{i:05d}.parquet"
            tmp = part.with_suffix(".tmp")
            out = tbl.append_column("_key", keys)
            pq.write_table(out, tmp, use_dictionary=[c for c in out.column_names if c not in _PLAIN_COLUMNS],
                           **WRITE_OPTIONS)
            tmp.rename(part)  # readers never see half-written parts
            result.rows += tbl.num_rows
            result.parts.append(part.name)
        # Counted after the tables were consumed: a streaming caller fills `rejects` while it yields tables.
        result.rejected = len(rejects)
        if rejects:
            self.rejects_dir.mkdir(parents=True, exist_ok=True)
            with open(self.rejects_dir / f"rejects-{stamp}-{collection_id}.jsonl", "w", encoding="utf-8") as f:
                for r in rejects:
                    f.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
        self._record(collection_id, sources, result)
        return result

    def _record(self, collection_id: str, sources: Sequence[SourceSummary], result: AppendResult) -> None:
        manifest = self.manifest()
        manifest["collections"].append({
            "id": collection_id,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rows": result.rows,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
            "sources": [asdict(s) for s in sources],
        })
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1))
        tmp.rename(self.path / MANIFEST)

    def manifest(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / MANIFEST).read_text())
        except FileNotFoundError:
            return {"schema_version": rt.SCHEMA_VERSION, "collections": []}

    # ---- reading -------------------------------------------------------------------------
    def arrow(
        self,
        *,
        columns: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        dictionary: bool = False,
    ) -> pa.Table:
        """The table (or some columns), optionally limited to [since, until), without the dedup key.

        `dictionary=True` returns string columns dictionary-encoded, as Parquet stores them: no
        per-row strings are built, which halves reading and matching millions of rows."""
        return self.scanner(columns=columns, since=since, until=until, dictionary=dictionary).to_table()

    def scanner(
        self,
        *,
        columns: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        dictionary: bool = False,
        batch_size: int | None = None,
    ) -> Any:
        """What `arrow()` reads, as a pyarrow Scanner: its record batches stream the table in bounded
        memory (`meshctl dataset export`)."""
        import pyarrow.dataset as ds

        self.require()
        cols = list(columns) if columns else rt.COLUMN_NAMES
        unknown = set(cols) - set(rt.COLUMN_NAMES)
        if unknown:
            raise InputError(f"unknown requests-table columns: {sorted(unknown)}")
        schema, fmt = _stored_schema(), "parquet"
        if dictionary:
            import pyarrow as pa

            strings = [f.name for f in schema if pa.types.is_string(f.type) and f.name in cols]
            schema = pa.schema([pa.field(f.name, pa.dictionary(pa.int32(), pa.string())) if f.name in strings else f
                                for f in schema], metadata=schema.metadata)
            fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=strings))
        dataset = ds.dataset(str(self.requests_dir), format=fmt, schema=schema)
        flt = None
        ts = ds.field("timestamp")
        if since is not None:
            flt = ts >= _arrow_ts(since)
        if until is not None:
            cond = ts < _arrow_ts(until)
            flt = cond if flt is None else flt & cond
        extra = {"batch_size": batch_size} if batch_size else {}
        return dataset.scanner(columns=cols, filter=flt, **extra)

    def read(
        self,
        *,
        columns: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pd.DataFrame:
        """The table as a pandas DataFrame with nullable dtypes (see analyzers.table.to_frame)."""
        return rt.to_frame(self.arrow(columns=columns, since=since, until=until))

    def read_window(
        self, since: str | None = None, until: str | None = None, *, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Rows in the `--since/--until` window (see `window`)."""
        start, end = self.window(since, until)
        return self.read(columns=columns, since=start, until=end)

    def window(self, since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
        """`--since/--until` → [start, end) bounds; durations count back from the newest stored row
        (see meshctl.timewindow)."""
        from meshctl.timewindow import resolve_window

        anchor = None
        if since or until:
            tr = self.time_range()
            anchor = tr[1] if tr else None
        return resolve_window(since, until, anchor=anchor)

    def time_range(self) -> tuple[datetime, datetime] | None:
        import pyarrow.compute as pc

        col = self.arrow(columns=["timestamp"]).column("timestamp")
        if len(col) == 0 or col.null_count == len(col):
            return None
        mm = pc.min_max(col).as_py()
        return mm["min"], mm["max"]

    def iter_rejects(self) -> Iterable[dict[str, Any]]:
        for f in sorted(self.rejects_dir.glob("*.jsonl")) if self.rejects_dir.is_dir() else []:
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    yield json.loads(line)

    def info(self) -> dict[str, Any]:
        """Summary for `meshctl dataset info`: rows, rejected, sources, time range, size."""
        import pyarrow.parquet as pq

        parts = sorted(self.requests_dir.glob("*.parquet")) if self.requests_dir.is_dir() else []
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        manifest = self.manifest()
        sources: dict[str, dict[str, Any]] = {}
        for coll in manifest["collections"]:
            for s in coll["sources"]:
                agg = sources.setdefault(s["source"], {"source": s["source"], "format": s.get("format"),
                                                       "rows": 0, "rejected": 0, "duplicates": 0})
                agg["rows"] += s.get("rows", 0)
                agg["rejected"] += s.get("rejected", 0)
                agg["duplicates"] += s.get("duplicates", 0)
        tr = self.time_range() if parts else None
        return {
            "path": str(self.path),
            "schema_version": rt.SCHEMA_VERSION,
            "rows": rows,
            "rejected": sum(c.get("rejected", 0) for c in manifest["collections"]),
            "duplicates": sum(c.get("duplicates", 0) for c in manifest["collections"]),
            "collections": len(manifest["collections"]),
            "sources": list(sources.values()),
            "time_range": [tr[0].isoformat(), tr[1].isoformat()] if tr else None,
            "bytes": sum(p.stat().st_size for p in parts),
        }


def _first_unseen(keys: Any, seen: Any) -> tuple[Any, Any]:
    """(mask of the rows to keep — first occurrence in `keys`, not in the sorted `seen` — or None when
    all are kept, the kept keys sorted)."""
    import numpy as np

    ordered = np.sort(keys)
    repeated = bool(len(ordered) > 1 and (ordered[1:] == ordered[:-1]).any())
    stored = False
    if len(seen):
        pos = np.minimum(np.searchsorted(seen, ordered), len(seen) - 1)
        stored = bool((seen[pos] == ordered).any())
    if not repeated and not stored:
        return None, ordered  # the usual case: nothing collected before, no repeats
    _, first_idx = np.unique(keys, return_index=True)
    keep = np.zeros(len(keys), dtype=bool)
    keep[first_idx] = True
    if stored:
        pos = np.minimum(np.searchsorted(seen, keys), len(seen) - 1)
        keep &= seen[pos] != keys
    return keep, np.sort(keys[keep])


def _stored_schema():
    import pyarrow as pa

    return rt.arrow_schema().append(pa.field("_key", pa.uint64()))


def _arrow_ts(t: datetime):
    import pyarrow as pa

    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return pa.scalar(t, type=pa.timestamp("us", tz="UTC"))
