"""In-context-learning (ICL) prompts for decoder embedders: bge-en-icl's few-shot queries.

bge-en-icl (Li et al., 2024, "Making Text Embedders Few-Shot Learners") prepends 0..n task examples
to each query and keeps documents raw::

    <instruct>{task}\\n<query>{q_1}\\n<response>{r_1}\\n\\n ... \\n\\n<instruct>{task}\\n<query>{query}\\n<response>

then appends [EOS] and pools its hidden state. Examples are drawn *dynamically* per query during
training (0 to 5, from other rows of the same task), which the paper found better than a fixed list;
at test time a task's fixed examples (FlagEmbedding's ``icl_examples/MTEB/<task>.json``) or none
(zero-shot) are used. E5-mistral (Wang et al., 2024, "Improving Text Embeddings with Large Language
Models") is the zero-shot special case with ``Instruct: {task}\\nQuery: {query}``.

The example budget is explicit: examples are dropped one at a time (the last first), the last one
kept is truncated when it alone does not fit, and every drop is counted in :class:`BudgetStats` and
logged. (FlagEmbedding's ``query_max_len - 512`` budget silently drops every example when
``query_max_len=512``, FlagEmbedding issue #1158.)
"""

from __future__ import annotations

import json
import logging
import os
import random
import string
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase

from embedlight.data.collator import ContrastiveCollator, text_hashes
from embedlight.data.datamodule import ContrastiveDataModule
from embedlight.data.jsonl import PAIRS
from embedlight.data.mixture import Source

log = logging.getLogger(__name__)

MODES = ("dynamic", "fixed", "zero_shot")
EXAMPLE_SOURCES = ("pool", "batch")

# name -> {"example": ..., "query": ...}; ``{query}`` splits the query template into prefix and suffix
ICL_TEMPLATES: dict[str, dict[str, str]] = {
    "bge_icl": {
        "example": "<instruct>{task}\n<query>{query}\n<response>{response}",
        "query": "<instruct>{task}\n<query>{query}\n<response>",
    },
    "e5_mistral": {  # E5-mistral is zero-shot; its example form here is ours, for ICL experiments
        "example": "Instruct: {task}\nQuery: {query}\nResponse: {response}",
        "query": "Instruct: {task}\nQuery: {query}",
    },
}
DEFAULT_SEPARATOR = "\n\n"
# PromptEOL (Jiang et al., 2023, "Scaling Sentence Embeddings with Large Language Models"): no training,
# the hidden state of the prompt's last token (the closing quote; no [EOS] appended).
PROMPTEOL_TEMPLATE = 'This sentence : "{text}" means in one word:"'


@dataclass(frozen=True)
class Example:
    """One in-context example: a query and its response (the relevant document / label / paraphrase)."""

    query: str
    response: str


def load_examples(source: str | Sequence[Mapping[str, str]] | Sequence[Example]) -> list[Example]:
    """Read examples from a JSON list / JSONL file or a list of mappings.

    Accepts FlagEmbedding's ``MTEB/<task>.json`` (``[{"query", "response"}]``) and ``AIR-Bench/*.jsonl``
    (``{"query", "pos": [...]}`` per line) layouts.

    Raises:
        ValueError: An entry has no query or no response/pos, naming the file and the entry.
    """
    if isinstance(source, str):
        path = os.path.expanduser(source)
        with open(path, encoding="utf-8") as fh:
            raw = fh.read()
        stripped = raw.lstrip()
        entries = (
            json.loads(raw)
            if stripped.startswith("[")
            else [json.loads(x) for x in raw.splitlines() if x.strip()]
        )
        where = path
    else:
        entries, where = list(source), "examples"
    out: list[Example] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, Example):
            out.append(entry)
            continue
        response = entry.get("response")
        if response is None and entry.get("pos"):
            response = entry["pos"][0]
        if not isinstance(entry.get("query"), str) or not isinstance(response, str):
            raise ValueError(f"{where}: example {i} needs a string 'query' and a 'response' (or 'pos' list)")
        out.append(Example(entry["query"], response))
    return out


