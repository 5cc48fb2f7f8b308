"""Input files for collection: paths, directories, globs, `.gz`, and `-` (stdin), read as numbered lines.

Lines are bytes (decoding is the parser's job, so that a line in a wrong encoding is one reject,
not a crash). Line numbers are 1-based. A line longer than `max_line_bytes` is cut, flagged and
handed on, so one 10 MB line cannot exhaust memory.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from meshctl.errors import InputError

MAX_LINE_BYTES = 1 << 20  # 1 MiB: far above any access-log line; a longer one is a reject


@dataclass(frozen=True)
class InputFile:
    """One input: a file on disk (maybe gzip) or stdin."""

    name: str  # as shown in messages and stored in record_file
    path: Path | None  # None for stdin

    def open(self) -> BinaryIO:
        if self.path is None:
            raw: BinaryIO = sys.stdin.buffer
            head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
            return gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
        f = open(self.path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
        if f.read(2) == b"\x1f\x8b":
            f.seek(0)
            return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
        f.seek(0)
        return f

    def size(self) -> int | None:
        try:
            return self.path.stat().st_size if self.path else None
        except OSError:
            return None


def expand_inputs(specs: Iterable[str], *, suffixes: tuple[str, ...] | None = None) -> list[InputFile]:
    """Paths, directories (walked, sorted), globs and `-` → input files. Unknown paths are an error."""
    out: list[InputFile] = []
    for spec in specs:
        if spec == "-":
            out.append(InputFile("<stdin>", None))
            continue
        if any(ch in spec for ch in "*?["):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise InputError(f"no file matches {spec!r}", file=spec)
            out.extend(InputFile(m, Path(m)) for m in matches if os.path.isfile(m))
            continue
        p = Path(spec)
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
            if suffixes:
                files = [q for q in files if q.name.endswith(suffixes) or q.name.endswith(tuple(s + ".gz" for s in suffixes))]
            out.extend(InputFile(str(q), q) for q in files)
        elif p.is_file():
            out.append(InputFile(str(p), p))
        else:
            raise InputError("no such file or directory", file=spec)
    return out


@dataclass
class Line:
    number: int
    data: bytes  # without the trailing newline
    truncated: bool = False  # the original line was longer than the limit


def iter_lines(stream: BinaryIO | io.BufferedIOBase, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Numbered lines of a binary stream; over-long lines are cut to `max_line_bytes` and flagged."""
    number = 0
    while True:
        chunk = stream.readline(max_line_bytes + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
            # Skip the rest of the long line without holding it.
            while True:
                rest = stream.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            yield Line(number, chunk[:max_line_bytes], truncated=True)
            continue
        yield Line(number, chunk.rstrip(b"\r\n"))
