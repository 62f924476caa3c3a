"""Instruction templates and per-row prompt overrides."""

from __future__ import annotations

import pytest

from embedlight.data.collator import ContrastiveCollator
from embedlight.data.mixture import Source
from embedlight.prompts.instructions import render, resolve_template


def test_named_templates():
    assert resolve_template("bge", "query") == "Represent this sentence for searching relevant passages: "
    assert resolve_template("e5", "document") == "passage: "
    assert (
        render(resolve_template("e5_mistral", "query"), {"task": "Find news"})
        == "Instruct: Find news\nQuery: "
    )
    instr = render(
        resolve_template("instructor", "query"),
        {"domain": "news", "text_type": "title", "objective": "retrieving articles"},
    )
    assert instr == "Represent the news title for retrieving articles: "
    assert resolve_template("my prefix: ", "query") == "my prefix: "
    assert resolve_template(None, "query") == ""


def test_row_prompt_fills_task_or_replaces():
    assert render("Instruct: {task}\nQuery: ", {}, prompt="Classify it") == "Instruct: Classify it\nQuery: "
    assert render("query: ", {}, prompt="Find: ") == "Find: "


def test_missing_field_is_named():
    with pytest.raises(KeyError, match="task"):
        render("Instruct: {task}\nQuery: ", {})


def test_collator_applies_instructions(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    sources = [
        Source("a", [], query_instruction="e5", doc_instruction="e5"),
        Source("b", [], query_instruction=None),
        Source("c", [], query_instruction="e5_mistral", instruction_fields={"task": "default task"}),
    ]
    col = ContrastiveCollator(tok, sources)
    assert col.query_instruction(0, None) == "query: " and col.doc_instruction(0) == "passage: "
    assert col.query_instruction(1, "row prompt") == ""  # no template: row prompts are not used
    assert col.query_instruction(2, None) == "Instruct: default task\nQuery: "
    assert col.query_instruction(2, "row task") == "Instruct: row task\nQuery: "
    batch = col([{"source": 0, "query": "the cat", "docs": ["a dog", "a fish"], "prompt": None}])
    assert batch.query["input_ids"].shape[0] == 1 and batch.docs["input_ids"].shape[0] == 2
    assert batch.query["instruction_mask"].sum() > 0 and batch.in_batch_negatives is True
