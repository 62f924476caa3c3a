"""Row I/O for the data engine: FlagEmbedding-schema input, corpora, atomic JSONL output."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from embedlight.data.jsonl import RowKind, validate_row
from embedlight.utils.io import (
    DataFormatError,
    iter_objects,
    write_jsonl,  # noqa: F401  (the data engine's output writer)
)


def read_triplets(path: str) -> list[dict[str, Any]]:
    """Read a FlagEmbedding training file (``query``, ``pos``, optional ``neg``), keeping extra fields.

    Every row is validated (errors name file, line and field); fields beyond the schema (``category``,
    ``pos_scores``, ...) are kept as they are.
    """
    rows = []
    for line_no, obj in iter_objects(path):
        checked = validate_row(path, line_no, obj, RowKind.TRIPLET)
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
