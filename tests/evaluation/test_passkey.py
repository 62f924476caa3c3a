"""Passkey retrieval: generated documents (length, needle, seed) and top-1 accuracy on oracle / blind
encoders."""

from __future__ import annotations

import re

import torch

from embedlight.evaluation import PasskeyEvaluator
from embedlight.evaluation.passkey import make_passkey_task

NAME = re.compile(r"([A-Z][a-z]+ [A-Z][a-z]+)'s passkey")


def test_generation_lengths_needles_and_seed():
    queries, docs = make_passkey_task(128, n_docs=50, seed=1)
    assert len(queries) == len(docs) == 50
    names = [NAME.search(q).group(1) for q in queries]
    assert len(set(names)) == 50
    for name, doc in zip(names, docs, strict=True):
        assert 110 <= len(doc.split()) <= 128
        assert doc.count("passkey is") == 1 and NAME.search(doc).group(1) == name
    positions = [d.split().index("passkey") / len(d.split()) for d in docs]
    assert min(positions) < 0.3 and max(positions) > 0.7  # the needle moves through the document
    assert make_passkey_task(128, 50, seed=1) == (queries, docs)
    assert make_passkey_task(128, 50, seed=2) != (queries, docs)


class NameOracle:
    """Bag of person names, truncated to the first ``limit`` words (a model with a short context)."""

    def __init__(self, names: list[str], limit: int = 10_000) -> None:
        self.names, self.limit = names, limit

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        out = torch.full((len(texts), len(self.names) + 1), 1e-3)  # (N, V+1)
        for i, t in enumerate(texts):
            seen = " ".join(t.split()[: self.limit])
            for j, n in enumerate(self.names):
                if n in seen:
                    out[i, j] = 1.0
        return out


def test_oracle_is_perfect_and_truncation_hurts_long_documents():
    queries, _ = make_passkey_task(128, n_docs=20, seed=0)
    names = [NAME.search(q).group(1) for q in queries]
    ev = PasskeyEvaluator(lengths=[64, 256], n_docs=20, seed=0, name="pk")
    assert ev(NameOracle(names)) == {"pk/top1@64": 1.0, "pk/top1@256": 1.0}
    cut = ev(NameOracle(names, limit=64))  # sees only the first 64 words
    assert cut["pk/top1@64"] == 1.0 and cut["pk/top1@256"] < 0.6
