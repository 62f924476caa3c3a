"""File I/O shared by every layer: the one JSONL reader (errors name file, line and column) and the one
writer of text, JSON and JSONL files (atomic, streaming or appending)."""

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


def _jsonl_line(row: Any) -> str:
    return json.dumps(row, ensure_ascii=False).translate(_LINE_BREAKS) + "\n"


class JsonlWriter:
    """The one JSONL writer: one JSON value per line, UTF-8, U+2028/U+2029/U+0085 escaped.

    Two modes:

    * atomic (default): rows stream to ``<path>.tmp``, which is renamed over ``path`` by
      :meth:`close`; :meth:`abort` (or an exception inside ``with``) removes it, so ``path`` is either
      the previous file or the complete new one, never a part.
    * ``append=True``: rows are appended to ``path`` and flushed one by one, so every finished line is on
      disk when a long run is killed (a resumable job's log; a cut last line is the reader's to trim).

    Use as a context manager::

        with JsonlWriter(path) as out:
            for row in rows:
                out.write(row)
    """

    def __init__(self, path: str | os.PathLike, *, append: bool = False) -> None:
        self.path = os.fspath(path)
        self.append = append
        self.count = 0
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._target = self.path if append else self.path + ".tmp"
        self._fh = open(self._target, "a" if append else "w", encoding="utf-8")  # noqa: SIM115 - see close()

    def write(self, row: Any) -> None:
        """Write one row (a JSON-serialisable value) as one line."""
        self._fh.write(_jsonl_line(row))
        if self.append:
            self._fh.flush()
        self.count += 1

    def close(self) -> None:
        """Finish: close the file (atomic mode: rename the temporary file over ``path``)."""
        if self._fh.closed:
            return
        self._fh.close()
        if not self.append:
            os.replace(self._target, self.path)

    def abort(self) -> None:
        """Give up: close the file (atomic mode: remove the temporary file; ``path`` is untouched)."""
        if not self._fh.closed:
            self._fh.close()
        if not self.append and os.path.exists(self._target):
            os.remove(self._target)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSONL atomically (see :class:`JsonlWriter`); returns the row count.

    Rows are streamed to the temporary file, so ``rows`` may be a generator. Text stays readable
    UTF-8, except U+2028, U+2029 and U+0085, which are escaped so that every reader sees one row per line.
    """
    with JsonlWriter(path) as out:
        for row in rows:
            out.write(row)
    return out.count
