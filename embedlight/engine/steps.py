"""Config-driven steps shared by ``embedlight-mine`` and ``embedlight-filter``: load the model and the
rows, encode queries and corpus, and name the summary file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from embedlight.engine.corpus import pool_corpus, read_corpus, unique
from embedlight.engine.encode import encode_prefixed, query_prefixes
from embedlight.engine.mining.miner import encode_corpus
from embedlight.models.load import LoadedModel, load_model


def configured_model(cfg: Mapping[str, Any], model: LoadedModel | None = None) -> LoadedModel:
    """``model`` if given (tests inject one), else ``cfg.model`` loaded by :func:`~embedlight.models.load.load_model`."""
    if model is not None:
        return model
    return load_model(cfg["model"], cfg.get("device"), bool(cfg.get("trust_remote_code", False)))


def configured_corpus(cfg: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The candidates: ``cfg.corpus`` without duplicates, or every pos/neg text of the rows."""
    return unique(read_corpus(cfg["corpus"])) if cfg.get("corpus") else pool_corpus(rows)


def stats_path(cfg: Mapping[str, Any]) -> str:
    """Where the summary goes: ``stats_output``, default ``<output>.stats.json``."""
    return cfg.get("stats_output") or f"{cfg['output']}.stats.json"


def encode_queries(
    cfg: Mapping[str, Any], model: LoadedModel, rows: Sequence[Mapping[str, Any]]
) -> np.ndarray:
    """Query embeddings (Q, D) with the instruction / row prompt / ICL prefix the model trains with."""
    icl = cfg.get("icl") or {}
    prefixes, texts = query_prefixes(
        rows,
        model,
        cfg.get("query_instruction"),
        cfg.get("instruction_fields"),
        bool(cfg.get("use_row_prompt", True)),
        icl.get("task"),
        icl.get("examples"),
    )
    return encode_prefixed(model.encoder, texts, prefixes, "query", int(cfg.get("batch_size", 64)))


def corpus_embeddings(cfg: Mapping[str, Any], model: LoadedModel, corpus: Sequence[str]) -> np.ndarray:
    """Corpus embeddings (N, D), in RAM or in the configured resumable memmap (``store.path``)."""
    store = cfg.get("store") or {}
    return encode_corpus(
        model,
        corpus,
        doc_prefix=cfg.get("doc_instruction"),
        store_path=store.get("path"),
        store_dtype=store.get("dtype", "float32"),
        chunk_size=int(store.get("chunk_size", 8192)),
        batch_size=int(cfg.get("batch_size", 64)),
        show_progress=bool(cfg.get("show_progress", True)),
    )
