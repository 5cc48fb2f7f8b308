"""JSON-lines access logs: Istio's JSON encoding, Envoy `json_format` logs, Linkerd's JSON log.

The vectorized path reads a whole block at once. The value types of the keys meshctl maps are learnt
from the first lines of the file (Istio ≥ 1.x writes typed values: numbers and `null`; older proxies
and custom formats write every value as a string) and adapt when a later block changes a key's type.

1. polars' NDJSON reader (about twice as fast as Arrow's) reads the block with a schema of every key
   meshctl maps: the types learnt, and `Null` for a mapped key not seen yet, so that a line where it
   shows up with a value stops this reader rather than being dropped. Anything it cannot read
   exactly as step 2 would — a syntax error, a value of another type, a nested object where a
   value is expected, a `\u0000` or broken surrogate escape, a blank line — sends the block to:
2. `pyarrow.json.read_json` with an explicit schema of the keys the file has, which learns new
   keys and changed types;
3. a block that still does not read (a truncated object, binary garbage, a text line in the middle)
   is read line by line with `json.loads`; only its bad lines are rejected.

Readers differ only where JSON itself leaves room: polars keeps the first of two equal keys in one
object (json.loads the last), and prints a number that stands where the file's earlier lines had a
string in its shortest form (`1.0` → "1").
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any

from meshctl.parsers.base import json_text
from meshctl.parsers.fields import (
    DIRECT_KEYS,
    ISTIO_JSON_KEYS,
    LINKERD_JSON_FIELDS,
    Field,
    json_key_field,
)
from meshctl.parsers.text import BlockFailed, BlockRaw, LineError, require_utf8

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

_CHANGED = re.compile(r"Column\(/([^)/]*)[^)]*\) changed from (\w+) to (\w+)")
PEER_KEYS = {"upstream_peer": "destination", "downstream_peer": "source",
             "wasm.upstream_peer": "destination", "wasm.downstream_peer": "source"}


def istio_json_fields() -> dict[str, Field]:
    out: dict[str, Field] = {}
    for key in list(ISTIO_JSON_KEYS) + list(DIRECT_KEYS):
        f = json_key_field(key)
        if f is not None:
            out[key] = f
    for key, side in PEER_KEYS.items():
        out[key] = Field(side, "peer")
    return out


class JsonFormat:
    """A JSON-lines format: key → Field."""

    kind = "access_log"
    # Blocks of 16 MB: the per-block costs (a reader call, normalizing, identity) weigh more here than
    # with text formats, where smaller blocks keep both cores busy at the start and end of a file.
    block_bytes = 16 << 20

    def __init__(self, name: str, fields: dict[str, Field], constants: dict[str, str] | None = None,
                 signature: tuple[str, ...] = ()) -> None:
        self.name = name
        self.fields = fields
        self.constants = constants or {}
        self.signature = signature  # keys whose presence identifies the format
        # Learnt value types, shared by the threads that parse this file's blocks: replaced whole
        # (copy on write, under the lock), so a reader always sees one consistent version.
        self._types: dict[str, pa.DataType] | None = None
        self._lock = threading.Lock()

    def field_of(self, key: str) -> Field | None:
        return self.fields.get(key)

    def score(self, lines: list[str]) -> float:
        if not lines:
            return 0.0
        hits = 0
        for ln in lines:
            try:
                obj = json.loads(ln)
            except ValueError:
                continue
            if isinstance(obj, dict):
                keys = set(obj)
                if self.signature and not keys.intersection(self.signature):
                    continue
                # The share of the object's keys this format knows: Linkerd and Istio logs share
                # a few names (method, user_agent), not most of them.
                hits += len(keys.intersection(self.fields)) / max(len(keys), 1)
        return hits / len(lines)

    # ---- per line -----------------------------------------------------------------------
    def parse_line(self, line: bytes) -> list[dict[str, Any]]:
        try:
            obj = json.loads(line)
        except UnicodeDecodeError as exc:
            raise LineError(f"not UTF-8 text (byte {exc.start}); wrong encoding or binary data") from None
        except ValueError as exc:
            text = line[:1].decode("latin-1")
            what = "truncated or malformed JSON" if text == "{" else "not JSON"
            raise LineError(f"{what}: {exc}") from None
        if not isinstance(obj, dict):
            raise LineError(f"JSON value is a {type(obj).__name__}, not an object")
        out: dict[str, Any] = {}
        for key in self.fields:
            if key not in obj:
                continue
            v = obj[key]
            if isinstance(v, (dict, list)) and self.fields[key].kind != "peer":
                raise LineError(f"{key} is a JSON {type(v).__name__}, not a value", field=key)
            out[key] = json_text(v)
        return [out]

    # ---- vectorized -----------------------------------------------------------------------
    def _learn(self, data: bytes) -> dict[str, pa.DataType]:
        """Types of the keys on the first lines of the file (typed or all-string encodings).

        The reader's schema holds exactly the keys the file has, unused ones included: a schema
        key that no line carries costs a null per row, and a key the schema lacks makes the reader
        stop ("unexpected field"), which is how a key that appears later is noticed (`_discover`).
        """
        import pyarrow as pa
        import pyarrow.json as pj

        head = data[: 1 << 16]
        head = head[: head.rfind(b"\n") + 1]
        types: dict[str, pa.DataType] = {}
        try:
            require_utf8(head)  # a key in another encoding would not even have a name
            tbl = pj.read_json(pa.BufferReader(head), read_options=pj.ReadOptions(use_threads=False))
        except (pa.ArrowInvalid, ValueError, BlockFailed):
            return types
        for f in tbl.schema:
            types[f.name] = _storage_type(f.type, self.fields.get(f.name))
        return types

    def _discover(self, data: bytes) -> pa.Table:
        """Read a block whose lines carry keys not seen so far, and add those keys to the schema."""
        import pyarrow as pa
        import pyarrow.json as pj

        types = self._types
        assert types is not None
        schema = pa.schema(list(types.items()))
        tbl = pj.read_json(pa.BufferReader(data),
                           read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
                           parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"))
        new = {f.name: _storage_type(f.type, self.fields.get(f.name)) for f in tbl.schema if f.name not in types}
        if new:
            with self._lock:
                current = self._types or {}
                self._types = {**current, **{k: t for k, t in new.items() if k not in current}}
        return tbl

    def parse_block(self, data: bytes, count: int) -> BlockRaw:
        import numpy as np
        import pyarrow as pa
        import pyarrow.json as pj

        if self._types is None:
            with self._lock:
                if self._types is None:
                    self._types = self._learn(data)
        fast = self._polars_block(data, count)  # polars validates UTF-8 as it reads
        if fast is not None:
            return fast
        require_utf8(data)  # Arrow's JSON reader would pass bad bytes inside strings through
        for _attempt in range(6):
            types = self._types
            schema = pa.schema(list(types.items()))
            try:
                try:
                    tbl = pj.read_json(
                        pa.BufferReader(data),
                        read_options=pj.ReadOptions(use_threads=False, block_size=len(data) + 1),
                        parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
                    )
                except pa.ArrowInvalid as exc:
                    if "unexpected field" not in str(exc):
                        raise
                    tbl = self._discover(data)
            except pa.ArrowInvalid as exc:
                m = _CHANGED.search(str(exc))
                if m and m.group(1) in types and self._adapt(m.group(1), m.group(3)):
                    continue
                raise BlockFailed(str(exc)) from exc
            if tbl.num_rows != count:
                raise BlockFailed("JSON rows do not match lines")
            columns = {k: tbl.column(k).combine_chunks() for k in tbl.column_names if k in self.fields}
            return BlockRaw(columns, np.arange(count, dtype=np.int64))
        raise BlockFailed("JSON value types keep changing")

    def _polars_block(self, data: bytes, count: int) -> BlockRaw | None:
        """Step 1 of the module docstring; None when the block needs the Arrow reader."""
        import numpy as np
        import pyarrow as pa

        pl = _polars()
        types = self._types
        if pl is None or types is None:
            return None
        schema: dict[str, Any] = {}
        for key in self.fields:
            t = types.get(key)
            if t is None:
                schema[key] = pl.Null  # not seen yet: a value makes the reader fail
            elif pa.types.is_floating(t):
                schema[key] = pl.Float64
            elif pa.types.is_string(t):
                schema[key] = pl.String
            elif pa.types.is_boolean(t):
                schema[key] = pl.Boolean
            else:
                return None  # nested values (peer metadata objects): Arrow reads them
        try:
            df = pl.read_ndjson(data, schema=schema)
        except Exception:  # polars raises several error types; the Arrow path decides
            return None
        if df.height != count:
            return None  # blank lines: the Arrow path and its caller handle them
        # Columns in the order the Arrow reader returns them (the file's): it decides which of two keys
        # for one column (request_id, x_request_id) wins. As string views they share polars' buffers
        # (polars would copy holding the GIL); Arrow's cast then builds the string columns.
        tbl = df.select([k for k in types if k in schema]).to_arrow(compat_level=pl.CompatLevel.newest())
        columns = {}
        for name in tbl.column_names:
            col = tbl.column(name)
            col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
            if not pa.types.is_string(col.type) and (pa.types.is_string_view(col.type)
                                                      or pa.types.is_large_string(col.type)):
                col = col.cast(pa.string())
            if pa.types.is_string(col.type) and _odd_strings(col):
                return None
            columns[name] = col
        return BlockRaw(columns, np.arange(count, dtype=np.int64))

    def _adapt(self, key: str, new: str) -> bool:
        import pyarrow as pa

        target = {"number": pa.float64(), "string": pa.string(), "boolean": pa.bool_()}.get(new)
        with self._lock:
            assert self._types is not None
            if target is None or self._types[key].equals(target):
                return False
            self._types = {**self._types, key: target}
        return True


def _odd_strings(col: pa.Array) -> bool:
    """Whether polars read a value of a string column where the Arrow reader would not: a nested
    object or array (polars gives its JSON text, `{...}` / `[...]`) or a broken surrogate escape
    (polars gives NUL). Looked for in the column's bytes: its first and last byte per value, NULs."""
    import numpy as np

    n = len(col)
    if n == col.null_count:
        return False
    offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset:col.offset + n + 1]
    if col.buffers()[2] is None or offsets[-1] == offsets[0]:
        return False
    data = np.frombuffer(col.buffers()[2], dtype=np.uint8)
    if np.count_nonzero(data[offsets[0]:offsets[-1]] == 0):
        return True
    starts, ends = offsets[:-1], offsets[1:]
    filled = ends > starts
    if col.null_count:
        filled &= col.is_valid().to_numpy(zero_copy_only=False)
    first, last = data[starts[filled]], data[ends[filled] - 1]
    return bool((((first == 0x7B) & (last == 0x7D)) | ((first == 0x5B) & (last == 0x5D))).any())


