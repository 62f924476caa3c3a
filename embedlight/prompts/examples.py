"""In-context examples: the ``(query, response)`` pairs put before a query (bge-en-icl), and reading them
from FlagEmbedding's files."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


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
