"""Teachers for ``embedlight-score``: score ``(query, document)`` pairs for distillation.

* :class:`EmbedderTeacher`: cosine similarity of a bi-encoder's embeddings (any model
  :func:`embedlight.models.load.load_model` loads: an embedlight export, a sentence-transformers
  folder, a run checkpoint, a bundled name).
* :class:`CrossEncoderTeacher`: a cross-encoder's relevance logit (sentence-transformers
  ``CrossEncoder``; e.g. a bge-reranker), the usual teacher in RocketQAv2 and C-Pack.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class EmbedderTeacher:
    """Cosine similarity between query and document embeddings.

    Args:
        model: Export folder, sentence-transformers folder, run checkpoint (``.ckpt``), bundled name or hub id.
        query_instruction: Query prefix (None = the model's saved ``query`` prompt, "" = none).
        doc_instruction: Document prefix (None = the model's saved ``document`` prompt, "" = none).
        batch_size: Texts per forward pass.
        device: ``cpu``, ``cuda`` or null (auto).
        trust_remote_code: Run model code shipped with the checkpoint (off by default).
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        query_instruction: str | None = None,
        doc_instruction: str | None = None,
        batch_size: int = 64,
        device: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        from embedlight.models.load import load_model

        self.encoder = load_model(model, device, trust_remote_code).encoder
        self.query_instruction = query_instruction
        self.doc_instruction = doc_instruction
        self.batch_size = batch_size

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> list[float]:
        """Cosine of each ``(queries[i], docs[i])`` pair."""
        kw = {"batch_size": self.batch_size}
        q = self.encoder.encode(
            list(queries), kind="query", instruction=self.query_instruction, **kw
        )  # (N, D)
        d = self.encoder.encode(list(docs), kind="document", instruction=self.doc_instruction, **kw)  # (N, D)
        return torch.nn.functional.cosine_similarity(q, d, dim=-1).tolist()


class CrossEncoderTeacher:
    """A cross-encoder's score of each ``(query, document)`` pair (raw logits: no activation).

    Args:
        model: Cross-encoder folder or hub id (bundled short names resolve too).
        max_length: Token limit of the concatenated pair.
        batch_size: Pairs per forward pass.
        device: ``cpu``, ``cuda`` or null (auto).
        trust_remote_code: Run model code shipped with the checkpoint (off by default).
    """

    def __init__(
        self,
        model: str = "BAAI/bge-reranker-base",
        max_length: int = 512,
        batch_size: int = 32,
        device: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        from sentence_transformers import CrossEncoder

        from embedlight.backbones.resolve import resolve_pretrained

        self.model = CrossEncoder(
            resolve_pretrained(model),
            max_length=max_length,
            device=device,
            trust_remote_code=trust_remote_code,
            activation_fn=torch.nn.Identity(),
        )
        self.batch_size = batch_size

    def score(self, queries: Sequence[str], docs: Sequence[str]) -> list[float]:
        """Logit of each ``(queries[i], docs[i])`` pair."""
        pairs = list(zip(queries, docs))
        scores = self.model.predict(pairs, batch_size=self.batch_size, convert_to_numpy=True)
        return [float(s) for s in scores.reshape(len(pairs))]
