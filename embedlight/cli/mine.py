"""``embedlight-mine``: mine hard negatives for a FlagEmbedding-schema training file with any model.

Examples:
    embedlight-mine model=all-MiniLM-L6-v2 input=train.jsonl output=train.mined.jsonl
    embedlight-mine model=outputs/run/export input=train.jsonl corpus=corpus.jsonl output=mined.jsonl \
        negatives=7 range_start=10 range_end=100 relative_margin=0.95 index.kind=hnsw
    embedlight-mine model=outputs/run/checkpoints/last.ckpt input=train.jsonl output=mined.jsonl \
        store.path=cache/corpus.f16 store.dtype=float16

See :mod:`embedlight.engine.mining.negatives` for the recipe and its sources (C-Pack, Arctic-Embed).
"""

from __future__ import annotations

import logging
import resource
import time
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from embedlight.engine.corpus import (
    check_output,
    pool_corpus,
    read_corpus,
    read_triplets,
    unique,
    write_jsonl,
)
from embedlight.engine.mining.miner import MineSettings, mine_negatives, positive_embeddings
from embedlight.engine.mining.negatives import FalseNegativeGuard
from embedlight.engine.mining.search import build_index
from embedlight.engine.steps import corpus_embeddings, encode_queries
from embedlight.models.load import load_model
from embedlight.utils.io import write_json

log = logging.getLogger("embedlight.cli.mine")


def peak_rss_mib() -> float:
    """Peak resident memory of this process (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settings_from(cfg: DictConfig) -> MineSettings:
    """The sampling settings of a mine config."""
    rescore = cfg.get("rescore") or {}
    return MineSettings(
        negatives=int(cfg.negatives),
        range_start=int(cfg.range_start),
        range_end=int(cfg.range_end),
        guard=FalseNegativeGuard(cfg.get("relative_margin"), cfg.get("max_score")),
        seed=int(cfg.seed),
        rescore_guard=FalseNegativeGuard(rescore.get("relative_margin"), rescore.get("max_score")),
    )


def mine(cfg: DictConfig, model: Any = None) -> dict[str, Any]:
    """Run the mining described by ``cfg``; ``model`` (a LoadedModel) may be injected (tests)."""
    stats_path = cfg.get("stats_output") or f"{cfg.output}.stats.json"
    check_output(cfg.output, cfg.get("overwrite", False))
    settings = settings_from(cfg)
    t0 = time.perf_counter()
    rows = read_triplets(cfg.input)
    corpus = unique(read_corpus(cfg.corpus)) if cfg.get("corpus") else pool_corpus(rows)
    model = model or load_model(cfg.model, cfg.get("device"), cfg.get("trust_remote_code", False))
    timings: dict[str, float] = {"load": time.perf_counter() - t0}
    log.info("mine: %d rows, corpus of %d unique texts, model %s", len(rows), len(corpus), model.name)

    t = time.perf_counter()
    corpus_emb = corpus_embeddings(cfg, model, corpus)
    timings["encode_corpus"] = time.perf_counter() - t

    t = time.perf_counter()
    query_emb = encode_queries(cfg, model, rows)
    pos_emb = positive_embeddings(
        model, rows, corpus, corpus_emb, cfg.get("doc_instruction"), int(cfg.batch_size)
    )
    timings["encode_queries"] = time.perf_counter() - t

    t = time.perf_counter()
    index_cfg = OmegaConf.to_container(cfg.index, resolve=True) if cfg.get("index") else {}
    index = build_index(corpus_emb, **index_cfg)
    timings["index"] = time.perf_counter() - t

    t = time.perf_counter()
    rescorer = instantiate(cfg.rescore.scorer) if cfg.get("rescore") else None
    out, counts = mine_negatives(
        rows, corpus, corpus_emb, query_emb, pos_emb, settings, index=index, rescorer=rescorer
    )
    timings["search_and_sample"] = time.perf_counter() - t
    write_jsonl(cfg.output, out)
    timings["total"] = time.perf_counter() - t0
    summary = {
        "input": cfg.input,
        "corpus": cfg.get("corpus") or "pool of the input's pos/neg texts",
        "output": cfg.output,
        "model": model.name,
        "n_rows": len(rows),
        "n_corpus": len(corpus),
        "counts": dict(counts),
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "corpus_docs_per_s": round(len(corpus) / max(timings["encode_corpus"], 1e-9), 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "settings": OmegaConf.to_container(cfg, resolve=True),
    }
    write_json(stats_path, summary)
    print(
        f"mined {counts['negatives']} negatives for {counts['rows']} rows -> {cfg.output}\n"
        f"dropped candidates: "
        + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k not in ("rows", "negatives"))
    )
    return summary


@hydra.main(config_path="../conf", config_name="mine", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    mine(cfg)


if __name__ == "__main__":
    main()
