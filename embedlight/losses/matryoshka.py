"""Matryoshka representation learning: one loss on nested prefixes of the embedding.

Reference: Kusupati et al., 2022, "Matryoshka Representation Learning". The first ``d`` coordinates
of the embedding are trained to be an embedding on their own, for every ``d`` in ``dims``, so that a
user can truncate the vector (and re-normalise it) at inference.

Normalisation: the wrapper receives the Embedder's output, which is L2-normalised over the *full*
vector when ``embedder.normalize=true``. A prefix of a unit vector is not a unit vector, so with
``normalize=true`` (the default) every prefix is re-normalised before the inner loss. Since
``normalize(prefix(x / |x|)) == normalize(prefix(x))``, the loss sees exactly the vectors that
truncate-then-normalise inference produces, whether or not the Embedder normalised first. With
``embedder.normalize=false`` (dot-product models) set ``loss.normalize=false`` too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from embedlight.losses.fields import batch_fields
from embedlight.registry import register

HALVINGS = (1, 2, 4, 8)  # default prefixes: the full size D, D/2, D/4, D/8


@register("loss", "matryoshka")
class MatryoshkaLoss(nn.Module):
    """Weighted sum of an inner loss over nested prefixes: ``sum_k w_k * inner(q[:, :d_k], d[:, :d_k])``.

    Args:
        inner: Any registered loss (``infonce``, ``cosent``, ...), composed by Hydra
            (``loss=matryoshka_infonce`` or ``loss=matryoshka loss.inner={_target_: ...}``), or its
            config (a mapping with ``_target_``), which is built here with ``inner_settings``.
            Null: ``infonce`` built with ``inner_settings``.
        dims: Prefix sizes, e.g. ``[384, 256, 128, 64]``; each at most the embedding size. The full
            size must be listed to train the full vector. Null: ``D, D/2, D/4, D/8``.
        weights: One weight per dim (null: all 1, as sentence-transformers' ``MatryoshkaLoss``);
            needs explicit ``dims``.
        normalize: L2-normalise each prefix before the inner loss (cosine models; see module doc).
        **inner_settings: Settings of the inner loss given at the top level, e.g. an experiment's
            ``loss.temperature`` (the preset leaves ``inner`` as a config so that they apply).
    """

    def __init__(
        self,
        inner: nn.Module | Mapping[str, Any] | None = None,
        dims: Sequence[int] | None = None,
        weights: Sequence[float] | None = None,
        normalize: bool = True,
        **inner_settings: Any,
    ) -> None:
        super().__init__()
        if inner is None:
            from embedlight.losses.infonce import InfoNCELoss

            inner = InfoNCELoss(**inner_settings)
        elif isinstance(inner, Mapping):
            from hydra.utils import instantiate

            inner = instantiate(inner, **inner_settings)
        elif inner_settings:
            raise TypeError(f"loss: unknown settings {sorted(inner_settings)} (set them on loss.inner)")
        dims = None if dims is None else [int(d) for d in dims]
        if dims is not None and (not dims or any(d < 1 for d in dims)):
            raise ValueError(f"loss.dims must be positive sizes, got {dims}")
        if weights is not None:
            weights = [float(w) for w in weights]
            if dims is None or len(weights) != len(dims):
                count = "no" if dims is None else len(dims)
                raise ValueError(f"loss.weights has {len(weights)} values for {count} loss.dims")
        self.inner = inner
        self.dims = dims
        self.weights = weights
        self.normalize = normalize

    def trained_dims(self, size: int) -> list[int]:
        """The prefix sizes trained for embeddings of ``size`` (recorded in the export, evaluated one by one)."""
        if self.dims is not None:
            return list(self.dims)
        return sorted({max(1, size // h) for h in HALVINGS}, reverse=True)

    def batch_fields(self) -> dict[str, bool]:
        """The inner loss's batch fields (``forward`` passes them on; see :mod:`embedlight.losses.fields`)."""
        return batch_fields(self.inner)

    def prefix(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """The first ``dim`` coordinates, re-normalised if ``normalize``, (N, dim)."""
        if dim > x.size(-1):
            raise ValueError(f"loss.dims has {dim}, larger than the embedding size {x.size(-1)}")
        p = x[..., :dim]  # (N, dim)
        return F.normalize(p, dim=-1) if self.normalize else p

    def forward(self, query: torch.Tensor, docs: torch.Tensor, **batch: object) -> torch.Tensor:
        """Compute the loss.

        Args:
            query: (B, D) query embeddings.
            docs: (B*G, D) document embeddings.
            **batch: The inner loss's batch fields (:meth:`batch_fields`), passed on to it: a
                keyword it does not take fails there.

        Returns:
            Scalar loss.
        """
        dims = self.trained_dims(query.size(-1))
        weights = self.weights or [1.0] * len(dims)
        total = query.new_zeros(())
        for dim, weight in zip(dims, weights):
            total = total + weight * self.inner(self.prefix(query, dim), self.prefix(docs, dim), **batch)
        return total
