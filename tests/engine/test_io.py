"""Row I/O of the data engine."""

from __future__ import annotations

import json

import pytest

from embedlight.engine.corpus import pool_corpus, read_corpus, read_triplets, write_jsonl
from embedlight.utils.io import DataFormatError


def test_write_jsonl_keeps_one_row_per_line(tmp_path):
    rows = [{"text": "a\u2028b\u2029c\x85d\r\ne é"}, {"text": "second"}]
    path = tmp_path / "o.jsonl"
    assert write_jsonl(str(path), rows) == 2
    text = path.read_text(encoding="utf-8")
    assert "é" in text and len(text.splitlines()) == 2
    assert [json.loads(line) for line in text.splitlines()] == rows
    assert not (tmp_path / "o.jsonl.tmp").exists()


def test_readers(tmp_path):
    beir = tmp_path / "corpus.jsonl"
    beir.write_text(
        json.dumps({"_id": "1", "title": "T", "text": "body"}) + "\n" + json.dumps({"text": "plain"}) + "\n"
    )
    assert read_corpus(str(tmp_path)) == ["T body", "plain"]
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"query": "q", "pos": ["a", "b"], "neg": ["b", "c"], "category": "c3"}) + "\n")
    got = read_triplets(str(rows))
    assert got[0]["category"] == "c3" and pool_corpus(got) == ["a", "b", "c"]
    rows.write_text(json.dumps({"query": "q", "pos": "a"}) + "\n")
    with pytest.raises(DataFormatError, match=r"rows.jsonl:1: field 'pos'"):
        read_triplets(str(rows))
