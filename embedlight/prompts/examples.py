"""In-context examples: the ``(query, response)`` pairs put before a query (bge-en-icl), and reading them
from FlagEmbedding's files.

A JSONL file is read with the project's one JSONL reader (:func:`embedlight.utils.io.iter_records`: one
row per ``\\n``-terminated line, so a U+2028 inside a text stays in its example); a JSON list with
:mod:`json` (decoded first, so a bad byte is named by line and column). A malformed example names the
file, the line (JSONL) or entry (JSON list) and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from embedlight.utils.io import DataFormatError, iter_records

WHAT = "ICL examples file"


@dataclass(frozen=True)
class Example:
    """One in-context example: a query and its response (the relevant document / label / paraphrase)."""

    query: str
    response: str


ExampleSource = str | os.PathLike | Iterable[Mapping[str, Any] | Example]


def _is_json_list(path: str) -> bool:
    """Whether the file's first non-blank character (after a BOM) opens a JSON list."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        while char := fh.read(1):
            if not char.isspace():
                return char == "["
    return False


def _read_list(path: str) -> list[Any]:
    """The entries of a JSON-list examples file; errors name the file, the line and the column."""
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataFormatError(
            path, line, None, f"not valid UTF-8 at column {column} (re-encode the file as UTF-8)"
        ) from None
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(
            path, err.lineno, None, f"invalid JSON ({err.msg} at column {err.colno})"
        ) from err
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of {{query, response}}, got {type(entries).__name__}")
    return entries


class _BadExample(ValueError):
    """An entry that is not an example: the field at fault and the problem (located by the caller)."""

    def __init__(self, field: str | None, problem: str) -> None:
        super().__init__(problem)
        self.field, self.problem = field, problem


_NEED = "an example needs a string 'query' and a 'response' (or 'pos' list)"


def _example(entry: Any) -> Example:
    """One entry -> :class:`Example` (raises :class:`_BadExample`)."""
    if isinstance(entry, Example):
        return entry
    if not isinstance(entry, Mapping):
        raise _BadExample(None, f"{_NEED}; got a {type(entry).__name__}, not an object")
    if not isinstance(entry.get("query"), str):
        raise _BadExample("query", f"{_NEED}; got {entry.get('query')!r:.60}")
    response, field = entry.get("response"), "response"
    if response is None and entry.get("pos"):
        pos, field = entry["pos"], "pos"
        response = pos[0] if isinstance(pos, Sequence) and not isinstance(pos, str) else pos
    if not isinstance(response, str):
        raise _BadExample(field, f"{_NEED}; got {response!r:.60}")
    return Example(entry["query"], response)


def _located(entries: Iterable[Any], where: str) -> list[Example]:
    """Examples of a JSON list or an in-memory list; an error names ``where``, the entry and the field."""
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(_example(entry))
        except _BadExample as err:
            field = f": field {err.field!r}" if err.field else ""
            raise ValueError(f"{where}: entry {i}{field}: {err.problem}") from None
    return out


def load_examples(source: ExampleSource) -> list[Example]:
    """Read examples from a JSON list / JSONL file or a list of mappings (or :class:`Example` objects).

    Accepts FlagEmbedding's ``MTEB/<task>.json`` (``[{"query", "response"}]``) and ``AIR-Bench/*.jsonl``
    (``{"query", "pos": [...]}`` per line) layouts; a file is a JSON list if its first non-blank
    character is ``[``, JSONL otherwise.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Invalid UTF-8 or JSON, or an entry without a string query or response/pos; the
            message names the file, the line (JSONL; a :class:`~embedlight.utils.io.DataFormatError`)
            or the entry (JSON list), and the field.
    """
    if not isinstance(source, (str, os.PathLike)):
        return _located(source, "examples")
    path = os.path.expanduser(os.fspath(source))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{WHAT} not found: {path}")
    if _is_json_list(path):
        return _located(_read_list(path), path)
    out = []
    for line, row in iter_records(path, WHAT):
        try:
            out.append(_example(row))
        except _BadExample as err:
            raise DataFormatError(path, line, err.field, err.problem) from None
    return out


def find_examples(examples_dir: str, task_name: str) -> str | None:
    """``<examples_dir>/<task_name>.json`` (or ``.jsonl``) if it exists."""
    for ext in (".json", ".jsonl"):
        path = os.path.join(os.path.expanduser(examples_dir), task_name + ext)
        if os.path.isfile(path):
            return path
    return None