def find_examples(examples_dir: str, task_name: str) -> str | None:
    """``<examples_dir>/<task_name>.json`` (or ``.jsonl``) if it exists."""
    for ext in (".json", ".jsonl"):
        path = os.path.join(os.path.expanduser(examples_dir), task_name + ext)
        if os.path.isfile(path):
            return path
    return None


def resolve_icl_template(name_or_template: str | Mapping[str, str]) -> dict[str, str]:
    """A template pair from a name in :data:`ICL_TEMPLATES` or a ``{example, query}`` mapping."""
    if isinstance(name_or_template, str):
        if name_or_template not in ICL_TEMPLATES:
            raise KeyError(f"unknown ICL template {name_or_template!r}; known: {sorted(ICL_TEMPLATES)}")
        return dict(ICL_TEMPLATES[name_or_template])
    pair = dict(name_or_template)
    if set(pair) != {"example", "query"}:
        raise ValueError(f"an ICL template needs exactly 'example' and 'query' keys, got {sorted(pair)}")
    return pair


def _check_fields(template: str, allowed: set[str], what: str) -> None:
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    if not names <= allowed:
        raise KeyError(
            f"{what} template {template!r} has unknown field(s) {sorted(names - allowed)}; allowed {sorted(allowed)}"
        )


@dataclass
class BudgetStats:
    """Counters of the example budget (cumulative; ``reset()`` to start over)."""

    queries: int = 0  # prompts built
    requested: int = 0  # examples asked for
    kept: int = 0  # examples that made it into a prompt
    dropped: int = 0  # examples removed whole by the budget
    truncated: int = 0  # examples shortened to fit
    all_dropped: int = 0  # prompts that asked for >= 1 example and got none

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)

    def reset(self) -> None:
        """Zero every counter."""
        for key in asdict(self):
            setattr(self, key, 0)


@dataclass
class ICLPrompt:
    """A built query: ``prefix`` (examples + instruction) goes before the query text, ``text`` is the
    query followed by the template's suffix (``\\n<response>`` for bge-en-icl)."""

    prefix: str
    text: str
    examples: list[Example] = field(default_factory=list)
    dropped: int = 0
    truncated: bool = False

    @property
    def full(self) -> str:
        """The whole prompt string."""
        return self.prefix + self.text


