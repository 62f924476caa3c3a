"""Mining as a library call: ``run(cfg)`` mines hard negatives for a FlagEmbedding-schema training file
(``embedlight-mine`` is a thin Hydra main over it; the settings are ``conf/mine.yaml``'s).

See :mod:`embedlight.engine.mining.negatives` for the recipe and its sources (C-Pack, Arctic-Embed).
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate

from embedlight.engine.corpus import read_triplets, write_jsonl
from embedlight.engine.mining.miner import MineSettings, mine_negatives, positive_embeddings
from embedlight.engine.mining.negatives import FalseNegativeGuard
from embedlight.engine.mining.search import build_index
from embedlight.engine.steps import (
    configured_corpus,
    configured_model,
    corpus_embeddings,
    encode_queries,
    stats_path,
)
from embedlight.models.load import LoadedModel
from embedlight.utils.outputs import guard_output, plain, write_summary

log = logging.getLogger(__name__)


def peak_rss_mib() -> float:
    """Peak resident memory of this process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settings_from(cfg: Mapping[str, Any]) -> MineSettings:
    """The sampling settings of a mine config."""
    rescore = cfg.get("rescore") or {}
    return MineSettings(
        negatives=int(cfg["negatives"]),
        range_start=int(cfg["range_start"]),
        range_end=int(cfg["range_end"]),
        guard=FalseNegativeGuard(cfg.get("relative_margin"), cfg.get("max_score")),
        seed=int(cfg["seed"]),
        rescore_guard=FalseNegativeGuard(rescore.get("relative_margin"), rescore.get("max_score")),
    )


def run(cfg: Mapping[str, Any], model: LoadedModel | None = None) -> dict[str, Any]:
    """Mine as ``cfg`` says; returns the summary (also written to ``<output>.stats.json``).

    Args:
        cfg: A composed ``mine`` config (``model``, ``input``, ``output``, ``corpus``, ...).
        model: A loaded model to use instead of ``cfg.model`` (tests inject fakes).
    """
    for path in (cfg["output"], stats_path(cfg)):
        guard_output(path, bool(cfg.get("overwrite", False)))
    mine_settings = settings_from(cfg)
    t0 = time.perf_counter()
    rows = read_triplets(cfg["input"])
    corpus = configured_corpus(cfg, rows)
    model = configured_model(cfg, model)
    timings: dict[str, float] = {"load": time.perf_counter() - t0}
    log.info("mine: %d rows, corpus of %d unique texts, model %s", len(rows), len(corpus), model.name)

    t = time.perf_counter()
    corpus_emb = corpus_embeddings(cfg, model, corpus)
    timings["encode_corpus"] = time.perf_counter() - t

    t = time.perf_counter()
    query_emb = encode_queries(cfg, model, rows)
    pos_emb = positive_embeddings(
        model, rows, corpus, corpus_emb, cfg.get("doc_instruction"), int(cfg["batch_size"])
    )
    timings["encode_queries"] = time.perf_counter() - t

    t = time.perf_counter()
    index = build_index(corpus_emb, **dict(plain(cfg.get("index") or {})))
    timings["index"] = time.perf_counter() - t

    t = time.perf_counter()
    rescorer = instantiate(cfg["rescore"]["scorer"]) if cfg.get("rescore") else None
    out, counts = mine_negatives(
        rows, corpus, corpus_emb, query_emb, pos_emb, mine_settings, index=index, rescorer=rescorer
    )
    timings["search_and_sample"] = time.perf_counter() - t
    write_jsonl(cfg["output"], out)
    timings["total"] = time.perf_counter() - t0
    summary = {
        "input": cfg["input"],
        "corpus": cfg.get("corpus") or "pool of the input's pos/neg texts",
        "output": cfg["output"],
        "model": model.name,
        "n_rows": len(rows),
        "n_corpus": len(corpus),
        "counts": dict(counts),
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "corpus_docs_per_s": round(len(corpus) / max(timings["encode_corpus"], 1e-9), 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "settings": plain(cfg),
    }
    dropped = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k not in ("rows", "negatives"))
    return write_summary(
        stats_path(cfg),
        summary,
        [
            f"mined {counts['negatives']} negatives for {counts['rows']} rows -> {cfg['output']}",
            f"dropped candidates: {dropped}",
        ],
    )
