"""Collator: instructions applied, texts tokenised with dynamic padding, batch tensors built."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from embedlight.data.batch import Batch
from embedlight.data.jsonl import RowKind
from embedlight.data.mixture import Source
from embedlight.data.tokenize import tokenize
from embedlight.prompts.instructions import render, resolve_template


def text_hash(texts: Sequence[str]) -> torch.Tensor:
    """Stable 64-bit ids of ``texts``, (N,) int64: equal texts, equal ids, on every rank and run.

    (Python's ``hash`` of a string is salted per process, so ranks would disagree.)
    """
    ids = [
        int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little", signed=True)
        for t in texts
    ]
    return torch.tensor(ids, dtype=torch.long)  # (N,)


def text_hashes(rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """``query_hash`` (B,) and ``doc_hash`` (B*G,) of triplet rows: the raw texts, before instructions.

    The loss uses them to keep duplicate texts (a repeated row, a shared positive) from acting as
    each other's negatives.
    """
    return {
        "query_hash": text_hash([r["query"] for r in rows]),  # (B,)
        "doc_hash": text_hash([d for r in rows for d in r["docs"]]),  # (B*G,)
    }


class ContrastiveCollator:
    """Turns rows from :class:`~embedlight.data.mixture.MixtureDataset` into a :class:`~embedlight.data.batch.Batch`.

    Triplet batches give ``query`` (B rows) and ``docs`` (B*G rows, positive first per group);
    scored-pair batches give ``query`` (text1), ``docs`` (text2) and ``labels`` (B,). Triplet batches
    also carry ``query_hash`` (B,) and ``doc_hash`` (B*G,) text ids (see :func:`text_hashes`), and
    ``teacher_scores`` (B, G) when every row has them.

    Args:
        tokenizer: The backbone's tokenizer.
        sources: The sources (instruction settings per source).
        query_max_len: Token limit for queries (instruction included).
        passage_max_len: Token limit for documents.
        append_eos: Append [EOS] to every text (decoder embedders).
        pad_to_multiple_of: Round padded lengths up.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        sources: Sequence[Source],
        query_max_len: int = 64,
        passage_max_len: int = 256,
        append_eos: bool = False,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.sources = list(sources)
        self.query_max_len = query_max_len
        self.passage_max_len = passage_max_len
        self.append_eos = append_eos
        self.pad_to_multiple_of = pad_to_multiple_of
        self._templates = [
            (resolve_template(s.query_instruction, "query"), resolve_template(s.doc_instruction, "document"))
            for s in self.sources
        ]

    def query_instruction(self, source_idx: int, prompt: str | None) -> str:
        """Instruction prefix for a query of ``source_idx``; a row ``prompt`` overrides a non-empty template."""
        source = self.sources[source_idx]
        template = self._templates[source_idx][0]
        row_prompt = prompt if (source.use_row_prompt and template) else None
        return render(template, source.instruction_fields, row_prompt)

    def doc_instruction(self, source_idx: int) -> str:
        """Instruction prefix for documents of ``source_idx`` (empty by default: documents stay raw)."""
        return render(self._templates[source_idx][1], self.sources[source_idx].instruction_fields)

    def _tok(self, texts: list[str], instructions: list[str], max_len: int) -> dict[str, torch.Tensor]:
        return tokenize(
            self.tokenizer, texts, instructions, max_len, self.append_eos, self.pad_to_multiple_of
        )

    def __call__(self, rows: list[dict[str, Any]]) -> Batch:
        source = self.sources[rows[0]["source"]]
        if source.kind is RowKind.PAIRS:
            instr = [self.query_instruction(r["source"], None) for r in rows]
            return Batch(
                query=self._tok([r["text1"] for r in rows], instr, self.query_max_len),
                docs=self._tok([r["text2"] for r in rows], instr, self.query_max_len),
                labels=torch.tensor([r["score"] for r in rows], dtype=torch.float),  # (B,)
                in_batch_negatives=source.in_batch_negatives,
            )
        q_instr = [self.query_instruction(r["source"], r.get("prompt")) for r in rows]
        return self.triplets(rows, [r["query"] for r in rows], q_instr)

    def triplets(self, rows: list[dict[str, Any]], queries: list[str], prefixes: list[str]) -> Batch:
        """The batch of triplet ``rows`` whose query inputs are ``queries`` after ``prefixes``.

        Documents get their source's document instruction; the text ids are those of the rows' raw
        texts (what a query becomes, e.g. a few-shot prompt, does not make a duplicate distinct).
        """
        source = self.sources[rows[0]["source"]]
        docs = [d for r in rows for d in r["docs"]]
        d_instr = [self.doc_instruction(r["source"]) for r in rows for _ in r["docs"]]
        teacher = None
        if all(r.get("teacher_scores") is not None for r in rows):  # distillation (losses/distill.py)
            teacher = torch.tensor([r["teacher_scores"] for r in rows], dtype=torch.float)  # (B, G)
        return Batch(
            query=self._tok(queries, prefixes, self.query_max_len),
            docs=self._tok(docs, d_instr, self.passage_max_len),
            in_batch_negatives=source.in_batch_negatives,
            teacher_scores=teacher,
            **text_hashes(rows),
        )
