"""Raw access-log values → typed requests-table columns, vectorized, with per-row rejects.

Every access-log parser hands over a `RawBatch`: raw values per source key (a format operator, a
JSON key, an OTLP attribute) as Arrow arrays — strings from text formats, typed values (numbers,
nulls, structs) from JSON — plus the `Field` each key fills and the line number of each row.
`normalize()` converts them column by column with Arrow compute kernels:

- `-` and empty strings become nulls (Envoy prints `-` for "not set");
- numbers written as strings or as JSON numbers both work; a value that is not a number where one
  is expected rejects that row only, naming the field;
- START_TIME in ISO 8601 (any precision, `Z` or offset, or none = UTC), epoch numbers, or the
  strftime format the operator was given;
- RESPONSE_FLAGS_LONG names are mapped to the short flags; gRPC status names to numbers;
- `traceparent` headers give the trace id, Linkerd's absolute `uri` the path (and authority).

Conversions on low-cardinality columns (flags, gRPC names, peer metadata) run once per distinct
value, not once per row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from analyzers import table as rt
from meshctl.parsers.base import Reject
from meshctl.parsers.fields import AUX_COLUMNS, GRPC_CODES, LONG_FLAGS, Field

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa

INT_RX = r"^\s*[+-]?\d{1,18}\s*$"
FLOAT_RX = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
ISO_RX = r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d(:?\d\d)?)?$"
EPOCH_RX = r"^\d{9,19}(\.\d+)?$"
TRACEPARENT_RX = r"^[0-9a-fA-F]{2}-(?P<trace>[0-9a-fA-F]{32})-(?P<span>[0-9a-fA-F]{16})-[0-9a-fA-F]{2}"

# Columns of the table whose absence on every row means "this was not an access-log record".
CORE_COLUMNS = ("timestamp", "response_code", "method", "path", "authority", "duration_ms",
                "upstream_cluster", "request_id", "upstream_host", "trace_id")
_INT32 = {"response_code": (0, 999), "grpc_status": (0, 2**31 - 1)}
_MS_FACTOR = {"ms": 1.0, "us_ms": 1e-3, "ns_ms": 1e-6, "s_ms": 1e3}
_PEER_KEYS = ("workload", "namespace", "app", "version", "cluster", "service")


@dataclass
class RawBatch:
    """Raw values of one batch of records, before conversion."""

    columns: dict[str, pa.Array]  # source key → raw values
    fields: dict[str, Field]  # source key → where it goes
    lines: np.ndarray  # int64 line number of each row
    constants: dict[str, str] = field(default_factory=dict)  # column → value for every row
    sample: Callable[[int], bytes | str] | None = None  # row index → the raw line (for rejects)

    @property
    def num_rows(self) -> int:
        return len(self.lines)


class _Bad:
    """Rows found invalid while converting: first reason per row wins."""

    def __init__(self, n: int) -> None:
        import numpy as np

        self.mask = np.zeros(n, dtype=bool)
        self.reasons: dict[int, tuple[str, str]] = {}

    def add(self, bad: pa.Array | None, key: str, column: str, values: pa.Array | None = None,
            what: str = "value") -> None:
        import numpy as np

        if bad is None:
            return
        arr = bad.fill_null(False).to_numpy(zero_copy_only=False)
        new = np.flatnonzero(arr & ~self.mask)
        if len(new) == 0:
            return
        self.mask |= arr
        for i in new[:1000].tolist():  # reasons for the first ones; the rest share the first reason
            v = values[i].as_py() if values is not None else None
            shown = repr(v)[:80] if v is not None else ""
            self.reasons[i] = (f"invalid {column} {what} {shown}".rstrip(), key)
        first = self.reasons[int(new[0])]
        for i in new[1000:].tolist():
            self.reasons[i] = first


def _null_of(t: pa.DataType, n: int) -> pa.Array:
    import pyarrow as pa

    return pa.nulls(n, type=t)


def strings(arr: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """Any raw array → string array with `-`/empty as null; nested values are bad."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
        t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_null(t):
        return _null_of(pa.string(), len(arr)), None
    if pa.types.is_nested(t):
        return _null_of(pa.string(), len(arr)), pc.is_valid(arr)
    if not pa.types.is_string(t):
        arr = arr.cast(pa.string())
    # Only values of length <= 1 can be "-" or "": the length check reads offsets, not the data.
    short = pc.less_equal(pc.binary_length(arr), 1)
    if not pc.any(short).as_py():
        return arr, None
    empty = pc.and_(short, pc.is_in(arr, value_set=pa.array(["-", ""])))
    if pc.any(empty).as_py():
        arr = pc.if_else(empty, pa.scalar(None, pa.string()), arr)
    return arr, None


