"""Where a data file stops being readable: the first invalid UTF-8 byte (as offset, line and column),
or a compressed stream that ends early. Used only on the error path, so it may read the whole file."""
from __future__ import annotations

import codecs
import gzip
import zlib
from pathlib import Path

BLOCK = 1 << 20
COMPRESSION_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def first_invalid_utf8(path: str | Path) -> tuple[int, int, int] | None:
    """(byte offset, line, column), 1-based line and column, of the first byte that is not UTF-8; None if all is."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line, line_start = 0, 1, b""
    with _open(Path(path)) as fh:
        while block := fh.read(BLOCK):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                head = block[:e.start]
                line += head.count(b"\n")
                prefix = (line_start + head) if b"\n" not in head else head.rsplit(b"\n", 1)[1]
                return offset + e.start, line, len(prefix.decode("utf-8", "replace")) + 1
            line += block.count(b"\n")
            line_start = (line_start + block) if b"\n" not in block else block.rsplit(b"\n", 1)[1]
            offset += len(block)
    return None


def not_utf8_message(path: str | Path, what: str = "dataset") -> str:
    where = first_invalid_utf8(path)
    if where is None:
        return f"{what} is not UTF-8 text"
    offset, line, column = where
    return f"{what} is not UTF-8 text: first invalid byte at offset {offset} (line {line}, column {column})"


def corrupt_compression_message(error: BaseException, what: str = "dataset") -> str:
    if isinstance(error, EOFError):
        return f"{what} is a truncated gzip file (the compressed stream ends early); copy the complete file again"
    return f"{what} is not a valid gzip file ({str(error).splitlines()[0][:120] if str(error) else type(error).__name__})"
