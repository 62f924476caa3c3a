"""``embedlight-score``: add teacher scores (``pos_scores``, ``neg_scores``) to a triplet JSONL.

The output is FlagEmbedding's distillation schema; train on it with ``loss=distill_kl`` or
``loss=infonce_distill`` (see README, "Distillation").

Examples:
    embedlight-score input=train.jsonl output=train.scored.jsonl                    # bi-encoder teacher
    embedlight-score teacher=cross_encoder teacher.model=/models/bge-reranker-base \\
        input=train.jsonl output=train.scored.jsonl

Rows are read, validated (errors name file, line and field), scored and written ``chunk_rows`` at a
time, so the file may be larger than RAM; every other field of a row is kept as it was. The output
appears atomically when complete, and an existing output is never overwritten unless
``overwrite=true``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from typing import Any

from embedlight.data.jsonl import RowKind, validate_row
from embedlight.utils.io import iter_objects

log = logging.getLogger(__name__)


def _chunks(path: str, size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    for line_no, raw in iter_objects(path):
        validate_row(path, line_no, raw, RowKind.TRIPLET)
        chunk.append((line_no, raw))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def score_file(
    teacher: Any, input_path: str, output_path: str, chunk_rows: int = 1024, overwrite: bool = False
) -> int:
    """Write ``input_path``'s rows with teacher scores to ``output_path``; returns the row count.

    Args:
        teacher: Object with ``score(queries, docs) -> list[float]`` (see :mod:`embedlight.engine.teachers`).
        input_path: Triplet JSONL (``query``, ``pos``, ``neg``).
        output_path: Destination; refused if it exists and ``overwrite`` is false.
        chunk_rows: Rows scored per teacher call.
        overwrite: Replace an existing output.
    """
    if os.path.abspath(input_path) == os.path.abspath(output_path):
        raise ValueError("score: output must differ from input")
    if os.path.exists(output_path) and not overwrite:
        raise FileExistsError(f"score: {output_path} exists; pass overwrite=true to replace it")
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    tmp = output_path + ".tmp"
    count = 0
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            for chunk in _chunks(input_path, chunk_rows):
                queries, docs = [], []
                for _, row in chunk:
                    for doc in [*row["pos"], *(row.get("neg") or [])]:
                        queries.append(row["query"])
                        docs.append(doc)
                scores = teacher.score(queries, docs)
                if len(scores) != len(docs):
                    raise RuntimeError(f"teacher returned {len(scores)} scores for {len(docs)} pairs")
                at = 0
                for line_no, row in chunk:
                    n_pos, n_neg = len(row["pos"]), len(row.get("neg") or [])
                    values = [float(s) for s in scores[at : at + n_pos + n_neg]]
                    at += n_pos + n_neg
                    if not all(math.isfinite(v) for v in values):
                        raise ValueError(f"{input_path}:{line_no}: the teacher gave a non-finite score")
                    row = {**row, "pos_scores": values[:n_pos], "neg_scores": values[n_pos:]}
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    count += 1
                log.info("score: %d rows", count)
        os.replace(tmp, output_path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return count
