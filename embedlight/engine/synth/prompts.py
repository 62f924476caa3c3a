"""Prompts of the two-step synthetic-data recipe of E5-mistral, written for this project.

Wang et al., 2024, "Improving Text Embeddings with Large Language Models" (E5-mistral): an LLM first
brainstorms a pool of embedding tasks, then writes one ``(query, positive, hard negative)`` example
per (task, sampled controls). Task families: asymmetric retrieval (short-long, long-short, and the
matching families short-short, long-long) and symmetric ones (STS, bitext), with language, length,
clarity and difficulty controls sampled per example.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

ASYMMETRIC = ("short-long", "long-short", "short-short", "long-long")
SYMMETRIC = ("sts", "bitext")
FAMILIES = ASYMMETRIC + SYMMETRIC

_BRAINSTORM = {
    "short-long": "text retrieval tasks in which a short query (a question or a few keywords) must find "
    "long relevant documents",
    "long-short": "text classification or retrieval tasks in which a long input text must be matched to "
    "a short label, title or summary",
    "short-short": "text matching tasks in which a short text must be matched to another short text",
    "long-long": "text matching tasks in which a long text must be matched to another long text",
}

# symmetric families use one fixed task each (as in E5-mistral); {language} and {target} filled in
_SYMMETRIC_TASKS = {
    "sts": "Retrieve semantically similar text.",
    "bitext": "Retrieve parallel sentences.",
}


@dataclass(frozen=True)
class Controls:
    """Sampled generation controls of one example (E5-mistral's placeholders)."""

    language: str
    query_length: str
    clarity: str
    difficulty: str
    num_words: int
    target_language: str = ""


def brainstorm_messages(family: str, language: str, n: int) -> list[dict[str, str]]:
    """Chat messages asking for ``n`` task descriptions of an asymmetric ``family`` as a JSON list."""
    if family not in _BRAINSTORM:
        raise ValueError(f"family {family!r} has no brainstorm step; asymmetric families: {ASYMMETRIC}")
    user = (
        f"Brainstorm {n} diverse and useful {_BRAINSTORM[family]}. The texts will be in {language}.\n"
        "Describe each task in one sentence that starts with a verb, like an instruction "
        '(e.g. "Retrieve recipes that use a given ingredient.").\n'
        'Reply with JSON only: a list of strings, e.g. ["task one", "task two"]. No other text.'
    )
    return [{"role": "user", "content": user}]


def symmetric_task(family: str) -> str:
    """The fixed task description of a symmetric family."""
    return _SYMMETRIC_TASKS[family]


def sample_controls(
    rng: random.Random, family: str, language: str, languages: list[str], lengths: dict[str, Any]
) -> Controls:
    """Draw the controls of one example: query length, clarity, difficulty, document words; for bitext
    a target language other than ``language`` (from ``languages``)."""
    target = ""
    if family == "bitext":
        others = [lang for lang in languages if lang != language] or [language]
        target = rng.choice(others)
    return Controls(
        language=language,
        query_length=rng.choice(list(lengths["query"])),
        clarity=rng.choice(["clear", "understandable with some effort", "ambiguous"]),
        difficulty=rng.choice(["high school", "college", "PhD"]),
        num_words=int(rng.choice(list(lengths["document_words"]))),
        target_language=target,
    )


def _keys_note() -> str:
    return (
        "Reply with a single JSON object with exactly these string keys, and nothing else:\n"
        '{"query": "...", "positive": "...", "hard_negative": "..."}'
    )


def generation_messages(family: str, task: str, c: Controls) -> list[dict[str, str]]:
    """Chat messages asking for one ``(query, positive, hard negative)`` example as a JSON object."""
    if family == "short-long":
        body = (
            f"You have been assigned a retrieval task: {task}\n"
            f"Write one {c.clarity} user query of {c.query_length}, at {c.difficulty} level, a positive "
            f"document of about {c.num_words} words that answers it, and a hard negative document that "
            "looks relevant but does not answer it."
        )
    elif family == "long-short":
        body = (
            f"You have been assigned a task: {task}\n"
            f"Write one input text of about {c.num_words} words at {c.difficulty} level as the query, "
            f"its correct short label, title or summary ({c.query_length}) as the positive, and a "
            "plausible but wrong one as the hard negative."
        )
    elif family == "short-short":
        body = (
            f"You have been assigned a text matching task: {task}\n"
            f"Write a short query ({c.query_length}), a short positive text ({c.query_length}) that "
            "matches it, and a short hard negative text that looks similar but does not match."
        )
    elif family == "long-long":
        body = (
            f"You have been assigned a text matching task: {task}\n"
            f"Write a query text of about {c.num_words} words, a positive text of about {c.num_words} "
            "words that matches it, and a hard negative text of similar length that does not."
        )
    elif family == "sts":
        body = (
            f"Write three sentences at {c.difficulty} level: the query, a positive that means the same "
            "with different words (high similarity), and a hard negative that shares many words with "
            "the query but means something clearly different (low similarity)."
        )
    elif family == "bitext":
        body = (
            f"Write a sentence in {c.language} as the query, its faithful translation into "
            f"{c.target_language} as the positive, and as the hard negative a {c.target_language} "
            "sentence that looks like a translation but changes the meaning."
        )
    else:
        raise ValueError(f"unknown task family {family!r}; valid: {FAMILIES}")
    language = "" if family == "bitext" else f"\nAll texts must be in {c.language}."
    return [{"role": "user", "content": f"{body}{language}\n{_keys_note()}"}]


DEMO_QUERY = "how long to boil an egg"
DEMO_POSITIVE = "Boil an egg for 7 to 9 minutes for a firm yolk."


def copies_demonstration(example: dict[str, str]) -> bool:
    """True when a reply's query or positive repeats the demonstration's (case and punctuation aside)."""

    def words(text: str) -> str:
        return " ".join(re.findall(r"\w+", text.lower()))

    demo = {words(DEMO_QUERY), words(DEMO_POSITIVE)}
    return words(example["query"]) in demo or words(example["positive"]) in demo


_DEMOS = {
    "tasks": (
        "Brainstorm 2 diverse and useful text retrieval tasks. Reply with JSON only: a list of strings.",
        '["Retrieve recipes that use a given ingredient.", "Find news articles about a given company."]',
    ),
    "example": (
        "Write a query about cooking, a positive that answers it and a hard negative that does not. "
        'Reply with a single JSON object: {"query": "...", "positive": "...", "hard_negative": "..."}',
        '{"query": "' + DEMO_QUERY + '", "positive": "' + DEMO_POSITIVE + '", '
        '"hard_negative": "Eggs are a cheap source of protein and vitamins."}',
    ),
}


def with_demonstration(messages: list[dict[str, str]], kind: str) -> list[dict[str, str]]:
    """Prepend one worked exchange (``kind``: ``tasks`` or ``example``) showing the reply format.

    Not part of E5-mistral's prompts (written for GPT-4); small local models follow the JSON format
    more often after seeing it once.
    """
    user, assistant = _DEMOS[kind]
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}, *messages]
