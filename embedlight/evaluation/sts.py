"""Semantic textual similarity (STS) evaluation.

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

The metric is the Spearman rank correlation (in ``[-1, 1]``, not multiplied by 100)
between the cosine similarity of the two embeddings and the gold score.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import torch
import torch.nn.functional as F

from embedlight.evaluation.base import Evaluator, TextEncoder

logger = logging.getLogger(__name__)

__all__ = ["STSData", "STSEvaluator", "average_ranks", "load_sts", "spearman"]

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


def average_ranks(values: np.ndarray | list[float]) -> np.ndarray:
    """1-based ranks where tied values share the mean of their ranks.

    Args:
        values: ``(N,)`` values.

    Returns:
        ``(N,)`` float64 ranks, e.g. ``[10, 20, 20, 30] -> [1, 2.5, 2.5, 4]``.
    """
    a = np.asarray(values, dtype=np.float64).ravel()  # (N,)
    order = np.argsort(a, kind="mergesort")  # (N,)
    sorted_a = a[order]  # (N,)
    new_run = np.empty(a.shape[0], dtype=bool)  # (N,) True at the first element of each tie group
    new_run[:1] = True
    new_run[1:] = sorted_a[1:] != sorted_a[:-1]
    run_id = np.cumsum(new_run) - 1  # (N,) tie-group index of each sorted position
    starts = np.flatnonzero(new_run)  # (G,) 0-based first position of each group
    ends = np.append(starts[1:], a.shape[0])  # (G,) exclusive end of each group
    group_rank = (starts + ends + 1) / 2.0  # (G,) mean of 1-based ranks starts+1 .. ends
    ranks = np.empty(a.shape[0], dtype=np.float64)  # (N,)
    ranks[order] = group_rank[run_id]
    return ranks


def spearman(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> float:
    """Spearman rank correlation with average ranks for ties (equals ``scipy.stats.spearmanr``).

    Args:
        x: ``(N,)`` values.
        y: ``(N,)`` values.

    Returns:
        The Pearson correlation of the average ranks, or ``nan`` if either input is constant.

    Raises:
        ValueError: On length mismatch, fewer than 2 values, or non-finite values.
    """
    xa = np.asarray(x, dtype=np.float64).ravel()  # (N,)
    ya = np.asarray(y, dtype=np.float64).ravel()  # (N,)
    if xa.shape != ya.shape:
        raise ValueError(f"spearman: length mismatch {xa.shape[0]} vs {ya.shape[0]}")
    if xa.shape[0] < 2:
        raise ValueError("spearman: need at least 2 values")
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise ValueError("spearman: inputs contain NaN or inf")
    rx = average_ranks(xa)  # (N,)
    ry = average_ranks(ya)  # (N,)
    rx -= rx.mean()
    ry -= ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom == 0.0:
        return float("nan")
    return float(rx @ ry) / denom


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
    """Read ``{"text1","text2","score"}`` JSONL (aliases ``sentence1/sentence2``, ``label``)."""

    def pick(obj: dict, keys: tuple[str, ...], where: str) -> object:
        for key in keys:
            if key in obj and obj[key] is not None:
                return obj[key]
        raise ValueError(f"{where}: missing field {keys[0]!r} (or alias {', '.join(map(repr, keys[1:]))})")

    data = STSData([], [], [])
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: invalid JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(obj).__name__}")
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


def _resolve_format(path: str, format: str) -> str:
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
    fmt = _resolve_format(path, format)
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


def _default_name(path: str, split: str | None) -> str:
    """Metric prefix from the path's basename without extensions, plus ``-{split}``."""
    base = os.path.basename(os.path.normpath(path))
    for ext in (".gz", ".tsv", ".jsonl", ".json", ".csv", ".txt"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    return f"{base}-{split}" if split else base


class STSEvaluator(Evaluator):
    """Spearman correlation between cosine similarity and gold STS scores.

    Both sentences of a pair are embedded with ``kind="query"`` and the same
    ``instruction`` (STS is symmetric). Each distinct sentence is encoded once.
    Data is loaded lazily on the first call and cached.

    Args:
        path: STS-B TSV(.gz), JSONL file, or SemEval year directory (see module docs).
        split: STS-B split (e.g. ``"test"``; ``None`` = all rows) or SemEval subset.
        name: Metric prefix; defaults to the file/directory name without extensions,
            suffixed with ``-{split}`` when a split is given (e.g. ``"stsbenchmark-test"``).
        format: ``"auto"``, ``"stsb"``, ``"jsonl"`` or ``"semeval"``.
        instruction: Passed to ``encoder.encode`` (``None`` = encoder default, ``""`` = none).
        max_pairs: Evaluate only ``max_pairs`` pairs: the first ones, or a random subset when ``seed`` is set.
        seed: Seed of the random subset drawn when ``max_pairs`` is set (None: the first pairs).
        warning: A caveat about this set, logged as a warning when it is loaded (e.g. a train/test overlap).
        batch_size: Encoding batch size.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: On an unknown format.
    """

    def __init__(
        self,
        path: str,
        split: str | None = None,
        name: str | None = None,
        format: str = "auto",
        instruction: str | None = None,
        max_pairs: int | None = None,
        batch_size: int = 64,
        seed: int | None = None,
        warning: str | None = None,
    ) -> None:
        self.path = os.path.abspath(os.path.expanduser(str(path)))
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"STS data not found: {self.path}")
        self.split = split
        self.format = _resolve_format(self.path, format)
        self.name = name or _default_name(self.path, split)
        self.instruction = instruction
        if max_pairs is not None and max_pairs < 2:
            raise ValueError(f"max_pairs must be at least 2, got {max_pairs}")
        self.max_pairs = max_pairs
        self.seed = seed
        self.warning = warning
        self.batch_size = batch_size
        self._data: STSData | None = None

    @property
    def data(self) -> STSData:
        """The loaded pairs (read from disk on first access, truncated to ``max_pairs``)."""
        if self._data is None:
            data = load_sts(self.path, self.split, self.format)
            if self.max_pairs is not None and self.seed is not None:
                from embedlight.evaluation.loaders import subsample

                idx = subsample(len(data), self.max_pairs, self.seed)
                data = STSData(
                    [data.text1[i] for i in idx], [data.text2[i] for i in idx], [data.scores[i] for i in idx]
                )
            elif self.max_pairs is not None:
                n = self.max_pairs
                data = STSData(data.text1[:n], data.text2[:n], data.scores[:n])
            self._data = data
            logger.info("Loaded %s: %d pairs", self.name, len(data))
            if self.warning:
                logger.warning("%s: %s", self.name, self.warning)
        return self._data

    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """Embed the pairs and correlate cosine similarity with the gold scores.

        Args:
            encoder: The model to evaluate.

        Returns:
            ``{"{name}/spearman": rho}`` with ``rho`` in ``[-1, 1]`` (``nan`` if constant).
        """
        data = self.data
        unique = list(dict.fromkeys(data.text1 + data.text2))
        index = {text: i for i, text in enumerate(unique)}
        emb = encoder.encode(
            unique, kind="query", instruction=self.instruction, batch_size=self.batch_size
        )  # (U, D)
        emb = F.normalize(emb.detach().float().cpu(), dim=-1)  # (U, D)
        i1 = torch.tensor([index[t] for t in data.text1], dtype=torch.long)  # (P,)
        i2 = torch.tensor([index[t] for t in data.text2], dtype=torch.long)  # (P,)
        cos = (emb[i1] * emb[i2]).sum(dim=-1)  # (P,)
        rho = spearman(cos.double().numpy(), np.asarray(data.scores, dtype=np.float64))
        if math.isnan(rho):
            logger.warning("%s: Spearman is undefined (constant similarities or gold scores)", self.name)
        return {f"{self.name}/spearman": rho}
