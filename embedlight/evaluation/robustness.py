"""Instruction robustness (INSTRUCTOR; Su et al., 2023, "One Embedder, Any Task: Instruction-Finetuned
Text Embeddings", section on robustness to instruction paraphrases).

:class:`InstructionRobustnessEvaluator` runs an inner evaluator once per paraphrased instruction (5 by
default, a set per task type) and reports every run, the mean, and the best-minus-worst gap of each metric:
a model that only memorised one wording shows a large gap.

Keys: ``<name>/instr<i>/<metric>`` (i = 0..4), ``<name>/mean/<metric>``, ``<name>/best_minus_worst/<metric>``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from embedlight.evaluation.base import Evaluator, TextEncoder
from embedlight.registry import register

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PARAPHRASES", "InstructionRobustnessEvaluator", "InstructedEncoder"]

# Five wordings of the same instruction per task type (written for this project, in INSTRUCTOR's
# "Represent the <domain> <text type> for <task objective>:" style and free paraphrases of it).
DEFAULT_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "retrieval": (
        "Represent the question for retrieving supporting documents: ",
        "Represent this query to find passages that answer it: ",
        "Given a search query, retrieve relevant passages: ",
        "Encode the question so that documents answering it can be found: ",
        "Find the documents that are relevant to this search: ",
    ),
    "sts": (
        "Represent the sentence for semantic similarity: ",
        "Encode this sentence to compare its meaning with others: ",
        "Retrieve semantically similar text: ",
        "Represent the meaning of the sentence: ",
        "Embed the sentence so that paraphrases are close: ",
    ),
    "classification": (
        "Represent the sentence for classifying its category: ",
        "Classify the sentence: ",
        "Encode this text for topic and sentiment classification: ",
        "Represent the text to predict its label: ",
        "Embed the sentence for a classifier: ",
    ),
    "clustering": (
        "Represent the sentence for clustering: ",
        "Identify the topic of the sentence: ",
        "Encode the text so that texts on the same subject group together: ",
        "Represent the text for grouping by category: ",
        "Embed the sentence to find its cluster: ",
    ),
    "pair_classification": (
        "Represent the sentence for finding duplicates: ",
        "Retrieve sentences with the same meaning: ",
        "Encode the text to decide whether two texts are paraphrases: ",
        "Represent the question to detect duplicate questions: ",
        "Embed the sentence to check if another one says the same: ",
    ),
}
DEFAULT_PARAPHRASES["reranking"] = DEFAULT_PARAPHRASES["retrieval"]


class InstructedEncoder:
    """A ``TextEncoder`` proxy that forces ``instruction`` for the kinds in ``kinds`` (others unchanged)."""

    def __init__(self, encoder: TextEncoder, instruction: str, kinds: Sequence[str] = ("query",)) -> None:
        self.encoder, self.instruction, self.kinds = encoder, instruction, tuple(kinds)

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        """Encode with the forced instruction for ``kind`` in ``kinds``."""
        if kind in self.kinds:
            instruction = self.instruction
        return self.encoder.encode(
            texts, kind=kind, instruction=instruction, batch_size=batch_size, show_progress=show_progress
        )

    def __getattr__(self, name: str) -> Any:  # tokenizer etc. of the wrapped encoder
        return getattr(self.encoder, name)


@register("evaluator", "robustness")
class InstructionRobustnessEvaluator(Evaluator):
    """Runs ``evaluator`` with each of several paraphrased instructions.

    Args:
        evaluator: The inner evaluator (object or Hydra config).
        task_type: Key of :data:`DEFAULT_PARAPHRASES` (``retrieval``, ``sts``, ``classification``,
            ``clustering``, ``pair_classification``, ``reranking``); used when ``instructions`` is None.
        instructions: The paraphrases to compare (overrides the defaults).
        kinds: Which inputs get the instruction (``query``; add ``document`` for symmetric use).
        name: Metric prefix (default: the inner evaluator's name).
    """

    def __init__(
        self,
        evaluator: Any,
        task_type: str = "retrieval",
        instructions: Sequence[str] | None = None,
        kinds: Sequence[str] = ("query",),
        name: str | None = None,
    ) -> None:
        self.inner = instantiate(evaluator) if isinstance(evaluator, (Mapping, DictConfig)) else evaluator
        self.name = name or self.inner.name
        if instructions is None:
            if task_type not in DEFAULT_PARAPHRASES:
                raise ValueError(
                    f"no default paraphrases for task_type {task_type!r}; known: {sorted(DEFAULT_PARAPHRASES)}"
                )
            instructions = DEFAULT_PARAPHRASES[task_type]
        self.instructions = list(instructions)
        if len(self.instructions) < 2:
            raise ValueError("instruction robustness needs at least 2 instructions")
        self.kinds = tuple(kinds)

    def __call__(self, encoder: TextEncoder) -> dict[str, float]:
        """Per-instruction metrics, their mean and best-minus-worst."""
        prefix = f"{self.inner.name}/"
        runs: list[dict[str, float]] = []
        for instruction in self.instructions:
            metrics = self.inner(InstructedEncoder(encoder, instruction, self.kinds))
            runs.append({k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in metrics.items()})
        out: dict[str, float] = {}
        for i, run in enumerate(runs):
            out.update({f"{self.name}/instr{i}/{k}": v for k, v in run.items()})
        for key in runs[0]:
            values = np.array([run[key] for run in runs], dtype=np.float64)
            out[f"{self.name}/mean/{key}"] = float(values.mean())
            out[f"{self.name}/best_minus_worst/{key}"] = float(values.max() - values.min())
        return out
