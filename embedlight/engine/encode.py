"""Encode texts the way a model was trained: per-row query prefixes (instruction, row prompt, ICL
examples) and batched encoding grouped by prefix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from embedlight.models.load import LoadedModel
from embedlight.prompts.instructions import render, resolve_template


def query_prefixes(
    rows: Sequence[Mapping[str, Any]],
    model: LoadedModel,
    query_instruction: str | None = None,
    instruction_fields: Mapping[str, str] | None = None,
    use_row_prompt: bool = True,
    icl_task: str | None = None,
    icl_examples: Any = None,
) -> tuple[list[str], list[str]]:
    """Per row, the query prefix and query text the model sees, as in training.

    Args:
        rows: Training rows (``query``, optional ``prompt``).
        model: The loaded model (its saved query prompt is the default).
        query_instruction: Override: a template name (``bge``, ``e5``, ...) or a literal.
        instruction_fields: Template fields (``{task}``, ...), merged over the model's.
        use_row_prompt: A row's ``prompt`` fills ``{task}`` or replaces the prefix, as the collator does.
        icl_task: With an ICL model (bge-en-icl), the task instruction; enables ICL prompts.
        icl_examples: Few-shot examples (a JSON/JSONL file or a list of ``{query, response}``) put before
            each query, in the template the model was exported with (default ``DEFAULT_ICL_TEMPLATE``).

    Returns:
        ``(prefixes, texts)``, one of each per row.
    """
    fields = {**model.fields, **dict(instruction_fields or {})}
    if icl_task is not None or model.icl is not None:
        from embedlight.prompts.examples import load_examples
        from embedlight.prompts.icl import DEFAULT_ICL_TEMPLATE, DEFAULT_SEPARATOR, icl_prompt, icl_suffix

        saved = dict(model.icl or {})  # the export's {example, query, separator}: the trained template
        template = {k: v for k, v in saved.items() if k in ("example", "query")} or DEFAULT_ICL_TEMPLATE
        separator = saved.get("separator", DEFAULT_SEPARATOR)
        examples = load_examples(icl_examples) if icl_examples else []  # a file or a list, read once
        suffix = icl_suffix(template)
        prefixes = []
        for row in rows:
            task = (row.get("prompt") if use_row_prompt else None) or icl_task or ""
            prefixes.append(icl_prompt(task, examples, template, separator))
        return prefixes, [row["query"] + suffix for row in rows]
    template = (
        resolve_template(query_instruction, "query")
        if query_instruction is not None
        else model.prompts.get("query", "")
    )
    prefixes = [
        render(template, fields, row.get("prompt") if use_row_prompt and template else None) for row in rows
    ]
    return prefixes, [row["query"] for row in rows]


def encode_prefixed(
    encoder: Any,
    texts: Sequence[str],
    prefixes: Sequence[str],
    kind: str = "query",
    batch_size: int = 64,
    show_progress: bool = False,
) -> np.ndarray:
    """Encode ``prefixes[i] + texts[i]`` (the prefix as the model's instruction), grouped by prefix.

    Returns:
        (N, D) float32 array in input order.
    """
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(prefixes):
        groups.setdefault(p, []).append(i)
    out: np.ndarray | None = None
    for prefix, idx in groups.items():
        emb = encoder.encode(
            [texts[i] for i in idx],
            kind=kind,
            instruction=prefix,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        emb = emb.float().cpu().numpy() if isinstance(emb, torch.Tensor) else np.asarray(emb, np.float32)
        if out is None:
            out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)  # (N, D)
        out[idx] = emb
    if out is None:
        raise ValueError("nothing to encode")
    return out