def _numbers(arr: pa.Array, target: pa.DataType, rx: str, bad: _Bad, key: str, column: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
        t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        if pa.types.is_floating(t) and pa.types.is_integer(target):
            try:  # whole numbers in range (the usual case): one checked cast
                return arr.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            frac = pc.not_equal(pc.floor(arr), arr)
            bad.add(frac, key, column, arr)
            return pc.cast(pc.if_else(frac.fill_null(False), pa.scalar(None, t), arr), target, safe=False)
        return arr.cast(target, safe=False)
    s, nested = strings(arr)
    bad.add(nested, key, column, None, "value (an object)")
    try:
        return s.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ok = pc.match_substring_regex(s, rx)
    bad.add(pc.and_(pc.is_valid(s), pc.invert(ok)), key, column, s)
    s = pc.if_else(ok.fill_null(False), s, pa.scalar(None, pa.string()))
    try:
        return pc.utf8_trim_whitespace(s).cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Overflow or another oddity the regex let through: decide value by value.
        out, flags = [], []
        for v in s.to_pylist():
            try:
                out.append(None if v is None else (int(v) if pa.types.is_integer(target) else float(v)))
                flags.append(False)
            except (ValueError, OverflowError):
                out.append(None)
                flags.append(v is not None)
        bad.add(pa.array(flags), key, column, s)
        return pa.array(out, type=target)


def _to_ms(arr: pa.Array, kind: str, bad: _Bad, key: str, column: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    x = _numbers(arr, pa.float64(), FLOAT_RX, bad, key, column)
    factor = _MS_FACTOR[kind]
    return x if factor == 1.0 else pc.multiply(x, factor)


def _epoch_to_ts(x: pa.Array) -> pa.Array:
    """Epoch numbers (seconds, ms, µs or ns, guessed from magnitude) → timestamp[us, UTC]."""
    import pyarrow as pa
    import pyarrow.compute as pc

    x = x.cast(pa.float64())
    mag = pc.abs(x)
    us = pc.case_when(
        pc.make_struct(pc.greater(mag, 1e17), pc.greater(mag, 1e14), pc.greater(mag, 1e11)),
        pc.divide(x, 1000.0), x, pc.multiply(x, 1000.0), pc.multiply(x, 1e6),
    )
    return pc.cast(pc.round(us), pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _strftime_py(fmt: str) -> str:
    # Envoy's extra specifiers: %3f/%6f/%9f (fixed digits) and %f → Python's %f (up to 6 digits).
    return re.sub(r"%[1-9]?f", "%f", fmt)


def _to_time(arr: pa.Array, arg: str | None, bad: _Bad, key: str, column: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    us_utc = pa.timestamp("us", tz="UTC")
    t = arr.type
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
        t = arr.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            arr = pc.assume_timezone(arr, "UTC")
        return arr.cast(us_utc, safe=False)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return _epoch_to_ts(arr)
    s, nested = strings(arr)
    bad.add(nested, key, column, None, "value (an object)")
    if arg and arg not in ("%Y-%m-%dT%H:%M:%S.%3fZ", "%Y-%m-%dT%H:%M:%S%z"):
        return _strftime_column(s, arg, bad, key, column)
    try:
        return s.cast(pa.timestamp("ns", tz="UTC")).cast(us_utc, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    n = len(s)
    out = pa.nulls(n, us_utc)
    valid = pc.is_valid(s)
    iso = pc.match_substring_regex(s, ISO_RX).fill_null(False)
    zoned = pc.and_(iso, pc.match_substring_regex(s, r"([Zz]|[+-]\d\d(:?\d\d)?)$").fill_null(False))
    naive = pc.and_(iso, pc.invert(zoned))
    epoch = pc.match_substring_regex(s, EPOCH_RX).fill_null(False)
    null_s = pa.scalar(None, pa.string())
    done = pc.or_(pc.or_(zoned, naive), epoch)
    for mask, conv in (
        (zoned, lambda v: v.cast(pa.timestamp("ns", tz="UTC"))),
        (naive, lambda v: pc.assume_timezone(v.cast(pa.timestamp("ns")), "UTC")),
        (epoch, lambda v: _epoch_to_ts(v.cast(pa.float64()))),
    ):
        if not pc.any(mask).as_py():
            continue
        part = pc.if_else(mask, s, null_s)
        try:
            conv_part = conv(part).cast(us_utc, safe=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            conv_part = _py_times(part, None, bad, key, column)
        out = pc.if_else(mask, conv_part, out)
    bad.add(pc.and_(valid, pc.invert(done)), key, column, s)
    return out


def _py_times(s: pa.Array, fmt: str | None, bad: _Bad, key: str, column: str) -> pa.Array:
    """Value-by-value time parsing (unique values only) for what Arrow's parser refuses."""
    import pyarrow as pa

    cache: dict[str, datetime | None] = {}
    out, flags = [], []
    for v in s.to_pylist():
        if v is None:
            out.append(None)
            flags.append(False)
            continue
        if v not in cache:
            cache[v] = _parse_time_py(v, fmt)
        d = cache[v]
        out.append(d)
        flags.append(d is None)
    bad.add(pa.array(flags), key, column, s)
    return pa.array(out, type=pa.timestamp("us", tz="UTC"))


def _parse_time_py(v: str, fmt: str | None) -> datetime | None:
    try:
        if fmt:
            if fmt.strip() == "%s":
                return datetime.fromtimestamp(float(v), tz=timezone.utc)
            if "%s" in fmt:
                # %s.%3f and friends: epoch seconds with a fraction.
                num = re.match(r"^\s*(\d+)(?:\.(\d+))?", v)
                if not num:
                    return None
                return datetime.fromtimestamp(float(f"{num.group(1)}.{num.group(2) or 0}"), tz=timezone.utc)
            frac = re.search(r"\.(\d{7,})", v)
            if frac:  # Python's %f reads at most 6 digits
                v = v[: frac.start(1) + 6] + v[frac.end(1):]
            d = datetime.strptime(v, _strftime_py(fmt))
        else:
            d = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _strftime_column(s: pa.Array, fmt: str, bad: _Bad, key: str, column: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if fmt.strip() == "%s":
        ok = pc.match_substring_regex(s, r"^\d+(\.\d+)?$")
        bad.add(pc.and_(pc.is_valid(s), pc.invert(ok)), key, column, s)
        return _epoch_to_ts(pc.if_else(ok.fill_null(False), s, pa.scalar(None, pa.string())).cast(pa.float64()))
    uniq = pc.unique(s)
    if len(uniq) > 0.5 * len(s) and not re.search(r"%[1-9]?f|%s|%E", fmt):
        try:  # Arrow's strptime handles plain strftime formats (no fractions) vectorized.
            return pc.strptime(s, format=fmt, unit="us", error_is_null=False).cast(
                pa.timestamp("us", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return _py_times(s, fmt, bad, key, column)


def _map_unique(s: pa.Array, fn: Callable[[str], Any], out_type: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Apply a Python function once per distinct value; returns (mapped, unmapped-mask)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = s.dictionary_encode()
    mapped, failed = [], []
    for v in enc.dictionary.to_pylist():
        try:
            mapped.append(fn(v))
            failed.append(False)
        except (KeyError, ValueError):
            mapped.append(None)
            failed.append(True)
    values = pa.array(mapped, type=out_type)
    idx = enc.indices
    out = values.take(idx)
    bad = pa.array(failed, type=pa.bool_()).take(idx)
    return out, pc.and_(pc.is_valid(s), bad.fill_null(False))


def _flags(arr: pa.Array, bad: _Bad, key: str, column: str) -> pa.Array:
    import pyarrow as pa

    s, nested = strings(arr)
    bad.add(nested, key, column, None, "value (an object)")

    def short(v: str) -> str:
        parts = [p.strip() for p in v.split(",") if p.strip()]
        return ",".join(LONG_FLAGS.get(p, p) for p in parts)

    if len(s) == 0 or s.null_count == len(s):
        return s
    out, _ = _map_unique(s, short, pa.string())
    return out


def _grpc(arr: pa.Array, bad: _Bad, key: str, column: str) -> pa.Array:
    import pyarrow as pa

    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return _numbers(arr, pa.int32(), INT_RX, bad, key, column)
    s, nested = strings(arr)
    bad.add(nested, key, column, None, "value (an object)")
    if s.null_count == len(s):
        return pa.nulls(len(s), pa.int32())

    def code(v: str) -> int:
        v = v.strip()
        if v.isdigit():
            return int(v)
        return GRPC_CODES[v.lower()]

    out, failed = _map_unique(s, code, pa.int32())
    bad.add(failed, key, column, s)
    return out


def _traceparent(arr: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    s, _ = strings(arr)
    ext = pc.extract_regex(s, TRACEPARENT_RX)
    return pc.utf8_lower(pc.struct_field(ext, "trace"))


def _uri(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Absolute or origin-form request URI → (path, authority)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    s, _ = strings(arr)
    ext = pc.extract_regex(s, r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://(?P<host>[^/?#]*))?(?P<path>.*)$")
    host = pc.struct_field(ext, "host")
    path = pc.struct_field(ext, "path")
    empty = pa.scalar(None, pa.string())
    host = pc.if_else(pc.equal(host, ""), empty, host)
    path = pc.if_else(pc.equal(path, ""), pc.if_else(pc.is_valid(host), pa.scalar("/"), empty), path)
    return path, host


def _peer(arr: pa.Array, side_prefix: str) -> dict[str, pa.Array]:
    """Istio peer metadata (struct, or JSON text) → source_* / destination_* columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, pa.Array] = {}
    t = arr.type
    if pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        for k in _PEER_KEYS:
            if k in names:
                col, _ = strings(pc.struct_field(arr, k))
                out[k] = col
    else:
        s, _ = strings(arr)
        if s.null_count == len(s):
            return {}
        for k in _PEER_KEYS:
            def get(v: str, k: str = k) -> str | None:
                obj = json.loads(v)
                val = obj.get(k) if isinstance(obj, dict) else None
                return None if val in (None, "", "-") else str(val)

            col, _ = _map_unique(s, get, pa.string())
            out[k] = col
    result = {}
    for k, col in out.items():
        if k == "service":
            if side_prefix == "destination":
                result["destination_service"] = col
            continue
        result[f"{side_prefix}_{k}"] = col
    return result


def _convert(key: str, f: Field, arr: pa.Array, bad: _Bad) -> dict[str, pa.Array]:
    import pyarrow as pa
    import pyarrow.compute as pc

    col = f.column
    if f.kind == "str":
        s, nested = strings(arr)
        bad.add(nested, key, col, None, "value (an object)")
        return {col: s}
    if f.kind == "hexid":
        s, nested = strings(arr)
        bad.add(nested, key, col, None, "value (an object)")
        return {col: pc.utf8_lower(s)}
    if f.kind == "int":
        target = pa.int64()
        x = _numbers(arr, target, INT_RX, bad, key, col)
        lo, hi = _INT32.get(col, (0, 2**62))
        mm = pc.min_max(x).as_py()
        if mm["min"] is None or (mm["min"] >= lo and mm["max"] <= hi):
            return {col: x}
        out_of_range = pc.or_(pc.less(x, lo), pc.greater(x, hi))
        bad.add(out_of_range, key, col, x, "value (out of range)")
        if pc.any(out_of_range).as_py():
            x = pc.if_else(out_of_range.fill_null(False), pa.scalar(None, target), x)
        return {col: x}
    if f.kind in _MS_FACTOR:
        return {col: _to_ms(arr, f.kind, bad, key, col)}
    if f.kind == "time":
        return {col: _to_time(arr, f.arg, bad, key, col)}
    if f.kind == "epoch_ns":
        x = _numbers(arr, pa.int64(), INT_RX, bad, key, col)
        return {col: pc.divide(x, 1000).cast(pa.timestamp("us", tz="UTC"))}
    if f.kind == "flags":
        return {col: _flags(arr, bad, key, col)}
    if f.kind == "grpc":
        return {col: _grpc(arr, bad, key, col)}
    if f.kind == "traceparent":
        return {col: _traceparent(arr)}
    if f.kind == "uri":
        path, host = _uri(arr)
        return {col: path, "authority": host}
    if f.kind == "peer":
        return _peer(arr, col)
    raise ValueError(f"unknown field kind {f.kind!r}")


def normalize(
    raw: RawBatch,
    *,
    fmt: str,
    file: str,
    source: str | None = None,
    kind: str = "access_log",
) -> tuple[pa.Table, list[Reject]]:
    """Convert a RawBatch; rows with an unreadable value become rejects (file, line, field)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = raw.num_rows
    bad = _Bad(n)
    produced: dict[str, list[pa.Array]] = {}
    for key, arr in raw.columns.items():
        f = raw.fields.get(key)
        if f is None:
            continue
        if len(arr) != n:
            raise ValueError(f"column {key} has {len(arr)} values for {n} rows")
        for col, values in _convert(key, f, arr, bad).items():
            produced.setdefault(col, []).append(values)
    columns: dict[str, pa.Array] = {}
    for col, arrays in produced.items():
        # Several sources for one column (e.g. request_id and x_request_id): first non-null wins.
        columns[col] = arrays[0] if len(arrays) == 1 else pc.coalesce(*arrays)
    for col, value in raw.constants.items():
        if col in columns:
            columns[col] = pc.coalesce(columns[col], pa.scalar(value, pa.string()))
        else:
            columns[col] = pa.repeat(pa.scalar(value, pa.string()), n)

    # A record none of whose core fields is set is not an access-log record (e.g. an app's JSON log).
    core = [columns[c] for c in CORE_COLUMNS if c in columns]
    if core:
        present = pc.is_valid(core[0])
        for c in core[1:]:
            present = pc.or_(present, pc.is_valid(c))
        empty = pc.invert(present).to_numpy(zero_copy_only=False)
    else:
        empty = np.ones(n, dtype=bool)
    rejects: list[Reject] = []
    drop = bad.mask | empty
    for i in np.flatnonzero(drop).tolist():
        sample = raw.sample(i) if raw.sample else b""
        if bad.mask[i]:
            reason, key = bad.reasons[i]
            rejects.append(Reject.of(file, int(raw.lines[i]), reason, sample, field=key))
        else:
            rejects.append(Reject.of(file, int(raw.lines[i]), f"no {fmt} access-log fields in this record", sample))

    lines = raw.lines
    if drop.any():
        keep = pa.array(~drop)
        columns = {c: pc.filter(a, keep) for c, a in columns.items()}
        lines = lines[~drop]
    m = len(lines)
    # One value for the whole batch: dictionary-encoded, never repeated row by row (a path can be long).
    zeros = pa.array(np.zeros(m, dtype=np.int32))
    for col, value in (("record_kind", kind), ("record_format", fmt), ("record_source", source or file),
                       ("record_file", file)):
        columns[col] = pa.DictionaryArray.from_arrays(zeros, pa.array([value], type=pa.string()))
    columns["record_line"] = pa.array(lines, type=pa.int64())
    names = [c for c in rt.COLUMN_NAMES if c in columns] + [c for c in AUX_COLUMNS if c in columns]
    return pa.table({c: columns[c] for c in names}), rejects
