"""Query-side instruction and prefix templates.

* BGE / C-Pack (Xiao et al., 2023): ``Represent this sentence for searching relevant passages: ``.
* E5 (Wang et al., 2022): ``query: `` / ``passage: ``.
* E5-mistral (Wang et al., 2024, "Improving Text Embeddings with Large Language Models"):
  ``Instruct: {task}\\nQuery: {query}``; documents raw.
* INSTRUCTOR (Su et al., 2023, "One Embedder, Any Task"):
  ``Represent the {domain} {text_type} for {objective}: ``.

A template is either one of the names above or a literal string. Named fields (``{task}``,
``{domain}``, ...) come from the data source's ``instruction_fields``; a row's ``prompt`` field
overrides per row: it fills ``{task}`` when the template has one and replaces the prefix otherwise.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

TEMPLATES: dict[str, dict[str, str]] = {
    "none": {"query": "", "document": ""},
    "bge": {"query": "Represent this sentence for searching relevant passages: ", "document": ""},
    "e5": {"query": "query: ", "document": "passage: "},
    "e5_mistral": {"query": "Instruct: {task}\nQuery: ", "document": ""},
    "instructor": {
        "query": "Represent the {domain} {text_type} for {objective}: ",
        "document": "Represent the {domain} document for retrieval: ",
    },
}


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def resolve_template(spec: str | None, kind: str) -> str:
    """Return the template string for ``spec`` (a name from :data:`TEMPLATES` or a literal)."""
    if spec is None:
        return ""
    if spec in TEMPLATES:
        return TEMPLATES[spec][kind]
    return spec


def render(template: str, fields: Mapping[str, str] | None = None, prompt: str | None = None) -> str:
    """Fill a template.

    Args:
        template: Template string, possibly with ``{task}`` / ``{domain}`` / ... fields.
        fields: Values for the fields (from the data source config).
        prompt: A row's ``prompt``: fills ``{task}`` if present, else replaces the whole prefix.

    Returns:
        The instruction prefix to put before the text.

    Raises:
        KeyError: A field is missing, naming it and the template.
    """
    values = dict(fields or {})
    names = _fields(template)
    if prompt is not None:
        if "task" in names:
            values["task"] = prompt
        else:
            return prompt
    missing = names - values.keys()
    if missing:
        raise KeyError(f"instruction template {template!r} needs field(s) {sorted(missing)}")
    return template.format(**values) if names else template
