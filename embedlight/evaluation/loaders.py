"""Readers for the local evaluation sets (see ``/work/shared/data/README.md`` for the layouts).

* SentEval classification (Conneau & Kiela, 2018): MR, CR, SUBJ, MPQA (one sentence per line, the label
  given by the file), SST2 (``sentence<TAB>label``), SST5 (``label sentence``), TREC
  (``COARSE:fine question``; the coarse label is kept, as in SentEval).
* Sentence pairs with a label: the Chinese sets (ATEC, LCQMC, AFQMC: ``s1<TAB>s2<TAB>label``; PAWS-X: TSV
  with the header ``id sentence1 sentence2 label``; BQ: CSV with a UTF-8 BOM and the header
  ``sentence1,sentence2,label``; STS-B-zh: ``s1<TAB>s2<TAB>score`` with integer scores), MRPC (TSV with the
  header ``Quality #1ID #2ID #1String #2String``) and SNLI (three parallel line files).

Every reader raises ``ValueError`` naming the file, the line and the field of the first bad record.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "KFOLD_TASKS",
    "LabeledTexts",
    "PairData",
    "load_pairs",
    "load_senteval",
    "load_snli",
    "subsample",
]

# SentEval tasks whose label comes from the file name: {task: (folder, {file: label})}.
_FILE_LABELED = {
    "MR": ("MR", {"rt-polarity.neg": "neg", "rt-polarity.pos": "pos"}),
    "CR": ("CR", {"custrev.neg": "neg", "custrev.pos": "pos"}),
    "SUBJ": ("SUBJ", {"subj.objective": "objective", "subj.subjective": "subjective"}),
    "MPQA": ("MPQA", {"mpqa.neg": "neg", "mpqa.pos": "pos"}),
}
# SentEval tasks with official splits: {task: (folder, {split: file})}.
_SPLIT_FILES = {
    "SST2": ("SST/binary", {s: f"sentiment-{s}" for s in ("train", "dev", "test")}),
    "SST5": ("SST/fine", {s: f"sentiment-{s}" for s in ("train", "dev", "test")}),
    "TREC": ("TREC", {"train": "train_5500.label", "test": "TREC_10.label"}),
}
SENTEVAL_TASKS = (*_FILE_LABELED, *_SPLIT_FILES)
KFOLD_TASKS = tuple(_FILE_LABELED)  # no official split: evaluated by k-fold cross-validation


@dataclass
class LabeledTexts:
    """Texts with one class label each (classification, clustering)."""

    texts: list[str]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, idx: list[int] | np.ndarray) -> LabeledTexts:
        """The rows ``idx``, in that order."""
        return LabeledTexts([self.texts[i] for i in idx], [self.labels[i] for i in idx])


@dataclass
class PairData:
    """Sentence pairs with a numeric label (0/1 for pair classification, a score for STS)."""

    text1: list[str]
    text2: list[str]
    labels: list[float]

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, idx: list[int] | np.ndarray) -> PairData:
        """The rows ``idx``, in that order."""
        return PairData(
            [self.text1[i] for i in idx], [self.text2[i] for i in idx], [self.labels[i] for i in idx]
        )


def subsample(n: int, limit: int | None, seed: int = 0) -> np.ndarray:
    """Indices of a seeded random subset of ``limit`` rows out of ``n``, in file order (all when ``limit``
    is None or >= n)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit <= 0:
        raise ValueError(f"limit must be positive, got {limit}")
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _read_lines(path: str) -> list[str]:
    """Lines of a text file without line ends; UTF-8, or Latin-1 for the SentEval files that are not UTF-8."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"evaluation file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.info("%s is not UTF-8; reading it as Latin-1 (as SentEval does)", path)
        text = raw.decode("latin-1")
    return text.splitlines()


def _label(raw: str, path: str, lineno: int, field: str = "label") -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{path}:{lineno}: field {field!r} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}:{lineno}: field {field!r} must be finite, got {raw!r}")
    return value


def _senteval_split_file(path: str, task: str) -> LabeledTexts:
    data = LabeledTexts([], [])
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        if task == "SST2":
            text, sep, label = line.rpartition("\t")
            if not sep or label.strip() not in ("0", "1"):
                raise ValueError(
                    f"{path}:{lineno}: field 'label' must be 0 or 1 after a tab, got {line[-20:]!r}"
                )
        elif task == "SST5":
            label, _, text = line.partition(" ")
            if label not in ("0", "1", "2", "3", "4"):
                raise ValueError(f"{path}:{lineno}: field 'label' must be 0-4, got {label!r}")
        else:  # TREC: "COARSE:fine question"
            head, _, text = line.partition(" ")
            label = head.split(":", 1)[0]
            if ":" not in head or not label.isupper():
                raise ValueError(f"{path}:{lineno}: field 'label' must look like COARSE:fine, got {head!r}")
        if not text.strip():
            raise ValueError(f"{path}:{lineno}: field 'text' is empty")
        data.texts.append(text.strip())
        data.labels.append(label.strip())
    return data


def load_senteval(root: str, task: str, split: str | None = None) -> LabeledTexts:
    """Read one SentEval classification task.

    Args:
        root: The ``senteval_classification`` folder.
        task: ``MR``, ``CR``, ``SUBJ``, ``MPQA`` (no official split), ``SST2``, ``SST5`` or ``TREC``.
        split: For SST2/SST5/TREC: ``train``, ``dev`` (SST only) or ``test``. Must be None for the others.

    Returns:
        The texts and their labels (file order; for MR/CR/SUBJ/MPQA the files in name order).
    """
    if task in _FILE_LABELED:
        if split is not None:
            raise ValueError(f"SentEval {task} has no official split (use k-fold); got split={split!r}")
        folder, files = _FILE_LABELED[task]
        data = LabeledTexts([], [])
        for name, label in sorted(files.items()):
            for line in _read_lines(os.path.join(root, folder, name)):
                if line.strip():  # CR and MPQA have blank lines, skipped as in SentEval
                    data.texts.append(line.strip())
                    data.labels.append(label)
        return data
    if task in _SPLIT_FILES:
        folder, files = _SPLIT_FILES[task]
        if split not in files:
            raise ValueError(f"SentEval {task} splits are {sorted(files)}; got split={split!r}")
        return _senteval_split_file(os.path.join(root, folder, files[split]), task)
    raise ValueError(f"unknown SentEval task {task!r}; expected one of {SENTEVAL_TASKS}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _pair_rows(path: str, format: str) -> list[list[str]]:
    """Rows of a pair file (one per line)."""
    if format == "csv":
        if not os.path.isfile(path):
            raise FileNotFoundError(f"evaluation file not found: {path}")
        with open(path, encoding="utf-8-sig", newline="") as f:
            return list(csv.reader(f))
    return [line.split("\t") for line in _read_lines(path)]


def load_pairs(path: str, format: str = "auto") -> PairData:
    """Read labelled sentence pairs (Chinese pair/STS sets, MRPC).

    A first row whose label column is not a number is a header; columns named ``sentence1``, ``sentence2``
    and ``label`` (or ``score``) are then used, else the last three columns. MRPC (``Quality`` header) uses
    ``#1 String``, ``#2 String`` and ``Quality``.

    Args:
        path: The file.
        format: ``tsv``, ``csv`` or ``auto`` (``csv`` for ``*.csv``, else ``tsv``).

    Returns:
        Pairs with float labels, in file order.

    Raises:
        ValueError: On a row with a wrong number of fields or a non-numeric label (file:line, field).
    """
    if format == "auto":
        format = "csv" if path.lower().endswith(".csv") else "tsv"
    if format not in ("tsv", "csv"):
        raise ValueError(f"pair format must be 'tsv', 'csv' or 'auto', got {format!r}")
    rows = _pair_rows(path, format)
    if not rows:
        raise ValueError(f"{path}: empty file")
    header = [c.strip().lstrip("\ufeff") for c in rows[0]]
    start = 0
    cols = (len(header) - 3, len(header) - 2, len(header) - 1)
    if not _is_number(header[-1]):  # a header row
        start = 1
        if "Quality" in header:  # MRPC
            names = ("#1 String", "#2 String", "Quality")
        else:
            names = ("sentence1", "sentence2", "label" if "label" in header else "score")
        missing = [n for n in names if n not in header]
        if missing:
            raise ValueError(f"{path}:1: header lacks column(s) {missing}; got {header}")
        cols = tuple(header.index(n) for n in names)
    if cols[0] < 0:
        raise ValueError(
            f"{path}:1: expected at least 3 fields (sentence1, sentence2, label), got {len(header)}"
        )
    data = PairData([], [], [])
    for lineno, row in enumerate(rows[start:], start=start + 1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            raise ValueError(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
        data.text1.append(row[cols[0]])
        data.text2.append(row[cols[1]])
        data.labels.append(_label(row[cols[2]].strip(), path, lineno))
    if len(data) < 2:
        raise ValueError(f"{path}: need at least 2 pairs, found {len(data)}")
    return data


def load_snli(root: str, split: str = "test", drop_neutral: bool = True) -> PairData:
    """SNLI from SentEval's parallel files ``s1.<split>``, ``s2.<split>``, ``labels.<split>``.

    Pair classification as in SimCSE/MTEB's SNLI-style sets: entailment = 1, contradiction = 0; neutral
    pairs are dropped (``drop_neutral``) or kept as 0.
    """
    s1 = _read_lines(os.path.join(root, f"s1.{split}"))
    s2 = _read_lines(os.path.join(root, f"s2.{split}"))
    labels_path = os.path.join(root, f"labels.{split}")
    labels = _read_lines(labels_path)
    if not len(s1) == len(s2) == len(labels):
        raise ValueError(
            f"{root}: s1/s2/labels.{split} have {len(s1)}/{len(s2)}/{len(labels)} lines; they must align"
        )
    data = PairData([], [], [])
    for lineno, (a, b, lab) in enumerate(zip(s1, s2, labels), start=1):
        lab = lab.strip()
        if lab not in ("entailment", "neutral", "contradiction"):
            raise ValueError(
                f"{labels_path}:{lineno}: field 'label' must be entailment/neutral/contradiction, got {lab!r}"
            )
        if lab == "neutral" and drop_neutral:
            continue
        data.text1.append(a.strip())
        data.text2.append(b.strip())
        data.labels.append(1.0 if lab == "entailment" else 0.0)
    return data
