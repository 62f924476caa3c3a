"""Strict parsing and validation of LLM replies for ``embedlight-synth``.

A reply must be one JSON value. The only leniency: a surrounding markdown code fence, or prose
around a single JSON object/list, is cut away before ``json.loads`` (which itself is strict: no
trailing commas, single quotes or comments). Anything else is rejected and the request retried.
"""

from __future__ import annotations

import json
import re
from typing import Any

EXAMPLE_KEYS = ("query", "positive", "hard_negative")
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


class ReplyError(ValueError):
    """A reply that cannot be used; ``reason`` is a counter name (``malformed_json``, ``invalid``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_json(text: str, opener: str) -> Any:
    """Parse a reply that should hold one JSON value starting with ``opener`` (``{`` or ``[``)."""
    body = text.strip()
    fence = _FENCE.match(body)
    if fence:
        body = fence.group(1).strip()
    closer = "}" if opener == "{" else "]"
    if not body.startswith(opener):  # prose around it: take the outermost span
        start, end = body.find(opener), body.rfind(closer)
        if start < 0 or end < start:
            raise ReplyError("malformed_json", f"no JSON {opener}...{closer} in the reply")
        body = body[start : end + 1]
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise ReplyError("malformed_json", f"invalid JSON: {err.msg} at column {err.colno}") from None


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive key for deduplication."""
    return " ".join(text.lower().split())


def parse_tasks(text: str, limit: int, max_chars: int = 300) -> list[str]:
    """A brainstorm reply: a JSON list of task descriptions, deduplicated, at most ``limit``."""
    value = parse_json(text, "[")
    if not isinstance(value, list):
        raise ReplyError("invalid", f"expected a JSON list of task strings, got {type(value).__name__}")
    tasks: list[str] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > max_chars:
            continue
        key = normalise(item)
        if key not in seen:
            seen.add(key)
            tasks.append(item.strip())
    if not tasks:
        raise ReplyError("invalid", "the list holds no usable task description")
    return tasks[:limit]


def parse_example(text: str, max_chars: int) -> dict[str, str]:
    """A generation reply: ``{"query", "positive", "hard_negative"}``, all distinct non-empty strings."""
    value = parse_json(text, "{")
    if not isinstance(value, dict):
        raise ReplyError("invalid", f"expected a JSON object, got {type(value).__name__}")
    missing = [k for k in EXAMPLE_KEYS if k not in value]
    if missing:
        raise ReplyError("invalid", f"missing key(s) {missing}; got {sorted(value)}")
    out: dict[str, str] = {}
    for key in EXAMPLE_KEYS:
        item = value[key]
        if not isinstance(item, str) or not item.strip():
            raise ReplyError("invalid", f"{key!r} must be a non-empty string, got {item!r:.60}")
        if len(item) > max_chars:
            raise ReplyError("invalid", f"{key!r} has {len(item)} characters (max_chars={max_chars})")
        out[key] = item.strip()
    q, p, n = (normalise(out[k]) for k in EXAMPLE_KEYS)
    if q == p or p == n or q == n:
        raise ReplyError("invalid", "query, positive and hard negative must differ")
    return out
