"""Malformed rows fail with file, line and field named."""

from __future__ import annotations

import json

import pytest

from embedlight.data.jsonl import RowKind, read_jsonl, sniff_kind
from embedlight.utils.io import DataFormatError, iter_records


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_valid_triplets_and_pairs(tmp_path):
    f = _write(
        tmp_path / "t.jsonl",
        [{"query": "q", "pos": ["p"], "neg": ["n"], "prompt": "task"}, "", {"query": "q2", "pos": ["p2"]}],
    )
    rows = list(read_jsonl(f))
    assert [r["query"] for r in rows] == ["q", "q2"]
    assert rows[1]["neg"] == [] and rows[0]["prompt"] == "task"
    assert sniff_kind(f) == RowKind.TRIPLET
    g = _write(
        tmp_path / "p.jsonl",
        [{"text1": "a", "text2": "b", "score": 4}, {"sentence1": "a", "sentence2": "b", "label": 0}],
    )
    assert sniff_kind(g) == RowKind.PAIRS
    assert [r["score"] for r in read_jsonl(g)] == [4.0, 0.0]


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ({"pos": ["p"]}, "query", "missing"),
        ({"query": "q", "pos": "p"}, "pos", "got a string"),
        ({"query": "q", "pos": []}, "pos", "at least 1"),
        ({"query": "q", "pos": ["p"], "neg": ["n", 3]}, "neg[1]", "expected a string"),
        ({"query": 5, "pos": ["p"]}, "query", "expected a string"),
    ],
)
def test_triplet_errors_name_file_line_field(tmp_path, row, field, problem):
    f = _write(tmp_path / "bad.jsonl", [{"query": "ok", "pos": ["ok"]}, row])
    with pytest.raises(DataFormatError) as err:
        list(read_jsonl(f))
    msg = str(err.value)
    assert f"{f}:2" in msg and f"field {field!r}" in msg and problem in msg
    assert err.value.line == 2 and err.value.field == field


def test_invalid_json_and_pair_score(tmp_path):
    f = _write(tmp_path / "broken.jsonl", [{"query": "q", "pos": ["p"]}, "{not json"])
    with pytest.raises(DataFormatError, match=r"broken.jsonl:2: invalid JSON"):
        list(read_jsonl(f))
    g = _write(tmp_path / "pairs.jsonl", [{"text1": "a", "text2": "b", "score": "high"}])
    with pytest.raises(DataFormatError, match=r"pairs.jsonl:1: field 'score'"):
        list(read_jsonl(g))


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        list(read_jsonl("/nonexistent/nope.jsonl"))


def test_iter_records_yields_objects_and_names_the_line_of_a_non_object(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{"b": 2}\n[1, 2]\n')
    it = iter_records(str(path))
    assert [next(it), next(it)] == [(1, {"a": 1}), (3, {"b": 2})]  # BOM dropped, blank line skipped
    with pytest.raises(DataFormatError, match=r"records.jsonl:4: expected a JSON object, got list"):
        next(it)


def test_row_kind_is_an_enum_and_an_unknown_kind_lists_the_valid_ones(tmp_path):
    from embedlight.data.datamodule import load_rows
    from embedlight.data.mixture import Source

    assert RowKind.parse("pairs") is RowKind.PAIRS and f"{RowKind.TRIPLET}" == "triplet"
    assert {k.value for k in RowKind} == {"triplet", "pairs", "text"}
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"query": "q", "pos": ["p"]}) + "\n")
    with pytest.raises(
        ValueError,
        match=r"data\.sources\.a\.kind: unknown data kind 'pair'; valid kinds: triplet, pairs, text",
    ):
        load_rows([str(f)], "pair", "data.sources.a.kind")
    with pytest.raises(ValueError, match=r"data\.sources\.s\.kind: unknown data kind 'triplets'"):
        Source("s", [], kind="triplets")
    with pytest.raises(ValueError, match=r"unknown data kind 'qa'; valid kinds: triplet, pairs, text"):
        list(read_jsonl(str(f), "qa"))
    with pytest.raises(ValueError, match=r"needs triplet or scored-pair rows, found 'text'"):
        load_rows([str(f)], RowKind.TEXT)
