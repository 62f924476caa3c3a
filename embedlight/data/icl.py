"""Few-shot ICL training batches (bge-en-icl): the collator that turns triplet queries into prompts with
0..n examples, and the datamodule that builds the example pools. The prompts themselves are built by
:mod:`embedlight.prompts.icl`."""

from __future__ import annotations

import logging
import random
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from embedlight.data.batch import Batch, ICLCounts
from embedlight.data.collator import ContrastiveCollator
from embedlight.data.datamodule import ContrastiveDataModule
from embedlight.data.jsonl import RowKind
from embedlight.data.mixture import Source
from embedlight.prompts.examples import Example, find_examples, load_examples
from embedlight.prompts.icl import DEFAULT_ICL_TEMPLATE, DEFAULT_SEPARATOR, ICLPromptBuilder

log = logging.getLogger(__name__)

MODES = ("dynamic", "fixed", "zero_shot")
EXAMPLE_SOURCES = ("pool", "batch")


def _rng(seed: int, *parts: str) -> random.Random:
    """A deterministic RNG from strings (``hash(str)`` is salted per process; crc32 is not)."""
    value = seed & 0xFFFFFFFF
    for part in parts:
        value = zlib.crc32(part.encode("utf-8"), value)
    return random.Random(value)


class ICLCollator(ContrastiveCollator):
    """:class:`ContrastiveCollator` whose triplet queries become few-shot prompts; documents stay raw.

    Args:
        tokenizer: The backbone's tokenizer.
        sources: The sources.
        builder: The prompt builder (template, budget).
        mode: ``dynamic`` (0..n examples per query from the same task), ``fixed`` (each source's
            predefined list) or ``zero_shot``.
        min_examples: Lower bound of the per-query example count in dynamic mode.
        max_examples: Upper bound (dynamic) or the number of fixed examples used.
        example_source: ``pool`` (all rows of the query's source and task, the query itself excluded)
            or ``batch`` (the other rows of this batch with the same task).
        pools: Per source index, ``{task: [Example]}`` for dynamic/pool mode.
        fixed: Per source index, the fixed example list.
        tasks: Per source index, the task used when a row has no ``prompt``.
        seed: Seed of the example draws (a pure function of seed, query and its sampled documents).
        query_max_len / passage_max_len / append_eos / pad_to_multiple_of: As the parent.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        sources: Sequence[Source],
        builder: ICLPromptBuilder,
        mode: str = "dynamic",
        min_examples: int = 0,
        max_examples: int = 5,
        example_source: str = "pool",
        pools: Mapping[int, Mapping[str, Sequence[Example]]] | None = None,
        fixed: Mapping[int, Sequence[Example]] | None = None,
        tasks: Mapping[int, str] | None = None,
        seed: int = 42,
        query_max_len: int = 512,
        passage_max_len: int = 256,
        append_eos: bool = True,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        super().__init__(tokenizer, sources, query_max_len, passage_max_len, append_eos, pad_to_multiple_of)
        if mode not in MODES:
            raise ValueError(f"icl mode must be one of {MODES}, got {mode!r}")
        if example_source not in EXAMPLE_SOURCES:
            raise ValueError(f"example_source must be one of {EXAMPLE_SOURCES}, got {example_source!r}")
        if not 0 <= min_examples <= max_examples:
            raise ValueError(f"need 0 <= min_examples <= max_examples, got {min_examples}, {max_examples}")
        self.builder = builder
        self.mode = mode
        self.min_examples = min_examples
        self.max_examples = max_examples
        self.example_source = example_source
        self.pools = {k: {t: list(v) for t, v in p.items()} for k, p in (pools or {}).items()}
        self.fixed = {k: list(v) for k, v in (fixed or {}).items()}
        self.tasks = dict(tasks or {})
        self.seed = seed

    def task(self, source_idx: int, prompt: str | None) -> str:
        """The task description of a row: its ``prompt`` if allowed, else its source's task."""
        if prompt and self.sources[source_idx].use_row_prompt:
            return prompt
        return self.tasks.get(source_idx, "")

    def draw(self, row: Mapping[str, Any], task: str, batch: Sequence[Mapping[str, Any]]) -> list[Example]:
        """Examples for one query under the configured mode."""
        src = row["source"]
        if self.mode == "zero_shot" or self.max_examples == 0:
            return []
        if self.mode == "fixed":
            return self.fixed.get(src, [])[: self.max_examples]
        rng = _rng(self.seed, row["query"], *row["docs"])
        k = rng.randint(self.min_examples, self.max_examples)
        if self.example_source == "batch":
            cands = [
                Example(r["query"], r["docs"][0])
                for r in batch
                if r is not row and r["source"] == src and self.task(src, r.get("prompt")) == task
            ]
        else:
            cands = [ex for ex in self.pools.get(src, {}).get(task, []) if ex.query != row["query"]]
        return rng.sample(cands, min(k, len(cands)))

    def __call__(self, rows: list[dict[str, Any]]) -> Batch:
        source = self.sources[rows[0]["source"]]
        if source.kind is RowKind.PAIRS:  # scored pairs keep the plain instruction path
            return super().__call__(rows)
        before = self.builder.stats.as_dict()
        prefixes, texts = [], []
        for row in rows:
            task = self.task(row["source"], row.get("prompt"))
            prompt = self.builder.build(task, row["query"], self.draw(row, task, rows))
            prefixes.append(prompt.prefix)
            texts.append(prompt.text)
        after = self.builder.stats.as_dict()
        batch = self.triplets(rows, texts, prefixes)  # documents raw; text ids of the raw queries
        batch.icl = ICLCounts.between(before, after)
        return batch


