"""Semantic textual similarity (STS) files: every layout :class:`~embedlight.evaluation.sts.STSEvaluator` reads.

Supported inputs (``format="auto"`` picks one from ``path``):

* ``"stsb"`` -- the STS Benchmark gzip/plain TSV in the sentence-transformers layout,
  header ``split genre dataset year sid score sentence1 sentence2``. Sentences contain
  unbalanced double quotes, so the file is read with ``csv.QUOTE_NONE`` (the default
  quoting silently merges a few hundred rows). ``split`` filters the ``split`` column.
* ``"jsonl"`` -- one ``{"text1": ..., "text2": ..., "score": ...}`` object per line;
  ``sentence1``/``sentence2`` and ``label`` are accepted as aliases.
* ``"semeval"`` -- a SemEval STS 2012-2016 year directory (e.g. ``.../sts12_16_en/STS12``)
  with ``<prefix>.input.<subset>.txt`` (``sentence1<TAB>sentence2[<TAB>extra...]``) and
  the matching ``<prefix>.gs.<subset>.txt`` (one gold score per line, empty = unscored
  pair, skipped). All subsets are pooled into one correlation, as MTEB does; ``split``
  optionally restricts to one subset (e.g. ``"MSRpar"``).
* ``"pairs"`` -- ``sentence1<TAB>sentence2<TAB>score`` TSV or ``sentence1,sentence2,label`` CSV, with or
  without a header (the Chinese sets: STS-B-zh, ATEC, BQ, LCQMC, AFQMC, PAWS-X; read by
  :func:`embedlight.evaluation.loaders.load_pairs`). C-MTEB scores these pair sets as STS.
"""

from __future__ import annotations

import csv
import gzip
import logging
import math
import os
import re
from dataclasses import dataclass
from typing import TextIO

from embedlight.utils.io import iter_records

logger = logging.getLogger(__name__)

__all__ = ["STSData", "load_sts", "resolve_format"]

_FORMATS = ("auto", "stsb", "jsonl", "semeval", "pairs")
_TEXT1_KEYS = ("text1", "sentence1")
_TEXT2_KEYS = ("text2", "sentence2")
_SCORE_KEYS = ("score", "label")
_SEMEVAL_INPUT = re.compile(r"^(?P<prefix>.+)\.input\.(?P<subset>.+)\.txt$")


@dataclass
class STSData:
    """Sentence pairs with gold similarity scores.

    Attributes:
        text1: First sentences.
        text2: Second sentences, aligned with ``text1``.
        scores: Gold scores, aligned with ``text1``.
    """

    text1: list[str]
    text2: list[str]
    scores: list[float]

    def __len__(self) -> int:
        return len(self.scores)


def _open_text(path: str) -> TextIO:
    """Open a UTF-8 text file for reading, transparently decompressing ``.gz``."""
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _parse_float(raw: object, where: str, field: str) -> float:
    """Parse a finite float, raising ValueError that names ``where`` (file:line) and ``field``."""
    if isinstance(raw, bool):
        raise ValueError(f"{where}: field {field!r} must be a number, got {raw!r}")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: field {field!r} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: field {field!r} must be finite, got {raw!r}")
    return value


def _load_stsb(path: str, split: str | None) -> STSData:
    """Read the STS Benchmark TSV (sentence-transformers layout)."""
    required = ("split", "score", "sentence1", "sentence2")
    data = STSData([], [], [])
    splits_seen: dict[str, int] = {}
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(f"{path}:1: header lacks column(s) {missing}; got {header}")
        col = {c: header.index(c) for c in required}
        for row in reader:
            lineno = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path}:{lineno}: expected {len(header)} tab-separated fields, got {len(row)}"
                )
            row_split = row[col["split"]]
            splits_seen[row_split] = splits_seen.get(row_split, 0) + 1
            if split is not None and row_split != split:
                continue
            data.scores.append(_parse_float(row[col["score"]], f"{path}:{lineno}", "score"))
            data.text1.append(row[col["sentence1"]])
            data.text2.append(row[col["sentence2"]])
    if split is not None and not data.scores:
        raise ValueError(f"{path}: no rows with split == {split!r}; available splits: {splits_seen}")
    return data


def _load_jsonl(path: str) -> STSData:
    """Read ``{"text1","text2","score"}`` JSONL (aliases ``sentence1/sentence2``, ``label``; ``.gz`` too)."""

    def pick(obj: dict, keys: tuple[str, ...], where: str) -> object:
        for key in keys:
            if key in obj and obj[key] is not None:
                return obj[key]
        raise ValueError(f"{where}: missing field {keys[0]!r} (or alias {', '.join(map(repr, keys[1:]))})")

    data = STSData([], [], [])
    for lineno, obj in iter_records(path, "STS file"):
        where = f"{path}:{lineno}"
        t1 = pick(obj, _TEXT1_KEYS, where)
        t2 = pick(obj, _TEXT2_KEYS, where)
        for key, value in (("text1", t1), ("text2", t2)):
            if not isinstance(value, str):
                raise ValueError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
        data.text1.append(t1)  # type: ignore[arg-type]
        data.text2.append(t2)  # type: ignore[arg-type]
        data.scores.append(_parse_float(pick(obj, _SCORE_KEYS, where), where, "score"))
    return data