class ICLPromptBuilder:
    """Builds ``{examples}{instruction}{query}`` prompts under a token budget.

    Args:
        tokenizer: Counts tokens for the budget; without one the budget is not enforced.
        template: ``bge_icl`` (default), ``e5_mistral`` or a ``{example, query}`` mapping; the example
            template has ``{task}``, ``{query}``, ``{response}``, the query template ``{task}`` and
            ``{query}``.
        separator: Between consecutive examples and between the last example and the query.
        max_length: Token limit of the whole query ([EOS] included); examples get what the instruction
            and the query leave. None disables the budget.
        example_budget: A further cap on the examples' tokens (None: no cap beyond ``max_length``).
        append_eos: Whether one token is reserved for [EOS].
        min_truncated_tokens: A single remaining example is truncated to the budget only if at least
            this many of its tokens fit; otherwise it is dropped (and counted).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase | None = None,
        template: str | Mapping[str, str] = "bge_icl",
        separator: str = DEFAULT_SEPARATOR,
        max_length: int | None = None,
        example_budget: int | None = None,
        append_eos: bool = True,
        min_truncated_tokens: int = 16,
    ) -> None:
        pair = resolve_icl_template(template)
        _check_fields(pair["example"], {"task", "query", "response"}, "ICL example")
        _check_fields(pair["query"], {"task", "query"}, "ICL query")
        if "{query}" not in pair["query"]:
            raise ValueError(f"the ICL query template must contain '{{query}}', got {pair['query']!r}")
        self.tokenizer = tokenizer
        self.example_template = pair["example"]
        self.query_template = pair["query"]
        self.separator = separator
        self.max_length = max_length
        self.example_budget = example_budget
        self.append_eos = append_eos
        self.min_truncated_tokens = min_truncated_tokens
        self.stats = BudgetStats()

    def instruction(self, task: str) -> tuple[str, str]:
        """``(prefix, suffix)`` around the query for ``task`` (no examples)."""
        head, tail = self.query_template.split("{query}", 1)
        return head.replace("{task}", task), tail.replace("{task}", task)

    def render_example(self, task: str, example: Example) -> str:
        """One example in the template, followed by the separator."""
        return (
            self.example_template.format(task=task, query=example.query, response=example.response)
            + self.separator
        )

    def _ntok(self, text: str, special: bool = False) -> int:
        assert self.tokenizer is not None
        return len(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def _truncate(self, text: str, n_tokens: int) -> str:
        assert self.tokenizer is not None
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: max(n_tokens, 0)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def build(self, task: str, query: str, examples: Sequence[Example] = ()) -> ICLPrompt:
        """Build one prompt; examples that do not fit the budget are dropped/truncated and counted."""
        head, tail = self.instruction(task)
        rendered = [self.render_example(task, ex) for ex in examples]
        kept = list(examples)
        truncated_text: str | None = None
        if rendered and self.tokenizer is not None and self.max_length is not None:
            core = self._ntok(head + query + tail, special=True) + int(self.append_eos)
            budget = self.max_length - core
            if self.example_budget is not None:
                budget = min(budget, self.example_budget)
            for _ in range(4):  # re-check the joined prompt: BPE merges across pieces can shift counts
                lengths = [self._ntok(r) for r in rendered[: len(kept)]]
                while len(kept) > 1 and sum(lengths) > budget:  # drop one example at a time, last first
                    kept.pop()
                    lengths.pop()
                if kept and lengths[0] > budget:  # a single example left that does not fit
                    if budget >= self.min_truncated_tokens:
                        truncated_text = (
                            self._truncate(
                                rendered[0],
                                budget
                                - len(self.tokenizer(self.separator, add_special_tokens=False)["input_ids"]),
                            )
                            + self.separator
                        )
                    else:
                        kept.pop()
                prefix = self._join(rendered, kept, truncated_text) + head
                excess = (
                    self._ntok(prefix + query + tail, special=True) + int(self.append_eos) - self.max_length
                )
                if excess <= 0 or not kept:
                    break
                budget -= excess
        prefix = self._join(rendered, kept, truncated_text) + head
        dropped = len(examples) - len(kept)
        self._count(len(examples), len(kept), dropped, truncated_text is not None)
        return ICLPrompt(prefix, query + tail, kept, dropped, truncated_text is not None)

    @staticmethod
    def _join(rendered: Sequence[str], kept: Sequence[Example], truncated: str | None) -> str:
        if truncated is not None and len(kept) == 1:
            return truncated
        return "".join(rendered[: len(kept)])

    def _count(self, requested: int, kept: int, dropped: int, truncated: bool) -> None:
        s = self.stats
        s.queries += 1
        s.requested += requested
        s.kept += kept
        s.dropped += dropped
        s.truncated += int(truncated)
        if requested and not kept:
            s.all_dropped += 1
            if s.all_dropped == 1 or s.all_dropped % 100 == 0:
                log.warning(
                    "ICL budget: every example dropped for %d prompt(s) so far (max_length=%s, example_budget=%s); "
                    "raise the query length if few-shot prompts are intended",
                    s.all_dropped,
                    self.max_length,
                    self.example_budget,
                )
        elif dropped and s.dropped == dropped:
            log.info(
                "ICL budget: first example drop (%d of %d) at max_length=%s",
                dropped,
                requested,
                self.max_length,
            )


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

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        source = self.sources[rows[0]["source"]]
        if source.kind == PAIRS:  # scored pairs keep the plain instruction path
            return super().__call__(rows)
        before = self.builder.stats.as_dict()
        prefixes, texts = [], []
        for row in rows:
            task = self.task(row["source"], row.get("prompt"))
            prompt = self.builder.build(task, row["query"], self.draw(row, task, rows))
            prefixes.append(prompt.prefix)
            texts.append(prompt.text)
        after = self.builder.stats.as_dict()
        docs = [d for r in rows for d in r["docs"]]
        d_instr = [self.doc_instruction(r["source"]) for r in rows for _ in r["docs"]]
        return {
            "query": self._tok(texts, prefixes, self.query_max_len),
            "docs": self._tok(docs, d_instr, self.passage_max_len),
            "in_batch_negatives": source.in_batch_negatives,
            **text_hashes(rows),  # raw query texts: the examples do not make a duplicate distinct
            "icl": {k: after[k] - before[k] for k in ("kept", "dropped", "truncated", "all_dropped")},
        }


class ICLDataModule(ContrastiveDataModule):
    """:class:`ContrastiveDataModule` with few-shot ICL queries (bge-en-icl); documents stay raw.

    Everything of the parent applies (sources, weights, group size, ...). Sources may also set
    ``task`` (the task description when rows have no ``prompt``) and ``examples`` (a JSON/JSONL file or a
    list of ``{query, response}`` for fixed mode; defaults to ``<examples_dir>/<source name>.json``).

    Args:
        mode: ``dynamic`` (training default, as the paper), ``fixed`` or ``zero_shot``.
        min_examples: Fewest examples per query in dynamic mode (paper: 0).
        max_examples: Most examples per query (paper: 5); the fixed list is cut to it.
        example_source: ``pool`` (the source's other rows) or ``batch`` (the batch's other rows).
        template: ``bge_icl`` / ``e5_mistral`` or a ``{example, query}`` mapping.
        separator: Between examples.
        example_budget: Token cap on the examples (None: whatever ``query_max_len`` leaves).
        examples_dir: Folder of ``<task>.json`` files for fixed mode.
        default_task: Task description of rows and sources that have none.
        batch_size, group_size, query_max_len, passage_max_len, one_source_per_batch, num_workers, seed,
            append_eos, pad_to_multiple_of, prepare: As the parent; ``query_max_len`` bounds the whole
            few-shot query, examples included. Documents are always raw (no ``doc_instruction``).
    """

    ICL_KEYS = ("task", "examples")

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase | None = None,
        train_files: Sequence[str] | None = None,
        sources: Mapping[str, Mapping[str, Any]] | None = None,
        mode: str = "dynamic",
        min_examples: int = 0,
        max_examples: int = 5,
        example_source: str = "pool",
        template: str = "bge_icl",
        separator: str = DEFAULT_SEPARATOR,
        example_budget: int | None = None,
        examples_dir: str | None = None,
        default_task: str = "Given a query, retrieve relevant passages.",
        batch_size: int = 32,
        group_size: int = 8,
        query_max_len: int = 512,
        passage_max_len: int = 256,
        one_source_per_batch: bool = True,
        num_workers: int | str = "auto",
        seed: int = 42,
        append_eos: bool = True,
        pad_to_multiple_of: int | None = None,
        prepare: Callable[[], Any] | None = None,
    ) -> None:
        icl_specs: dict[str, dict[str, Any]] = {}
        plain: dict[str, dict[str, Any]] = {}
        for name, spec in (sources or {}).items():
            spec = dict(spec)
            icl_specs[str(name)] = {k: spec.pop(k) for k in self.ICL_KEYS if k in spec}
            plain[str(name)] = spec
        super().__init__(
            tokenizer=tokenizer,
            train_files=train_files,
            sources=plain,
            batch_size=batch_size,
            group_size=group_size,
            query_max_len=query_max_len,
            passage_max_len=passage_max_len,
            one_source_per_batch=one_source_per_batch,
            num_workers=num_workers,
            seed=seed,
            append_eos=append_eos,
            pad_to_multiple_of=pad_to_multiple_of,
            prepare=prepare,
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
            elif self.mode == "dynamic" and self.example_source == "pool" and source.kind != PAIRS:
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


def icl_prompt(
    task: str,
    examples: Sequence[Example | Mapping[str, str]] = (),
    template: str = "bge_icl",
    separator: str = DEFAULT_SEPARATOR,
) -> str:
    """The query prefix for inference: pass it as ``prompt=`` to sentence-transformers' ``encode``.

    The bge-en-icl query template ends with ``\\n<response>`` after the query; append that suffix to
    each query text (see :func:`icl_suffix`).
    """
    builder = ICLPromptBuilder(None, template, separator)
    return builder.build(task, "", load_examples(list(examples))).prefix


def icl_suffix(template: str = "bge_icl") -> str:
    """What follows the query in ``template`` (``\\n<response>`` for bge-en-icl, empty for e5_mistral)."""
    return ICLPromptBuilder(None, template).instruction("")[1]
