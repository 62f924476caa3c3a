"""Reading and validating training JSONL files with errors that name file, line and field.

:func:`iter_objects` is the one JSONL reader: it decodes each line as UTF-8 itself (a UTF-8 BOM is
accepted; an undecodable byte is reported with its file, line and column) and parses it as JSON.
Every schema has explicit ``datasets.Features`` (:data:`FEATURES`): Arrow never infers column types
from the first rows, so a file whose first thousand rows lack an optional field still loads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from enum import Enum
from typing import Any

import datasets

from embedlight.utils.io import DataFormatError, iter_objects


class RowKind(str, Enum):
    """The schema of a training row; a source's ``kind`` in config is one of the values."""

    TRIPLET = (
        "triplet"  # FlagEmbedding schema: {"query", "pos": [...], "neg": [...], "prompt"?, "type"?, ...}
    )
    PAIRS = "pairs"  # scored pairs: {"text1", "text2", "score"}
    TEXT = "text"  # plain text for pretraining: {"text"}

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def parse(cls, value: RowKind | str, key: str = "kind") -> RowKind:
        """``value`` as a :class:`RowKind`; an unknown one fails naming ``key`` and the valid kinds."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(k.value for k in cls)
            raise ValueError(f"{key}: unknown data kind {value!r}; valid kinds: {valid}") from None


_PAIR_ALIASES = {
    "text1": ("text1", "sentence1"),
    "text2": ("text2", "sentence2"),
    "score": ("score", "label"),
}

_STR = datasets.Value("string")
_FLOATS = datasets.List(datasets.Value("float64"))
FEATURES: dict[RowKind, datasets.Features] = {
    RowKind.TRIPLET: datasets.Features(
        {
            "query": _STR,
            "pos": datasets.List(_STR),
            "neg": datasets.List(_STR),  # [] when the row has none
            "prompt": _STR,  # None when absent
            "type": _STR,
            "category": _STR,  # FlagEmbedding's clustering files
            "pos_scores": _FLOATS,  # teacher scores, one per ``pos`` item (None when absent)
            "neg_scores": _FLOATS,  # teacher scores, one per ``neg`` item (None when absent)
        }
    ),
    RowKind.PAIRS: datasets.Features({"text1": _STR, "text2": _STR, "score": datasets.Value("float64")}),
    RowKind.TEXT: datasets.Features({"text": _STR}),
}


def detect_kind(row: dict[str, Any]) -> RowKind:
    """Guess a row's schema from its keys."""
    if "query" in row or "pos" in row:
        return RowKind.TRIPLET
    if any(k in row for k in ("text1", "sentence1")):
        return RowKind.PAIRS
    if "text" in row:
        return RowKind.TEXT
    return RowKind.TRIPLET


def _str(
    path: str, line: int, row: dict[str, Any], field: str, optional: bool = False, nonempty: bool = False
) -> str | None:
    if field not in row or row[field] is None:
        if optional:
            return None
        raise DataFormatError(path, line, field, "missing" if field not in row else "is null")
    value = row[field]
    if not isinstance(value, str):
        raise DataFormatError(path, line, field, f"expected a string, got {type(value).__name__}")
    if nonempty and not value.strip():
        raise DataFormatError(path, line, field, "is an empty string (nothing to train on)")
    return value


def _str_list(path: str, line: int, row: dict[str, Any], field: str, min_len: int) -> list[str]:
    value = row.get(field)
    if value is None:
        if min_len == 0:  # an optional list: absent or null both mean "none"
            return []
        raise DataFormatError(path, line, field, "missing" if field not in row else "is null")
    if isinstance(value, str):
        raise DataFormatError(
            path, line, field, "expected a list of strings, got a string (wrap it in [...])"
        )
    if not isinstance(value, list):
        raise DataFormatError(path, line, field, f"expected a list of strings, got {type(value).__name__}")
    for j, item in enumerate(value):
        if not isinstance(item, str):
            raise DataFormatError(
                path, line, f"{field}[{j}]", f"expected a string, got {type(item).__name__}"
            )
        if not item.strip():
            raise DataFormatError(path, line, f"{field}[{j}]", "is an empty string (nothing to train on)")
    if len(value) < min_len:
        raise DataFormatError(path, line, field, f"needs at least {min_len} item(s), got {len(value)}")
    return value


def _scores(path: str, line: int, row: dict[str, Any], field: str, texts: list[str]) -> list[float] | None:
    """Optional teacher scores: a list of finite numbers, one per item of the matching text list."""
    value = row.get(field)
    if value is None:
        return None
    if not isinstance(value, list):
        raise DataFormatError(path, line, field, f"expected a list of numbers, got {type(value).__name__}")
    out = []
    for j, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise DataFormatError(path, line, f"{field}[{j}]", f"expected a finite number, got {item!r}")
        out.append(float(item))
    texts_field = field.removesuffix("_scores")
    if len(out) != len(texts):
        raise DataFormatError(
            path, line, field, f"has {len(out)} score(s) for {len(texts)} {texts_field!r} item(s)"
        )
    return out


def validate_row(path: str, line: int, row: Any, kind: RowKind | str) -> dict[str, Any]:
    """Check one parsed row against ``kind``'s schema and return it normalised (all of
    :data:`FEATURES`' columns, None for absent optional ones)."""
    kind = RowKind.parse(kind)
    if not isinstance(row, dict):
        raise DataFormatError(path, line, None, f"expected a JSON object, got {type(row).__name__}")
    if kind is RowKind.TRIPLET:
        pos = _str_list(path, line, row, "pos", 1)
        neg = _str_list(path, line, row, "neg", 0)
        return {
            "query": _str(path, line, row, "query", nonempty=True),
            "pos": pos,
            "neg": neg,
            "prompt": _str(path, line, row, "prompt", optional=True),
            "type": _str(path, line, row, "type", optional=True),
            "category": _str(path, line, row, "category", optional=True),
            "pos_scores": _scores(path, line, row, "pos_scores", pos),
            "neg_scores": _scores(path, line, row, "neg_scores", neg),
        }
    if kind is RowKind.PAIRS:
        out: dict[str, Any] = {}
        for field, aliases in _PAIR_ALIASES.items():
            key = next((a for a in aliases if a in row), None)
            if key is None:
                raise DataFormatError(path, line, field, f"missing (also looked for {list(aliases[1:])})")
            out[field] = row[key]
        for field in ("text1", "text2"):
            if not isinstance(out[field], str):
                raise DataFormatError(
                    path, line, field, f"expected a string, got {type(out[field]).__name__}"
                )
            if not out[field].strip():
                raise DataFormatError(path, line, field, "is an empty string (nothing to train on)")
        score = out["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise DataFormatError(path, line, "score", f"expected a finite number, got {score!r}")
        out["score"] = float(score)
        return out
    return {"text": _str(path, line, row, "text")}  # RowKind.TEXT


def read_jsonl(path: str, kind: RowKind | str | None = None) -> Iterator[dict[str, Any]]:
    """Yield validated rows of a JSONL file; the first row fixes ``kind`` when it is None."""
    kind = None if kind is None else RowKind.parse(kind)
    for line_no, row in iter_objects(path):
        if kind is None:
            kind = detect_kind(row) if isinstance(row, dict) else RowKind.TRIPLET
        yield validate_row(path, line_no, row, kind)


def sniff_kind(path: str) -> RowKind:
    """Schema of a JSONL file, from its first non-empty row."""
    for _, row in iter_objects(path):
        return detect_kind(row) if isinstance(row, dict) else RowKind.TRIPLET
    raise DataFormatError(path, 1, None, "file is empty")
