"""Nearest-neighbour search with faiss: exact (flat) or approximate (IVF, IVF-PQ, HNSW) inner product,
on the GPU when faiss-gpu and CUDA are present, built from (memmapped) embeddings in chunks."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

KINDS = ("flat", "ivf", "ivfpq", "hnsw")


def use_gpu(device: str = "auto") -> bool:
    """True when faiss was built with GPU support and a CUDA device is visible (``device=auto``)."""
    if device == "cpu":
        return False
    import faiss

    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        cuda = False
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if device == "gpu" and not (cuda and gpus):
        raise RuntimeError("index.device=gpu needs faiss-gpu and a CUDA device")
    return bool(cuda and gpus)


def build_index(
    emb: np.ndarray,
    kind: str = "flat",
    *,
    nlist: int | None = None,
    nprobe: int = 32,
    pq_m: int = 16,
    hnsw_m: int = 32,
    ef_search: int = 256,
    chunk_size: int = 65536,
    train_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
) -> Any:
    """An inner-product faiss index over ``emb`` (N, D), added in chunks (``emb`` may be a memmap).

    Args:
        emb: Corpus embeddings, float32 or float16 (converted chunk by chunk).
        kind: ``flat`` (exact), ``ivf`` (inverted lists), ``ivfpq`` (+ product quantisation: memory
            N * pq_m bytes, for corpora whose vectors do not fit in RAM), or ``hnsw`` (graph).
        nlist: IVF lists (default ``4 * sqrt(N)``).
        nprobe: IVF lists visited per query.
        pq_m: PQ sub-quantisers (must divide D).
        hnsw_m: HNSW neighbours per node.
        ef_search: HNSW search breadth.
        chunk_size: Rows added per call.
        train_size: Vectors sampled to train IVF/PQ (default ``min(N, 64 * nlist)``).
        device: ``auto`` (GPU if possible), ``cpu`` or ``gpu``.
        seed: Seed of the training sample.
    """
    import faiss

    if kind not in KINDS:
        raise ValueError(f"index.kind must be one of {KINDS}, got {kind!r}")
    n, d = emb.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
    else:
        nlist = int(nlist or max(1, min(n // 39, int(4 * np.sqrt(n)))))
        quantizer = faiss.IndexFlatIP(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            if d % pq_m:
                raise ValueError(f"index.pq_m={pq_m} must divide the embedding size {d}")
            index = faiss.IndexIVFPQ(quantizer, d, nlist, pq_m, 8, faiss.METRIC_INNER_PRODUCT)
        index.nprobe = min(nprobe, nlist)
        want = min(n, train_size or 64 * nlist)
        rows = np.sort(np.random.default_rng(seed).choice(n, size=want, replace=False))
        index.train(np.ascontiguousarray(emb[rows], dtype=np.float32))
    if kind != "hnsw" and use_gpu(device):
        log.info("faiss: index on %d GPU(s)", faiss.get_num_gpus())
        index = faiss.index_cpu_to_all_gpus(index)
    for start in range(0, n, chunk_size):
        index.add(np.ascontiguousarray(emb[start : start + chunk_size], dtype=np.float32))
    return index


def search(index: Any, queries: np.ndarray, k: int, chunk_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ``(scores, ids)`` per query, (Q, k) each, best first; ids are -1 where fewer exist."""
    k = min(k, index.ntotal)
    scores = np.empty((len(queries), k), dtype=np.float32)
    ids = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk_size):
        q = np.ascontiguousarray(queries[start : start + chunk_size], dtype=np.float32)
        scores[start : start + len(q)], ids[start : start + len(q)] = index.search(q, k)
    return scores, ids
