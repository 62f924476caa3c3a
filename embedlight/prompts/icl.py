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

import logging
import string
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from transformers import PreTrainedTokenizerBase

from embedlight.prompts.examples import Example, ExampleSource, load_examples

log = logging.getLogger(__name__)

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
DEFAULT_ICL_TEMPLATE = "bge_icl"  # the default everywhere: data, module, export, evaluation, mining
DEFAULT_SEPARATOR = "\n\n"
# PromptEOL (Jiang et al., 2023, "Scaling Sentence Embeddings with Large Language Models"): no training,
# the hidden state of the prompt's last token (the closing quote; no [EOS] appended).
PROMPTEOL_TEMPLATE = 'This sentence : "{text}" means in one word:"'


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
        template: A name in :data:`ICL_TEMPLATES` (default :data:`DEFAULT_ICL_TEMPLATE`) or a
            ``{example, query}`` mapping; the example template has ``{task}``, ``{query}``,
            ``{response}``, the query template ``{task}`` and ``{query}``.
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
        template: str | Mapping[str, str] = DEFAULT_ICL_TEMPLATE,
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


def icl_prompt(
    task: str,
    examples: ExampleSource = (),
    template: str | Mapping[str, str] = DEFAULT_ICL_TEMPLATE,
    separator: str = DEFAULT_SEPARATOR,
) -> str:
    """The query prefix for inference: pass it as ``prompt=`` to sentence-transformers' ``encode``.

    ``examples`` is a list of :class:`Example` / ``{query, response}`` or an examples file (see
    :func:`~embedlight.prompts.examples.load_examples`). The bge-en-icl query template ends with
    ``\\n<response>`` after the query; append that suffix to each query text (see :func:`icl_suffix`).
    """
    builder = ICLPromptBuilder(None, template, separator)
    return builder.build(task, "", load_examples(examples)).prefix


def icl_suffix(template: str | Mapping[str, str] = DEFAULT_ICL_TEMPLATE) -> str:
    """What follows the query in ``template`` (``\\n<response>`` for bge-en-icl, empty for e5_mistral)."""
    return ICLPromptBuilder(None, template).instruction("")[1]