def _load_semeval(path: str, subset: str | None) -> STSData:
    """Read a SemEval STS year directory (``*.input.<subset>.txt`` + ``*.gs.<subset>.txt``)."""
    inputs = []
    for file in sorted(os.listdir(path)):
        m = _SEMEVAL_INPUT.match(file)
        if m and (subset is None or m.group("subset") == subset):
            inputs.append((m.group("prefix"), m.group("subset"), file))
    if not inputs:
        subdirs = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
        what = "*.input.*.txt files" if subset is None else f"*.input.{subset}.txt file"
        hint = f" (subdirectories: {subdirs}; point `path` at one of them)" if subdirs else ""
        raise FileNotFoundError(f"No SemEval STS {what} in {path}{hint}")

    data = STSData([], [], [])
    for prefix, sub, file in inputs:
        input_path = os.path.join(path, file)
        gs_path = os.path.join(path, f"{prefix}.gs.{sub}.txt")
        if not os.path.isfile(gs_path):
            raise FileNotFoundError(f"Gold-score file not found for {input_path}: {gs_path}")
        with open(input_path, encoding="utf-8", newline="") as f:
            input_lines = f.read().splitlines()
        with open(gs_path, encoding="utf-8", newline="") as f:
            gs_lines = f.read().splitlines()
        if len(input_lines) != len(gs_lines):
            raise ValueError(
                f"{input_path} has {len(input_lines)} lines but {gs_path} has {len(gs_lines)}; they must align"
            )
        kept = 0
        for lineno, (pair, gold) in enumerate(zip(input_lines, gs_lines), start=1):
            if not gold.strip():
                continue  # unscored pair
            cols = pair.split("\t")
            if len(cols) < 2:
                raise ValueError(
                    f"{input_path}:{lineno}: expected 'sentence1<TAB>sentence2', got {len(cols)} field(s)"
                )
            data.text1.append(cols[0])
            data.text2.append(cols[1])
            data.scores.append(_parse_float(gold.strip(), f"{gs_path}:{lineno}", "score"))
            kept += 1
        logger.debug("%s: %d scored pairs", input_path, kept)
    return data


def resolve_format(path: str, format: str) -> str:
    """Validate ``format`` and resolve ``"auto"`` from the path (directory, extension)."""
    if format not in _FORMATS:
        raise ValueError(f"Unknown STS format {format!r}; expected one of {_FORMATS}")
    if format != "auto":
        return format
    if os.path.isdir(path):
        return "semeval"
    lower = path.lower()
    if lower.endswith((".jsonl", ".jsonl.gz", ".json")):
        return "jsonl"
    if lower.endswith((".tsv", ".tsv.gz", ".csv.gz", ".gz")):
        return "stsb"
    raise ValueError(f"Cannot infer the STS format of {path}; pass format='stsb', 'jsonl' or 'semeval'")


def load_sts(path: str, split: str | None = None, format: str = "auto") -> STSData:
    """Load STS pairs from any supported layout.

    Args:
        path: File (STS-B TSV, JSONL) or SemEval year directory.
        split: STS-B: value of the ``split`` column (``None`` = all rows). SemEval:
            subset name (``None`` = all subsets). JSONL: ignored (a warning is logged).
        format: ``"auto"``, ``"stsb"``, ``"jsonl"`` or ``"semeval"``.

    Returns:
        The pairs and gold scores.

    Raises:
        FileNotFoundError: If ``path`` (or a gold file) does not exist.
        ValueError: On malformed input or an empty result.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"STS data not found: {path}")
    fmt = resolve_format(path, format)
    if fmt == "semeval":
        if not os.path.isdir(path):
            raise ValueError(f"format='semeval' expects a directory, got file {path}")
        data = _load_semeval(path, split)
    elif fmt == "pairs":
        from embedlight.evaluation.loaders import load_pairs

        pairs = load_pairs(path)
        data = STSData(pairs.text1, pairs.text2, pairs.labels)
    elif fmt == "stsb":
        data = _load_stsb(path, split)
    else:
        if split is not None:
            logger.warning("STS JSONL %s has no splits; ignoring split=%r", path, split)
        data = _load_jsonl(path)
    if len(data) < 2:
        raise ValueError(f"{path}: need at least 2 scored pairs, found {len(data)}")
    return data