_POLARS: Any = None


def _polars() -> Any:
    """polars, imported on first use (None if it is not installed: the Arrow reader does it all)."""
    global _POLARS
    if _POLARS is None:
        try:
            import polars
        except ImportError:
            polars = False
        _POLARS = polars
    return _POLARS or None


def _storage_type(t: pa.DataType, f: Field | None) -> pa.DataType:
    """The reader type for a key: numbers as float64 (ints and floats mix), peer metadata objects as
    they are, everything else as string (a later number in it is then adapted to)."""
    import pyarrow as pa

    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return pa.float64()
    if pa.types.is_boolean(t):
        return pa.bool_()
    if pa.types.is_nested(t) and (f is None or f.kind == "peer"):
        return t
    return pa.string()


def istio_json() -> JsonFormat:
    return JsonFormat("istio-json", istio_json_fields(),
                      signature=("start_time", "response_code", "upstream_cluster", "upstream_host", "authority",
                                 "method", "path", "duration", "request_id", "response_flags"))


def linkerd_json() -> JsonFormat:
    return JsonFormat("linkerd-json", dict(LINKERD_JSON_FIELDS), {"direction": "inbound"},
                      signature=("client.addr", "total_ns", "processing_ns"))


def json_format_from_dict(spec: dict[str, Any], name: str = "envoy-json") -> JsonFormat:
    """A custom Envoy `json_format` (key → "%OPERATOR%") as a JSON-lines format."""
    from meshctl.errors import InputError
    from meshctl.parsers.envoy_format import tokenize

    fields: dict[str, Field] = {}
    for key, value in spec.items():
        if isinstance(value, dict):
            continue
        if not isinstance(value, str):
            continue
        ops = [p for p in tokenize(value) if not isinstance(p, str)]
        f = ops[0].field if len(ops) == 1 else None
        if f is None:
            f = json_key_field(key)
        if f is not None:
            fields[key] = f
    if not fields:
        raise InputError("the JSON format has no key meshctl can map to the requests table",
                         field="--log-format-string")
    return JsonFormat(name, fields)
