"""Personalized passkey retrieval (E5-mistral; Wang et al., 2024, "Improving Text Embeddings with Large
Language Models", long-context section), a synthetic test of how far into a long input an embedder reads.

For each length, ``n_docs`` documents are generated with a seed: filler text (the repeated sentences of the
passkey test of Mohtashami & Jaggi, 2023) with one sentence ``"<name>'s passkey is <5 digits>. Remember
it."`` inserted at a uniformly random position. Every document has a different person. The query for
document ``i`` is ``"what is <name_i>'s passkey?"``; it must retrieve document ``i`` among the ``n_docs``
candidates. Metric: top-1 accuracy per length (chance = ``1 / n_docs``).

Lengths are in tokens of the encoder's tokenizer when it has one (``encoder.tokenizer``, as an
:class:`~embedlight.models.embedder.Embedder`), else in whitespace words. A model that truncates its input (e.g.
``max_length=256``) cannot see a passkey placed after the cut, so accuracy falls towards chance beyond it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from embedlight.evaluation.base import Evaluator, TextEncoder
from embedlight.evaluation.common import embed_normalized
from embedlight.registry import register

log = logging.getLogger(__name__)

__all__ = ["PasskeyEvaluator", "make_passkey_task"]

FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
_FIRST = (
    "Alice Bruno Chen Dara Elif Farid Greta Hiro Ines Jonas Kofi Lena Mateo Nadia Omar Priya Quinn Rosa "
    "Sven Tariq Uma Viktor Wen Ximena Yusuf Zoe Amara Bjorn Carmen Dmitri"
).split()
_LAST = (
    "Abbott Banerjee Castillo Dubois Eriksen Fischer Garcia Haddad Ivanova Jensen Kowalski Lindqvist "
    "Moreau Nakamura Okafor Petrov Quispe Rossi Schmidt Tanaka"
).split()


def _count(text: str, tokenizer) -> int:
    if tokenizer is None:
        return len(text.split())
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def make_passkey_task(
    length: int, n_docs: int = 100, seed: int = 0, tokenizer=None
) -> tuple[list[str], list[str]]:
    """Generate ``(queries, documents)`` of one length; query ``i`` belongs to document ``i``.

    Args:
        length: Target document length (tokens of ``tokenizer``, else words); documents are at most this long.
        n_docs: Number of documents (and queries); at most ``len(_FIRST) * len(_LAST)`` (600).
        seed: Seed of the names, passkeys and positions.
        tokenizer: A Hugging Face tokenizer used to count tokens (None: whitespace words).
    """
    if n_docs > len(_FIRST) * len(_LAST) or n_docs < 2:
        raise ValueError(f"n_docs must be in [2, {len(_FIRST) * len(_LAST)}], got {n_docs}")
    rng = np.random.default_rng(seed)
    people = rng.choice(len(_FIRST) * len(_LAST), size=n_docs, replace=False)
    sentences = [s.strip() + "." for s in FILLER.split(".") if s.strip()]
    per_sentence = [_count(s, tokenizer) for s in sentences]
    queries, docs = [], []
    for p in people:
        name = f"{_FIRST[p // len(_LAST)]} {_LAST[p % len(_LAST)]}"
        needle = f"{name}'s passkey is {rng.integers(10000, 100000)}. Remember it."
        budget = length - _count(needle, tokenizer)
        if budget < 0:
            raise ValueError(f"length {length} is shorter than the passkey sentence")
        filler, used = [], 0
        while used + per_sentence[len(filler) % len(sentences)] <= budget:
            used += per_sentence[len(filler) % len(sentences)]
            filler.append(sentences[len(filler) % len(sentences)])
        filler.insert(int(rng.integers(0, len(filler) + 1)), needle)
        docs.append(" ".join(filler))
        queries.append(f"what is {name}'s passkey?")
    return queries, docs


@register("evaluator", "passkey")
class PasskeyEvaluator(Evaluator):
    """Top-1 accuracy of personalized passkey retrieval at each length.

    Args:
        lengths: Document lengths (tokens, or words without a tokenizer).
        n_docs: Candidates per length.
        seed: Generation seed.
        name: Metric prefix.
        query_instruction: Query instruction (None: encoder default).
        doc_instruction: Document instruction.
        batch_size: Encoding batch size.
    """

    def __init__(
        self,
        lengths: Sequence[int] = (128, 256, 512),
        n_docs: int = 100,
        seed: int = 0,
        name: str = "passkey",
        query_instruction: str | None = None,
        doc_instruction: str | None = None,
        batch_size: int = 16,
    ) -> None:
        self.lengths = [int(n) for n in lengths]
        self.n_docs, self.seed, self.name = n_docs, seed, name
        self.query_instruction, self.doc_instruction = query_instruction, doc_instruction
        self.batch_size = batch_size

    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """``{name}/top1@<length>`` for each length."""
        tokenizer = getattr(encoder, "tokenizer", None)
        out = {}
        for length in self.lengths:
            queries, docs = make_passkey_task(length, self.n_docs, self.seed, tokenizer)
            q = embed_normalized(
                encoder, queries, kind="query", instruction=self.query_instruction, batch_size=self.batch_size
            )
            d = embed_normalized(
                encoder, docs, kind="document", instruction=self.doc_instruction, batch_size=self.batch_size
            )
            top1 = np.argmax(q @ d.T, axis=1)  # (n_docs,)
            out[f"{self.name}/top1@{length}"] = float(np.mean(top1 == np.arange(len(docs))))
        return out
