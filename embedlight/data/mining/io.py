"""Row I/O for the data engine: FlagEmbedding-schema input, corpora, atomic JSONL output."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from embedlight.data.jsonl import TRIPLET, DataFormatError, iter_objects, validate_row


def read_triplets(path: str) -> list[dict[str, Any]]:
    """Read a FlagEmbedding training file (``query``, ``pos``, optional ``neg``), keeping extra fields.

    Every row is validated (errors name file, line and field); fields beyond the schema (``category``,
    ``pos_scores``, ...) are kept as they are.
    """
    rows = []
    for line_no, obj in iter_objects(path):
        checked = validate_row(path, line_no, obj, TRIPLET)
        rows.append({**obj, **{k: v for k, v in checked.items() if v is not None}})
    if not rows:
        raise DataFormatError(path, 1, None, "file is empty")
    return rows


def read_corpus(path: str) -> list[str]:
    """Texts of a corpus JSONL: ``{"text"}`` rows or a BEIR ``corpus.jsonl`` (``title`` + ``text``).

    BEIR titles are joined to the text with a space, as BEIR's own evaluation does. A folder is read
    as ``<folder>/corpus.jsonl``.
    """
    if os.path.isdir(path):
        path = os.path.join(path, "corpus.jsonl")
    texts = []
    for line_no, obj in iter_objects(path):
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise DataFormatError(path, line_no, "text", "expected an object with a string 'text'")
        title = obj.get("title") or ""
        texts.append(f"{title} {obj['text']}".strip() if title else obj["text"])
    if not texts:
        raise DataFormatError(path, 1, None, "corpus is empty")
    return texts


def pool_corpus(rows: Sequence[dict[str, Any]]) -> list[str]:
    """FlagEmbedding's default corpus: every ``pos`` and ``neg`` text of the input, in first-seen order."""
    return unique(t for r in rows for t in (*r["pos"], *(r.get("neg") or [])))


def unique(texts: Iterable[str]) -> list[str]:
    """Texts without exact duplicates, in first-seen order."""
    return list(dict.fromkeys(texts))


def check_output(path: str, overwrite: bool) -> None:
    """Refuse to replace an existing output unless ``overwrite`` is set."""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=true to replace it")


# Line breaks that JSON leaves raw but str.splitlines() and some JSONL readers split on
_LINE_BREAKS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def write_jsonl(path: str, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSONL atomically (a temporary file renamed over ``path``); returns the row count.

    Text stays readable UTF-8, except U+2028, U+2029 and U+0085, which are escaped so that every
    reader sees one row per line.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False).translate(_LINE_BREAKS) + "\n")
            n += 1
    os.replace(tmp, path)
    return n
