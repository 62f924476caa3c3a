"""Encode a corpus into an on-disk memmap in chunks: bounded RAM, resumable after a crash."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from embedlight.engine.encode import encode_prefixed
from embedlight.utils.io import write_json

log = logging.getLogger(__name__)

DTYPES = {"float32": np.float32, "float16": np.float16}


def fingerprint(texts: Sequence[str], *parts: Any) -> str:
    """SHA-1 of the texts (in order) and of ``parts`` (model name, prefix, ...)."""
    h = hashlib.sha1()
    for p in parts:
        h.update(repr(p).encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def encode_to_memmap(
    encoder: Any,
    texts: Sequence[str],
    path: str,
    *,
    prefix: str = "",
    kind: str = "document",
    dtype: str = "float32",
    chunk_size: int = 8192,
    batch_size: int = 64,
    key: str = "",
    show_progress: bool = True,
) -> np.memmap:
    """Write the embeddings of ``texts`` to ``path`` (a raw ``(N, D)`` memmap) chunk by chunk.

    A sidecar ``path + ".json"`` records the shape, dtype, a fingerprint of texts + ``key`` + prefix, and
    how many rows are done; a rerun with the same inputs resumes after the last finished chunk, and
    one with different inputs starts over. Only one chunk of embeddings is in RAM at a time.

    Args:
        encoder: Has ``encode(texts, kind=, instruction=, batch_size=, show_progress=)``.
        texts: The corpus.
        path: Memmap file.
        prefix: Instruction prefix for every text ("" = raw documents).
        kind: ``document`` or ``query``.
        dtype: ``float32`` or ``float16`` (half the disk, scores rounded to ~1e-3).
        chunk_size: Texts per chunk (the unit of progress and of resume).
        batch_size: Texts per forward pass.
        key: Identifies the model in the fingerprint.
        show_progress: Progress bar over the chunks.

    Returns:
        The read-only memmap.
    """
    if dtype not in DTYPES:
        raise ValueError(f"store dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    meta_path = path + ".json"
    fp = fingerprint(texts, key, prefix, kind)
    meta: dict[str, Any] = {}
    if os.path.isfile(meta_path) and os.path.isfile(path):
        with open(meta_path, encoding="utf-8") as fh:
            meta = json.load(fh)
        if meta.get("fingerprint") != fp or meta.get("dtype") != dtype:
            log.info("%s: inputs changed, encoding again", path)
            meta = {}
    done = int(meta.get("done", 0))
    if done:
        log.info("%s: resuming at row %d of %d", path, done, len(texts))
    mm: np.memmap | None = None
    if meta:
        mm = np.memmap(path, dtype=DTYPES[dtype], mode="r+", shape=(meta["n"], meta["dim"]))
    starts = range(done, len(texts), chunk_size)
    for start in tqdm(starts, desc=f"encode {kind} chunks", disable=not show_progress):
        chunk = texts[start : start + chunk_size]
        emb = encode_prefixed(encoder, chunk, [prefix] * len(chunk), kind, batch_size)  # (c, D)
        if not np.isfinite(emb).all():
            raise FloatingPointError(f"non-finite embeddings in rows {start}..{start + len(chunk)}")
        if mm is None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            mm = np.memmap(path, dtype=DTYPES[dtype], mode="w+", shape=(len(texts), emb.shape[1]))
            meta = {"n": len(texts), "dim": int(emb.shape[1]), "dtype": dtype, "fingerprint": fp}
        mm[start : start + len(chunk)] = emb
        mm.flush()
        meta["done"] = start + len(chunk)
        write_json(meta_path, meta)
    if mm is None:  # nothing left to do (or an empty corpus)
        if not meta:
            raise ValueError("empty corpus")
    del mm
    return np.memmap(path, dtype=DTYPES[dtype], mode="r", shape=(meta["n"], meta["dim"]))