class ICLDataModule(ContrastiveDataModule):
    """:class:`ContrastiveDataModule` with few-shot ICL queries (bge-en-icl).

    Every argument of the parent applies and is passed on to it unchanged (``train_files``,
    ``batch_size``, ``group_size``, ``passage_max_len``, ``group_by_length``, ``seed``, ...); only the
    arguments below are the ICL data module's own, or the parent's with another default. Sources may
    also set ``task`` (the task description when rows have no ``prompt``) and ``examples`` (a JSON/JSONL
    file or a list of ``{query, response}`` for fixed mode; defaults to ``<examples_dir>/<source
    name>.json``).

    Triplet queries become ICL prompts, so ``query_instruction`` only reaches scored-pair sources (which
    keep the plain instruction path); documents are raw unless ``doc_instruction`` is set; a source's
    ``instruction_fields.task`` (or the default ``instruction_fields``) is its task when it sets no
    ``task``.

    Args:
        tokenizer: The backbone's tokenizer (injected by the entry point).
        sources: As the parent, plus the per-source ``task`` and ``examples`` above.
        mode: ``dynamic`` (training default, as the paper), ``fixed`` or ``zero_shot``.
        min_examples: Fewest examples per query in dynamic mode (paper: 0).
        max_examples: Most examples per query (paper: 5); the fixed list is cut to it.
        example_source: ``pool`` (the source's other rows) or ``batch`` (the batch's other rows).
        template: A name in :data:`~embedlight.prompts.icl.ICL_TEMPLATES` (default ``bge_icl``) or a
            ``{example, query}`` mapping; experiments set it from the root ``icl.template``.
        separator: Between examples (experiments: ``icl.separator``).
        example_budget: Token cap on the examples (None: whatever ``query_max_len`` leaves).
        examples_dir: Folder of ``<task>.json`` files for fixed mode.
        default_task: Task description of rows and sources that have none.
        query_max_len: As the parent, default 512: it bounds the whole few-shot query, examples included.
        one_source_per_batch: As the parent, default True: examples and in-batch negatives of one task.
        append_eos: As the parent, default True (decoder embedders pool the appended [EOS]).
        **kwargs: Every other argument of :class:`ContrastiveDataModule`.
    """

    ICL_KEYS = ("task", "examples")

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase | None = None,
        *,
        sources: Mapping[str, Mapping[str, Any]] | None = None,
        mode: str = "dynamic",
        min_examples: int = 0,
        max_examples: int = 5,
        example_source: str = "pool",
        template: str | Mapping[str, str] = DEFAULT_ICL_TEMPLATE,
        separator: str = DEFAULT_SEPARATOR,
        example_budget: int | None = None,
        examples_dir: str | None = None,
        default_task: str = "Given a query, retrieve relevant passages.",
        query_max_len: int = 512,
        one_source_per_batch: bool = True,
        append_eos: bool = True,
        **kwargs: Any,
    ) -> None:
        icl_specs: dict[str, dict[str, Any]] = {}
        plain: dict[str, dict[str, Any]] = {}
        for name, spec in (sources or {}).items():
            spec = dict(spec)
            icl_specs[str(name)] = {k: spec.pop(k) for k in self.ICL_KEYS if k in spec}
            plain[str(name)] = spec
        super().__init__(
            tokenizer=tokenizer,
            sources=plain,
            query_max_len=query_max_len,
            one_source_per_batch=one_source_per_batch,
            append_eos=append_eos,
            **kwargs,
        )
        if mode not in MODES:
            raise ValueError(f"data.mode must be one of {MODES}, got {mode!r}")
        self.icl_specs = icl_specs
        self.mode = mode
        self.min_examples = min_examples
        self.max_examples = max_examples
        self.example_source = example_source
        self.template = template
        self.separator = separator
        self.example_budget = example_budget
        self.examples_dir = examples_dir
        self.default_task = default_task
        self._collator: ICLCollator | None = None

    def _task(self, name: str, source: Source) -> str:
        spec = self.icl_specs.get(name, {})
        return spec.get("task") or source.instruction_fields.get("task") or self.default_task

    def _fixed(self, name: str) -> list[Example]:
        spec = self.icl_specs.get(name, {})
        ref = spec.get("examples")
        if ref is None and self.examples_dir:
            ref = find_examples(self.examples_dir, name)
        if ref is None:
            raise ValueError(
                f"data.mode=fixed: source {name!r} has no 'examples' and no {name}.json in "
                f"examples_dir={self.examples_dir!r}"
            )
        return load_examples(ref if isinstance(ref, str) else list(ref))

    def collator(self) -> ICLCollator:
        """The ICL collator (example pools built once from the sources' rows)."""
        if self.tokenizer is None:
            raise RuntimeError("ICLDataModule needs a tokenizer (the entry point injects the backbone's)")
        if self._collator is not None:
            return self._collator
        tasks, pools, fixed = {}, {}, {}
        for idx, source in enumerate(self.sources):
            tasks[idx] = self._task(source.name, source)
            if self.mode == "fixed":
                fixed[idx] = self._fixed(source.name)
            elif self.mode == "dynamic" and self.example_source == "pool" and source.kind != RowKind.PAIRS:
                pool: dict[str, list[Example]] = {}
                for row in source.rows:
                    task = row.get("prompt") if (row.get("prompt") and source.use_row_prompt) else tasks[idx]
                    pool.setdefault(task, []).append(Example(row["query"], row["pos"][0]))
                pools[idx] = pool
        builder = ICLPromptBuilder(
            self.tokenizer,
            self.template,
            self.separator,
            self.query_max_len,
            self.example_budget,
            self.append_eos,
        )
        self._collator = ICLCollator(
            self.tokenizer,
            self.sources,
            builder,
            self.mode,
            self.min_examples,
            self.max_examples,
            self.example_source,
            pools,
            fixed,
            tasks,
            self.seed,
            self.query_max_len,
            self.passage_max_len,
            self.append_eos,
            self.pad_to_multiple_of,
        )
        return self._collator
