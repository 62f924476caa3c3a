"""Small shared helpers: the one atomic writer of text, JSON and JSONL files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

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
