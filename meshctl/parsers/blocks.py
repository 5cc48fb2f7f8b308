"""Cut a byte stream into blocks of whole lines for vectorized parsing, with bounded memory.

A block is a few MB of complete lines (each ending in `\\n`) plus the number of its first line, so
parsers can hand it to Arrow's JSON/CSV readers in one call and still name the file line of every
row. A line longer than `max_line_bytes` never enters a block: it is reported as a `LongLine`
(one reject) and skipped without being held in memory, however long it is.

Encodings: a UTF-8 byte-order mark is dropped; a UTF-16 file (BOM) is transcoded to UTF-8 on the
fly. Any other bytes pass through unchanged: decoding is the parser's job, so one line in a wrong
encoding is one reject.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from meshctl.sources.files import MAX_LINE_BYTES

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

BLOCK_BYTES = 8 << 20
SAMPLE_BYTES = 512


@dataclass
class Block:
    data: bytes  # complete lines, each ending in b"\n"
    first_line: int  # 1-based number of the first line of `data`
    count: int  # number of lines in `data`

    def numbers(self) -> np.ndarray:
        import numpy as np

        return np.arange(self.first_line, self.first_line + self.count, dtype=np.int64)

    def has_blank_lines(self) -> bool:
        d = self.data
        if d.startswith((b"\n", b"\r\n")) or d.find(b"\n\n") >= 0:
            return True
        return d.find(b"\r", 0, 4096) >= 0 and d.find(b"\n\r\n") >= 0  # CRLF files only

    def lines(self) -> list[bytes]:
        """The lines without their line ends (CR too)."""
        out = self.data.split(b"\n")
        out.pop()  # after the final newline
        return [ln[:-1] if ln.endswith(b"\r") else ln for ln in out]

    def without_blank_lines(self) -> tuple[bytes, np.ndarray, int]:
        """(data without empty lines, line numbers of the lines kept, number of empty lines)."""
        import numpy as np

        kept = []
        numbers = []
        for i, ln in enumerate(self.data.split(b"\n")[:-1]):
            if ln.strip(b"\r \t"):
                kept.append(ln)
                numbers.append(self.first_line + i)
        data = b"\n".join(kept) + b"\n" if kept else b""
        return data, np.array(numbers, dtype=np.int64), self.count - len(kept)


@dataclass
class LongLine:
    """A line over the size limit: reported, never buffered whole."""

    line: int
    head: bytes  # its first bytes, for the reject sample
    size_hint: int  # bytes seen before giving up (at least the limit)


class _Utf16ToUtf8:
    """A binary reader that decodes UTF-16 (with BOM) and yields UTF-8 bytes."""

    def __init__(self, stream: BinaryIO, head: bytes) -> None:
        self._dec = codecs.getincrementaldecoder("utf-16")(errors="replace")
        self._stream = stream
        self._pending = self._dec.decode(head).encode("utf-8")

    def read(self, n: int) -> bytes:
        while len(self._pending) < n:
            chunk = self._stream.read(n)
            if not chunk:
                self._pending += self._dec.decode(b"", final=True).encode("utf-8")
                break
            self._pending += self._dec.decode(chunk).encode("utf-8")
        out, self._pending = self._pending[:n], self._pending[n:]
        return out


_PEEK = 1 << 16


def _plain_fd(stream: BinaryIO) -> tuple[int, Any] | None:
    """(fd, file) when `stream` reads an uncompressed regular file (directly or through a wrapper that
    says so with `plain_file`), so reads can be cut at line ends; None otherwise."""
    f = getattr(stream, "plain_file", stream)
    if not isinstance(f, io.BufferedReader):
        return None
    try:
        fd = f.fileno()
        return (fd, f) if stat.S_ISREG(os.fstat(fd).st_mode) and f.seekable() else None
    except (OSError, ValueError):
        return None


def _reader(stream: BinaryIO, size: Callable[[], int]) -> Iterator[bytes]:
    plain = _plain_fd(stream)
    block_bytes = size()
    head = stream.read(_line_cut(plain, block_bytes))
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        conv = _Utf16ToUtf8(stream, head)
        while True:
            chunk = conv.read(block_bytes)
            if not chunk:
                return
            yield chunk
    if head:
        yield head
    while True:
        chunk = stream.read(_line_cut(plain, size()))
        if not chunk:
            return
        yield chunk


def _line_cut(plain: tuple[int, Any] | None, size: int) -> int:
    """How much to read so that the chunk ends at a line end (regular files: a peek at the bytes
    around `size` with pread), so that blocks are the chunks read, not copies of them."""
    if plain is None or size <= _PEEK:
        return size
    fd, f = plain
    try:
        tail = os.pread(fd, _PEEK, f.tell() + size - _PEEK)
    except OSError:
        return size
    nl = tail.rfind(b"\n")
    if len(tail) < _PEEK or nl < 0:
        return size  # near the end of the file, or a very long line: the chunk is cut by copying
    return size - _PEEK + nl + 1


def count_byte(data: bytes, byte: int, start: int = 0, end: int | None = None) -> int:
    """How many times `byte` occurs in data[start:end] (numpy: runs without holding the GIL, so
    other threads parse meanwhile; in slices that stay in cache, with no large temporary)."""
    import numpy as np

    view = np.frombuffer(data, dtype=np.uint8)[start:end]
    if len(view) <= 65536:
        return data.count(bytes((byte,)), start, len(data) if end is None else end)
    step = 1 << 18
    return sum(int(np.count_nonzero(view[i:i + step] == byte)) for i in range(0, len(view), step))


def _split_long(data: bytes, first: int, limit: int) -> Iterator[Block | LongLine]:
    """Yield `data` (complete lines) as blocks, cutting out lines longer than `limit`.

    Finds long lines without looking at every line: from a line start, the last newline within
    `limit` bytes is itself followed by a line start; only when there is none is the line too long.
    """
    pos = start = 0
    size = len(data)
    while size - pos > limit + 1:
        p = data.rfind(b"\n", pos, pos + limit + 1)
        if p >= 0:
            pos = p + 1
            continue
        if pos > start:
            count = count_byte(data, 10, start, pos)
            yield Block(data[start:pos], first, count)
            first += count
        end = data.find(b"\n", pos)
        yield LongLine(first, data[pos:pos + SAMPLE_BYTES], end - pos)
        first += 1
        pos = start = end + 1
    if start < size:
        yield Block(data[start:] if start else data, first, count_byte(data, 10, start))


def iter_blocks(
    stream: BinaryIO, *, block_bytes: int | Callable[[], int] = BLOCK_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[Block | LongLine]:
    """Blocks of complete lines (and LongLine markers) from a binary stream, in order. `block_bytes`
    may be a function, asked before each read (a parser that learns the format picks its size)."""
    line = 1
    pending = b""
    skipping = False  # inside a long line, looking for its end
    size = block_bytes if callable(block_bytes) else (lambda: block_bytes)
    for chunk in _reader(stream, size):
        if skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                continue
            chunk = chunk[nl + 1:]
            skipping = False
            line += 1
        # One copy at most per block: the pending tail of the last chunk + this chunk up to its last newline.
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            complete, pending = b"", pending + chunk
        else:
            complete = b"".join((pending, memoryview(chunk)[:cut])) if pending or cut < len(chunk) else chunk
            pending = chunk[cut:]
        if complete:
            for item in _split_long(complete, line, max_line_bytes):
                yield item
                line += item.count if isinstance(item, Block) else 1
        if len(pending) > max_line_bytes:
            yield LongLine(line, pending[:SAMPLE_BYTES], len(pending))
            pending = b""
            skipping = True
    if skipping:
        return
    if pending.strip(b"\r\n\t "):
        yield from _split_long(pending + b"\n", line, max_line_bytes)
