"""What every parser returns: rows (Arrow, in the requests-table schema) and rejects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

REJECT_SAMPLE_BYTES = 512  # how much of a bad line a reject keeps


def json_sample(value: object) -> str:
    """A parsed JSON value (a bad span, a bad document) as a reject sample: its JSON text, cut short."""
    import json

    try:
        return json.dumps(value, default=str)[:REJECT_SAMPLE_BYTES]
    except (TypeError, ValueError):
        return repr(value)[:REJECT_SAMPLE_BYTES]


def json_text(value: object) -> str | None:
    """A JSON value as the text a string column holds: strings as they are, booleans as JSON spells
    them, objects and lists as JSON, null stays null."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value)
    return str(value)


@dataclass
class Reject:
    """One input record that could not be turned into a row: where it was, why, and what it looked like."""

    file: str
    line: int
    reason: str
    field: str | None = None
    sample: str = ""

    @classmethod
    def of(cls, file: str, line: int, reason: str, raw: bytes | str, field: str | None = None) -> Reject:
        if isinstance(raw, bytes):
            raw = raw[:REJECT_SAMPLE_BYTES].decode("utf-8", "backslashreplace")
        return cls(file=file, line=line, reason=reason, field=field, sample=raw[:REJECT_SAMPLE_BYTES])

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        what = f"{self.field}: {self.reason}" if self.field else self.reason
        return f"{where}: {what}"


@dataclass
class ParseResult:
    """A batch of parsed rows with the rejects met on the way; `lines` counts every record read."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    lines: int = 0
    ignored: int = 0  # records read that are neither rows nor rejects (blank lines, a proxy's own log lines)
    format: str | None = None  # the format that was read (as detected by `--format auto`)

    @property
    def rows(self) -> int:
        return self.table.num_rows
