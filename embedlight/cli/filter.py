"""``embedlight-filter``: drop noisy training pairs by a reference model's score (C-Pack) or by
consistency (E5: the positive must rank in the top-k among candidates).

Examples:
    embedlight-filter model=all-MiniLM-L6-v2 input=pairs.jsonl output=clean.jsonl threshold=0.43
    embedlight-filter model=outputs/run/export input=pairs.jsonl output=clean.jsonl top_k=2 corpus=corpus.jsonl

The dropped rows go to ``<output>.dropped.jsonl`` with their ``reason``; counts are printed and saved.
See :mod:`embedlight.engine.filtering`.
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from embedlight.engine.corpus import (
    check_output,
    pool_corpus,
    read_corpus,
    read_triplets,
    unique,
    write_jsonl,
)
from embedlight.engine.filtering import filter_rows
from embedlight.engine.mining.miner import positive_embeddings
from embedlight.engine.steps import corpus_embeddings, encode_queries
from embedlight.models.load import load_model
from embedlight.utils.io import write_json

log = logging.getLogger("embedlight.cli.filter")


def run_filter(cfg: DictConfig, model: Any = None) -> dict[str, Any]:
    """Filter ``cfg.input`` into ``cfg.output`` (+ dropped rows); ``model`` may be injected (tests)."""
    dropped_path = cfg.get("dropped_output") or f"{cfg.output}.dropped.jsonl"
    stats_path = cfg.get("stats_output") or f"{cfg.output}.stats.json"
    for path in (cfg.output, dropped_path):
        check_output(path, cfg.get("overwrite", False))
    rows = read_triplets(cfg.input)
    model = model or load_model(cfg.model, cfg.get("device"), cfg.get("trust_remote_code", False))
    corpus, corpus_emb = [], None
    if cfg.get("top_k") is not None:
        corpus = unique(read_corpus(cfg.corpus)) if cfg.get("corpus") else pool_corpus(rows)
        corpus_emb = corpus_embeddings(cfg, model, corpus)
    query_emb = encode_queries(cfg, model, rows)
    pos_emb = positive_embeddings(
        model, rows, corpus, corpus_emb, cfg.get("doc_instruction"), int(cfg.batch_size)
    )
    kept, dropped, counts = filter_rows(
        rows,
        query_emb,
        pos_emb,
        threshold=cfg.get("threshold"),
        top_k=cfg.get("top_k"),
        corpus=corpus,
        corpus_emb=corpus_emb,
        index_cfg=OmegaConf.to_container(cfg.index, resolve=True) if cfg.get("index") else None,
    )
    write_jsonl(cfg.output, kept)
    write_jsonl(dropped_path, dropped)
    summary = {
        "input": cfg.input,
        "model": model.name,
        "n_rows": len(rows),
        "kept": len(kept),
        "dropped": len(dropped),
        "counts": dict(counts),
        "settings": OmegaConf.to_container(cfg, resolve=True),
    }
    write_json(stats_path, summary)
    why = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k != "kept") or "none"
    print(f"kept {len(kept)} of {len(rows)} rows -> {cfg.output}\ndropped: {why} -> {dropped_path}")
    return summary


@hydra.main(config_path="../conf", config_name="filter", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    run_filter(cfg)


if __name__ == "__main__":
    main()
