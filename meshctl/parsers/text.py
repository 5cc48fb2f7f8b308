"""Text access logs: any Envoy format string (Istio's and Envoy's defaults included), Linkerd's
apache format, read vectorized a block at a time.

Fast path for Envoy formats: Arrow's CSV reader with space delimiter and `"` quoting splits a
block into the format's tokens (see envoy_format.CompiledFormat.csv), then Arrow string kernels
take literal affixes off and split multi-operator tokens. Lines the fast path cannot place (a
quote inside a user agent, a line of another format) are retried one by one with the format's
regular expressions; only those lines pay the per-line price.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshctl.parsers.blocks import count_byte
from meshctl.parsers.envoy_format import CompiledFormat
from meshctl.parsers.fields import LINKERD_JSON_FIELDS, Field

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa


class BlockFailed(Exception):
    """The vectorized path cannot read this block; every line goes the per-line way."""


class LineError(Exception):
    """One line could not be read; `field` names the culprit when there is one."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


@dataclass
class BlockRaw:
    """What the vectorized path got from a block."""

    columns: dict[str, pa.Array]  # key → raw values, one per parsed row
    rows: np.ndarray  # block-relative index of each parsed row
    retry: list[int] = field(default_factory=list)  # block-relative lines for the per-line path


def block_strings(data: bytes, count: int) -> pa.Array:
    """The lines of a block as an Arrow string array (zero-copy); raises BlockFailed on bad UTF-8."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    if len(nl) != count:
        raise BlockFailed("line count mismatch")
    offsets = np.empty(count + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = nl + 1
    arr = pa.Array.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        s = arr.cast(pa.large_string())
    except pa.ArrowInvalid as exc:
        raise BlockFailed(str(exc)) from exc
    return pc.utf8_rtrim(s, characters="\r\n").cast(pa.string())


def require_utf8(data: bytes) -> None:
    """Raise BlockFailed unless the block is valid UTF-8 (Arrow validates without copying)."""
    import pyarrow as pa

    offsets = pa.py_buffer(struct.pack("<qq", 0, len(data)))
    arr = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        arr.cast(pa.large_string())
    except pa.ArrowInvalid as exc:
        raise BlockFailed("not UTF-8") from exc


class RegexFormat:
    """A line format described by one regular expression with named groups (RE2-compatible)."""

    kind = "access_log"

    def __init__(self, name: str, regex: str, fields: dict[str, Field], constants: dict[str, str] | None = None,
                 loose: str | None = None) -> None:
        self.name = name
        self.rx = regex
        self.strict = re.compile(regex, re.DOTALL)
        self.loose = re.compile(loose, re.DOTALL) if loose else None
        self.fields = fields
        self.constants = constants or {}

    def field_of(self, key: str) -> Field | None:
        return self.fields.get(key)

    def score(self, lines: list[str]) -> float:
        if not lines:
            return 0.0
        return sum(1 for ln in lines if self.strict.match(ln)) / len(lines)

    def parse_line(self, line: bytes) -> list[dict[str, Any]]:
        text = _decode(line)
        m = self.strict.match(text)
        d = m.groupdict() if m is not None else self._loose_groups(text)
        if d is None:
            raise LineError(f"does not match the {self.name} format")
        return [{k: v for k, v in d.items() if k in self.fields}]

    def _loose_groups(self, text: str) -> dict[str, str | None] | None:
        """The loose pattern (lazy groups) on a line the strict one refused."""
        if self.loose is None or not self._may_match_loose(text):
            return None
        m = self.loose.match(text)
        return m.groupdict() if m is not None else None

    def _may_match_loose(self, text: str) -> bool:
        """Whether the loose pattern can match at all: its literal pieces must appear in order (first
        and last ones at the ends). Checked in linear time first because on a line where they do not,
        Python's backtracking engine tries every split of two dozen lazy groups — seconds for one
        truncated line. Here (no format string to look at): always True."""
        return True

    def parse_block(self, data: bytes, count: int) -> BlockRaw:
        import numpy as np
        import pyarrow.compute as pc

        s = block_strings(data, count)
        ext = pc.extract_regex(s, self.rx)
        ok = pc.is_valid(ext).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(ok)
        retry = np.flatnonzero(~ok).tolist()
        if retry:
            ext = ext.filter(pc.is_valid(ext))
        columns = {k: pc.struct_field(ext, k) for k in self.fields}
        return BlockRaw(columns, rows, retry)


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 text (byte {exc.start}: {line[exc.start:exc.start + 1]!r}); "
                        "wrong encoding or binary data") from None


class EnvoyTextFormat(RegexFormat):
    """An Envoy format string compiled into a parser (Istio TEXT, Envoy default, or custom)."""

    def __init__(self, compiled: CompiledFormat) -> None:
        super().__init__(compiled.name, compiled.strict_rx, compiled.fields(),
                         loose=compiled.loose.pattern)
        self.compiled = compiled

    def _may_match_loose(self, text: str) -> bool:
        parts = self.compiled.parts
        pos, end = 0, len(text)
        first, last = 0, len(parts)
        if isinstance(parts[0], str):
            if not text.startswith(parts[0]):
                return False
            pos, first = len(parts[0]), 1
        if len(parts) > 1 and isinstance(parts[-1], str):
            if not text.endswith(parts[-1]):
                return False
            end, last = end - len(parts[-1]), len(parts) - 1
        if pos > end:
            return False
        for p in parts[first:last]:
            if isinstance(p, str):
                j = text.find(p, pos, end)
                if j < 0:
                    return False
                pos = j + len(p)
        return True

    def parse_block(self, data: bytes, count: int) -> BlockRaw:
        if self.compiled.csv is None:
            return super().parse_block(data, count)
        return self._csv_block(data, count)

    def _csv_block(self, data: bytes, count: int) -> BlockRaw:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv

        plan = self.compiled.csv
        assert plan is not None
        wanted = set(self.fields)
        names = [f"c{i}" for i in range(len(plan))]
        use = [i for i, c in enumerate(plan) if c.mode != "skip" and any(f"f{o}" in wanted for o in c.ops)]
        invalid: list[int] = []
        try:
            require_utf8(data)
        except BlockFailed:
            if len(plan) < 2:
                raise
            data = _without_bad_utf8(data)

        def on_invalid(row: Any) -> str:
            invalid.append(row.number)
            return "skip"

        try:
            tbl = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(column_names=names, use_threads=False, block_size=len(data) + 1),
                parse_options=pcsv.ParseOptions(delimiter=" ", quote_char='"', double_quote=False, escape_char=False,
                                                newlines_in_values=False, ignore_empty_lines=False,
                                                invalid_row_handler=on_invalid),
                convert_options=pcsv.ConvertOptions(
                    column_types={names[i]: pa.string() for i in use}, include_columns=[names[i] for i in use],
                    strings_can_be_null=False, quoted_strings_can_be_null=False),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise BlockFailed(str(exc)) from exc
        if tbl.num_rows + len(invalid) != count or any(n is None for n in invalid):
            # A stray quote made the reader join lines: the mapping row → line is lost.
            raise BlockFailed("CSV rows do not match lines")
        bad_idx = np.array(sorted(n - 1 for n in invalid), dtype=np.int64)
        rows = np.setdiff1d(np.arange(count, dtype=np.int64), bad_idx, assume_unique=True)

        # Pass 1: which rows fit every column's shape (affixes, token counts, sub-regex).
        ok = None
        prepared: dict[int, Any] = {}
        expected = self.compiled.quotes
        if count_byte(data, 34) != expected * count:
            # A quote inside a value makes the CSV reader shift or glue fields without complaint:
            # lines with another number of quotes than the format has go the per-line way.
            buf = np.frombuffer(data, dtype=np.uint8)
            per_line = np.bincount(np.searchsorted(np.flatnonzero(buf == 10), np.flatnonzero(buf == 34)),
                                   minlength=count)[:count]
            odd = np.flatnonzero(per_line != expected)
            ok = pa.array(~np.isin(rows, odd))
        if use:
            # The CSV reader turns a blank line into a row of empty values: send those to the
            # per-line path, which counts them as ignored.
            first = tbl.column(names[use[0]])
            if pc.any(pc.equal(first, "")).as_py():
                blank = None
                for i in use:
                    e = pc.equal(tbl.column(names[i]), "")
                    blank = e if blank is None else pc.and_(blank, e)
                not_blank = pc.invert(blank.combine_chunks())
                ok = not_blank if ok is None else pc.and_(ok, not_blank)
        for i in use:
            col_plan = plan[i]
            col = tbl.column(names[i]).combine_chunks()
            cond = None
            if col_plan.prefix or col_plan.suffix:
                if col_plan.prefix:
                    cond = pc.starts_with(col, col_plan.prefix)
                if col_plan.suffix:
                    c2 = pc.ends_with(col, col_plan.suffix)
                    cond = c2 if cond is None else pc.and_(cond, c2)
                stop = -len(col_plan.suffix.encode()) if col_plan.suffix else None
                col = pc.utf8_slice_codeunits(col, start=len(col_plan.prefix.encode()), stop=stop)
            if col_plan.mode == "split":
                lists = pc.split_pattern(col, " ", max_splits=len(col_plan.ops) - 1)
                c2 = pc.equal(pc.list_value_length(lists), len(col_plan.ops))
                cond = c2 if cond is None else pc.and_(cond, c2)
                prepared[i] = lists
            elif col_plan.mode == "regex":
                ext = pc.extract_regex(col, col_plan.regex)
                c2 = pc.is_valid(ext)
                cond = c2 if cond is None else pc.and_(cond, c2)
                prepared[i] = ext
            else:
                prepared[i] = col
            if cond is not None:
                ok = cond if ok is None else pc.and_(ok, cond)
        retry = bad_idx.tolist()
        if ok is not None:
            okn = ok.to_numpy(zero_copy_only=False)
            if not okn.all():
                retry = sorted(retry + rows[~okn].tolist())
                rows = rows[okn]
                mask = pa.array(okn)
                prepared = {i: pc.filter(v, mask) for i, v in prepared.items()}

        # Pass 2: values per operator.
        columns: dict[str, pa.Array] = {}
        for i in use:
            col_plan = plan[i]
            v = prepared[i]
            if col_plan.mode == "split":
                for j, op in enumerate(col_plan.ops):
                    if f"f{op}" in wanted:
                        columns[f"f{op}"] = pc.list_element(v, j)
            elif col_plan.mode == "regex":
                for op in col_plan.ops:
                    if f"f{op}" in wanted:
                        columns[f"f{op}"] = pc.struct_field(v, f"f{op}")
            else:
                columns[f"f{col_plan.ops[0]}"] = v
        return BlockRaw(columns, rows, retry)


def _without_bad_utf8(data: bytes) -> bytes:
    """The block with each line that is not UTF-8 replaced by a one-byte line the CSV plan cannot place
    (the plan has several columns), so that only those lines go the per-line way (and are rejected
    there, from the original bytes) instead of the whole block."""
    lines = data.split(b"\n")
    for i, ln in enumerate(lines):
        try:
            ln.decode("utf-8")
        except UnicodeDecodeError:
            lines[i] = b"\x01"
    return b"\n".join(lines)


# ---- Linkerd apache (common log) format ----------------------------------------------------
LINKERD_APACHE_RX = (
    r'^(?P<client_addr>\S+) (?P<client_id>\S+) (?P<user>\S+) \[(?P<timestamp>[^\]]*)\] '
    r'"(?P<method>\S+) (?P<uri>\S+) (?P<version>[^"]*)" (?P<status>\d{1,3}|-)(?: (?P<bytes>\d+|-))?\s*$'
)
LINKERD_APACHE_FIELDS = {
    "client_addr": LINKERD_JSON_FIELDS["client.addr"],
    "client_id": LINKERD_JSON_FIELDS["client.id"],
    "timestamp": LINKERD_JSON_FIELDS["timestamp"],
    "method": LINKERD_JSON_FIELDS["method"],
    "uri": LINKERD_JSON_FIELDS["uri"],
    "version": LINKERD_JSON_FIELDS["version"],
    "status": LINKERD_JSON_FIELDS["status"],
    "bytes": LINKERD_JSON_FIELDS["response_bytes"],
}


def linkerd_apache() -> RegexFormat:
    # Linkerd's proxy logs only the requests it serves: the inbound side.
    return RegexFormat("linkerd-apache", LINKERD_APACHE_RX, LINKERD_APACHE_FIELDS, {"direction": "inbound"})
