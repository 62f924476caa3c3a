"""Helpers shared by the evaluators: embed each distinct text once, L2-normalised."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from embedlight.evaluation.base import TextEncoder

__all__ = ["embed_normalized", "check_limit"]


def embed_normalized(
    encoder: TextEncoder,
    texts: Sequence[str],
    *,
    kind: str = "query",
    instruction: str | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Embed ``texts`` (each distinct text once) and L2-normalise.

    Returns:
        ``(len(texts), D)`` float32 array; row ``i`` embeds ``texts[i]``.
    """
    unique = list(dict.fromkeys(texts))
    index = {t: i for i, t in enumerate(unique)}
    emb = encoder.encode(unique, kind=kind, instruction=instruction, batch_size=batch_size)  # (U, D)
    emb = F.normalize(torch.as_tensor(emb).detach().float().cpu(), dim=-1)  # (U, D)
    rows = torch.tensor([index[t] for t in texts], dtype=torch.long)  # (N,)
    return emb[rows].numpy()  # (N, D)


def check_limit(limit: int | None, minimum: int = 2) -> int | None:
    """Validate a ``limit`` (max samples) option."""
    if limit is not None and limit < minimum:
        raise ValueError(f"limit must be at least {minimum}, got {limit}")
    return limit
