"""Zero-shot vs few-shot (and PromptEOL) evaluation of decoder embedders on the same benchmark.

:class:`ICLEvaluator` wraps any evaluator (retrieval, STS) and runs it once per *mode*, renaming the
keys ``<name>/<metric>`` to ``<name>/<mode>/<metric>`` so the modes sit side by side:

* ``zero_shot``: ``<instruct>{task}\\n<query>{query}\\n<response>`` + [EOS] (no examples);
* ``few_shot``: the task's fixed examples prepended (bge-en-icl, Li et al., 2024, "Making Text
  Embedders Few-Shot Learners");
* ``prompteol``: PromptEOL (Jiang et al., 2023, "Scaling Sentence Embeddings with Large Language
  Models"): ``This sentence : "{text}" means in one word:"`` on queries *and* documents and the hidden
  state of that last token, no [EOS]; a training-free baseline.

Documents are raw (+[EOS]) in the first two modes, and their embeddings are computed once per call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from embedlight.evaluation.base import Evaluator
from embedlight.prompts.examples import Example, load_examples
from embedlight.prompts.icl import (
    DEFAULT_ICL_TEMPLATE,
    DEFAULT_SEPARATOR,
    PROMPTEOL_TEMPLATE,
    ICLPromptBuilder,
)
from embedlight.registry import register

log = logging.getLogger(__name__)

EVAL_MODES = ("zero_shot", "few_shot", "prompteol")


class ICLEncoder:
    """A ``TextEncoder`` over an :class:`~embedlight.models.embedder.Embedder` that builds ICL / PromptEOL inputs.

    Queries get ``examples + instruction + query (+ suffix)``; documents stay raw. The ``instruction``
    argument of :meth:`encode` is ignored: the task and mode decide the prompt.

    Args:
        embedder: The model (backbone + pooler); its ``forward`` is used on tokenised batches.
        mode: ``zero_shot``, ``few_shot`` or ``prompteol``.
        task: Task description (bge-en-icl ``<instruct>`` line).
        examples: Few-shot examples (used in ``few_shot`` mode).
        template: ICL template name (:data:`~embedlight.prompts.icl.ICL_TEMPLATES`) or ``{example, query}``
            mapping.
        separator: Between examples and before the query.
        query_max_len: Token limit of a query prompt (examples are budgeted into it).
        doc_max_len: Token limit of a document (default: the embedder's ``max_length``).
        prompteol_template: PromptEOL's template (``{text}``).
        doc_cache: Shared ``{key: (N, D)}`` cache so that modes with the same document inputs embed
            the corpus once.
    """

    def __init__(
        self,
        embedder: Any,
        mode: str = "zero_shot",
        task: str = "",
        examples: Sequence[Example] = (),
        template: str | Mapping[str, str] = DEFAULT_ICL_TEMPLATE,
        separator: str = DEFAULT_SEPARATOR,
        query_max_len: int = 512,
        doc_max_len: int | None = None,
        prompteol_template: str = PROMPTEOL_TEMPLATE,
        doc_cache: dict | None = None,
    ) -> None:
        if mode not in EVAL_MODES:
            raise ValueError(f"ICL evaluation mode must be one of {EVAL_MODES}, got {mode!r}")
        self.embedder = embedder
        self.mode = mode
        self.task = task
        self.examples = list(examples) if mode == "few_shot" else []
        self.append_eos = embedder.backbone.append_eos and mode != "prompteol"
        self.builder = ICLPromptBuilder(
            embedder.tokenizer, template, separator, query_max_len, append_eos=self.append_eos
        )
        self.query_max_len = query_max_len
        self.doc_max_len = doc_max_len or getattr(embedder, "max_length", 512)
        self.prompteol_template = prompteol_template
        self.doc_cache = doc_cache if doc_cache is not None else {}

    def inputs(self, texts: Sequence[str], kind: str) -> tuple[list[str], list[str]]:
        """``(prefixes, texts)`` to tokenise for ``kind``."""
        if self.mode == "prompteol":
            head, tail = self.prompteol_template.split("{text}", 1)
            return [head] * len(texts), [t + tail for t in texts]
        if kind == "document":
            return [""] * len(texts), list(texts)
        prompts = [self.builder.build(self.task, t, self.examples) for t in texts]
        return [p.prefix for p in prompts], [p.text for p in prompts]

    @torch.no_grad()
    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: str = "query",
        instruction: str | None = None,
        batch_size: int = 16,
        show_progress: bool = False,
    ) -> torch.Tensor:
        """Embed ``texts`` as ``kind`` under this mode, (N, D) float32 on the CPU."""
        key = None
        if kind == "document":
            key = (
                self.mode == "prompteol",
                self.prompteol_template if self.mode == "prompteol" else "",
                self.doc_max_len,
                len(texts),
                hash(tuple(texts)),
            )
            if key in self.doc_cache:
                return self.doc_cache[key]
        prefixes, bodies = self.inputs(texts, kind)
        max_len = self.query_max_len if kind == "query" else self.doc_max_len
        out = self.embedder.embed_texts(
            bodies,
            prefixes,
            max_length=max_len,
            append_eos=self.append_eos,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        if key is not None:
            self.doc_cache[key] = out
        return out


@register("evaluator", "icl")
class ICLEvaluator(Evaluator):
    """Runs one evaluator under several prompt modes; metrics ``<name>/<mode>/<metric>``.

    Args:
        evaluator: The wrapped evaluator (object or Hydra config), e.g. a ``RetrievalEvaluator``.
        task: Task description for the ``<instruct>`` line.
        examples: Few-shot examples: a JSON/JSONL file (FlagEmbedding ``icl_examples/MTEB/<task>.json``)
            or a list of ``{query, response}``.
        n_examples: Use the first ``n_examples`` examples (None: all).
        modes: Subset of ``zero_shot``, ``few_shot``, ``prompteol``.
        template: ICL template name (:data:`~embedlight.prompts.icl.ICL_TEMPLATES`, default
            :data:`~embedlight.prompts.icl.DEFAULT_ICL_TEMPLATE`) or
            ``{example, query}`` mapping; experiments set it from the root ``icl.template``.
        separator: Between examples and before the query (experiments: ``icl.separator``).
        query_max_len: Token limit of query prompts (examples budgeted into it).
        doc_max_len: Token limit of documents (None: the embedder's ``max_length``).
        batch_size: Texts per forward pass.
        name: Metric prefix (default: the wrapped evaluator's name).
    """

    def __init__(
        self,
        evaluator: Any,
        task: str,
        examples: str | Sequence[Mapping[str, str]] | None = None,
        n_examples: int | None = None,
        modes: Sequence[str] = ("zero_shot", "few_shot"),
        template: str | Mapping[str, str] = DEFAULT_ICL_TEMPLATE,
        separator: str = DEFAULT_SEPARATOR,
        query_max_len: int = 512,
        doc_max_len: int | None = None,
        batch_size: int = 16,
        name: str | None = None,
    ) -> None:
        self.inner = instantiate(evaluator) if isinstance(evaluator, (Mapping, DictConfig)) else evaluator
        self.name = name or self.inner.name
        self.task = task
        unknown = set(modes) - set(EVAL_MODES)
        if unknown:
            raise ValueError(f"unknown ICL evaluation mode(s) {sorted(unknown)}; valid: {EVAL_MODES}")
        self.modes = list(modes)
        if "few_shot" in self.modes and examples is None:
            raise ValueError("few_shot mode needs examples (a JSON file or a list of {query, response})")
        loaded = load_examples(examples) if examples is not None else []
        self.examples = loaded[:n_examples] if n_examples is not None else loaded
        self.template = template
        self.separator = separator
        self.query_max_len = query_max_len
        self.doc_max_len = doc_max_len
        self.batch_size = batch_size
        self.last_stats: dict[str, dict[str, int]] = {}

    def __call__(self, encoder: Any) -> dict[str, float]:
        """Evaluate ``encoder`` (an Embedder) in every mode."""
        cache: dict = {}
        results: dict[str, float] = {}
        prefix = f"{self.inner.name}/"
        for mode in self.modes:
            wrapped = ICLEncoder(
                encoder,
                mode,
                self.task,
                self.examples,
                self.template,
                self.separator,
                query_max_len=self.query_max_len,
                doc_max_len=self.doc_max_len,
                doc_cache=cache,
            )
            self.inner.batch_size = self.batch_size
            metrics = self.inner(wrapped)
            self.last_stats[mode] = wrapped.builder.stats.as_dict()
            if wrapped.builder.stats.dropped:
                log.warning("%s/%s: %s", self.name, mode, wrapped.builder.stats.as_dict())
            for key, value in metrics.items():
                rest = key[len(prefix) :] if key.startswith(prefix) else key
                results[f"{self.name}/{mode}/{rest}"] = value
        return results
