"""Teacher scoring as a library call: add teacher scores (``pos_scores``, ``neg_scores``) to a triplet
JSONL (``embedlight-score`` is a thin Hydra main over :func:`run`).

The output is FlagEmbedding's distillation schema; train on it with ``loss=distill_kl`` or
``loss=infonce_distill`` (see README, "Distillation"). Rows are read, validated (errors name file, line
and field), scored and written ``chunk_rows`` at a time, so the file may be larger than RAM; every
other field of a row is kept as it was. The output appears atomically when complete.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from hydra.utils import instantiate

from embedlight.data.jsonl import RowKind, validate_row
from embedlight.engine.steps import stats_path
from embedlight.utils.io import JsonlWriter, iter_objects
from embedlight.utils.outputs import guard_output, plain, write_summary

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


def _check_output(input_path: str, output_path: str, overwrite: bool) -> None:
    if os.path.abspath(input_path) == os.path.abspath(output_path):
        raise ValueError("score: output must differ from input")
    guard_output(output_path, overwrite)


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
    _check_output(input_path, output_path, overwrite)
    with JsonlWriter(output_path) as out:
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
                out.write({**row, "pos_scores": values[:n_pos], "neg_scores": values[n_pos:]})
            log.info("score: %d rows", out.count)
    return out.count


def run(cfg: Mapping[str, Any], teacher: Any = None) -> dict[str, Any]:
    """Score ``cfg.input`` into ``cfg.output`` with ``cfg.teacher``; returns the summary (also written to
    ``stats_output``, default ``<output>.stats.json``).

    Args:
        cfg: A composed ``score`` config (``teacher``, ``input``, ``output``, ``chunk_rows``, ``overwrite``).
        teacher: A teacher to use instead of building ``cfg.teacher`` (tests inject one).
    """
    overwrite = bool(cfg.get("overwrite", False))
    _check_output(cfg["input"], cfg["output"], overwrite)  # before the teacher is loaded
    guard_output(stats_path(cfg), overwrite)
    t0 = time.perf_counter()
    teacher = teacher if teacher is not None else instantiate(cfg["teacher"])
    n = score_file(teacher, cfg["input"], cfg["output"], int(cfg["chunk_rows"]), overwrite)
    summary = {
        "input": cfg["input"],
        "output": cfg["output"],
        "n_rows": n,
        "seconds": round(time.perf_counter() - t0, 3),
        "settings": plain(cfg),
    }
    return write_summary(stats_path(cfg), summary, f"wrote {n} scored rows to {cfg['output']}")
