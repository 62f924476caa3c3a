"""File I/O shared by every layer: the one JSONL reader (errors name file, line and column) and the one
atomic writer of text, JSON and JSONL files."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any


class DataFormatError(ValueError):
    """A malformed input row; the message names the file, the line and the field."""

    def __init__(self, path: str, line: int, field: str | None, problem: str) -> None:
        where = f"{path}:{line}" + (f": field {field!r}" if field else "")
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.field = path, line, field


def iter_objects(path: str, what: str = "training file") -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, parsed JSON value)`` for each non-empty line of a JSONL file.

    Lines are decoded as UTF-8 here (a leading BOM is dropped), so an undecodable byte raises a
    :class:`DataFormatError` with the file, the line and the column instead of a bare
    ``UnicodeDecodeError``. A ``.gz`` file is decompressed on the fly.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    with gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataFormatError(
                    path,
                    line_no,
                    None,
                    f"not valid UTF-8: byte 0x{raw[err.start]:02x} at column {err.start + 1} "
                    "(re-encode the file as UTF-8)",
                ) from None
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    path, line_no, None, f"invalid JSON ({err.msg} at column {err.colno})"
                ) from err


def iter_records(path: str, what: str = "training file") -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`iter_objects` for files whose every line must be a JSON object (``(line, dict)`` pairs)."""
    for line_no, obj in iter_objects(path, what):
        if not isinstance(obj, dict):
            raise DataFormatError(path, line_no, None, f"expected a JSON object, got {type(obj).__name__}")
        yield line_no, obj


# Line breaks that JSON leaves raw but str.splitlines() and some JSONL readers split on
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) atomically: a temporary file renamed over ``path``.

    A crash mid-write leaves the previous file (or none), never a truncated one.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (see :func:`write_text`)."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSONL atomically (a temporary file renamed over ``path``); returns the row count.

    Rows are streamed to the temporary file, so ``rows`` may be a generator. Text stays readable
    UTF-8, except U+2028, U+2029 and U+0085, which are escaped so that every reader sees one row per line.
    """
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False).translate(_LINE_BREAKS) + "\n")
            n += 1
    os.replace(tmp, path)
    return n
