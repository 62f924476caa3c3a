"""A fake encoder with hand-made embeddings, injected in place of a real model."""

from __future__ import annotations

import numpy as np
import torch

from embedlight.models.load import LoadedModel


class FakeEncoder:
    """Looks each (prefix-stripped) text up in a table; records the prefixes it was given."""

    def __init__(self, table: dict[str, np.ndarray], fail_after: int | None = None) -> None:
        self.table = table
        self.calls: list[tuple[str, str | None, int]] = []
        self.fail_after = fail_after

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise RuntimeError("simulated crash")
        self.calls.append((kind, instruction, len(texts)))
        return torch.tensor(np.stack([self.table[t] for t in texts]), dtype=torch.float32)


def random_table(texts: list[str], dim: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Unit vectors for ``texts``."""
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(len(texts), dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return dict(zip(texts, vecs))


def fake_model(table: dict[str, np.ndarray], **kw) -> LoadedModel:
    """A LoadedModel around :class:`FakeEncoder`."""
    return LoadedModel(FakeEncoder(table, **kw), prompts={"query": "", "document": ""}, name="fake")


class BlockScorer:
    """A fake cross-encoder: 1.0 for the blocked documents, 0.0 otherwise (injected via ``_target_``)."""

    def __init__(self, blocked: list[str]) -> None:
        self.blocked = set(blocked)
        self.pairs = 0

    def __call__(self, pairs):
        self.pairs += len(pairs)
        return [1.0 if d in self.blocked else 0.0 for _, d in pairs]
