"""The batch a collator hands to a LightningModule, with its fields declared: a typo is an error.

A collator (:class:`~embedlight.data.collator.ContrastiveCollator`, :class:`~embedlight.data.icl.ICLCollator`)
returns a :class:`Batch`. The module embeds ``query`` and ``docs`` and passes a loss exactly the
fields the loss declares (the keyword arguments of its ``forward``; see
:func:`embedlight.losses.fields.batch_fields`), taken from :data:`LOSS_FIELDS`. A loss that declares a
field a Batch does not have fails when the module is built; a required field (no default) that a
batch lacks fails at that step, naming the loss and the field.

Lightning moves a Batch to the device field by field (``apply_to_collection`` handles dataclasses;
the dataclass is therefore not frozen), and a DataLoader with ``pin_memory`` pins it through
:meth:`Batch.pin_memory`.

A new data kind adds its fields here, and its collation in :mod:`embedlight.data.collator`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from embedlight.data.jsonl import RowKind

Features = dict[str, torch.Tensor]  # input_ids, attention_mask, instruction_mask: (N, L) int64 each

# The fields a loss may declare, i.e. every field but the inputs (query, docs) and the bookkeeping (icl)
LOSS_FIELDS = ("in_batch_negatives", "labels", "query_hash", "doc_hash", "teacher_scores")


@dataclass
class ICLCounts:
    """The ICL example budget over one batch's prompts (see :class:`~embedlight.prompts.icl.BudgetStats`)."""

    kept: int = 0  # examples that made it into a prompt
    dropped: int = 0  # examples removed whole by the budget
    truncated: int = 0  # examples shortened to fit
    all_dropped: int = 0  # prompts that asked for >= 1 example and got none

    @classmethod
    def between(cls, before: Mapping[str, int], after: Mapping[str, int]) -> ICLCounts:
        """The counts added between two readings of the cumulative counters (``BudgetStats.as_dict()``)."""
        return cls(**{f.name: after[f.name] - before[f.name] for f in dataclasses.fields(cls)})


@dataclass
class Batch:
    """One training batch: B queries, and G documents per query (scored pairs: G = 1).

    Attributes:
        query: Tokenised queries, instructions included, (B, L_q) tensors.
        docs: Tokenised documents, (B*G, L_d) tensors; ``docs[i*G:(i+1)*G]`` belong to query ``i``,
            its positive first (scored pairs: the second text of each pair).
        in_batch_negatives: False for FlagEmbedding's ``no_in_batch_neg`` sources (a per-batch
            override of the loss's own setting).
        labels: (B,) gold scores of scored pairs; None for triplet batches.
        query_hash: (B,) int64 ids of the raw query texts (equal text, equal id); triplets only.
        doc_hash: (B*G,) int64 ids of the raw document texts; triplets only.
        teacher_scores: (B, G) teacher scores of each query's documents, when every row has them.
        icl: The ICL example budget of this batch's prompts (ICL batches only; logged, not a loss input).
    """

    query: Features
    docs: Features
    in_batch_negatives: bool = True
    labels: torch.Tensor | None = None
    query_hash: torch.Tensor | None = None
    doc_hash: torch.Tensor | None = None
    teacher_scores: torch.Tensor | None = None
    icl: ICLCounts | None = None

    @property
    def size(self) -> int:
        """B, the number of queries."""
        return int(self.query["input_ids"].size(0))

    @property
    def kind(self) -> RowKind:
        """The rows it was made of: scored pairs (it has ``labels``) or triplets."""
        return RowKind.TRIPLET if self.labels is None else RowKind.PAIRS

    def loss_inputs(self, fields: Mapping[str, bool], loss: str) -> dict[str, Any]:
        """The keyword arguments of a loss that declares ``fields`` (``{name: required}``).

        Args:
            fields: The loss's declared batch fields (:func:`embedlight.losses.fields.batch_fields`).
            loss: The loss's name, for the message.

        Raises:
            ValueError: A required field is None in this batch.
        """
        out = {}
        for name, required in fields.items():
            value = getattr(self, name)
            if value is None and required:
                raise ValueError(
                    f"loss {loss} needs the batch field {name!r}, which this {self.kind} batch does not carry"
                )
            out[name] = value
        return out

    def pin_memory(self) -> Batch:
        """A copy whose tensors are in pinned host memory (called by a DataLoader with ``pin_memory``)."""

        def pin(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return value.pin_memory()
            if isinstance(value, dict):
                return {k: pin(v) for k, v in value.items()}
            return value

        return dataclasses.replace(
            self, **{f.name: pin(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )
