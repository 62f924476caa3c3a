"""Valid data that used to crash, undecodable bytes, empty texts and teacher scores (issue 10, items 1-2)."""

from __future__ import annotations

import json

import pytest

from embedlight.data.datamodule import load_rows
from embedlight.data.jsonl import read_jsonl
from embedlight.utils.io import DataFormatError


def _write(path, rows, prefix: bytes = b"") -> str:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    path.write_bytes(prefix + text.encode("utf-8"))
    return str(path)


def test_optional_fields_absent_from_the_first_thousand_rows_load(tmp_path):
    """FlagEmbedding files often start with rows without `neg`/`prompt`: the Arrow schema must not be
    inferred from them (it crashed with "Couldn't cast array of type string to null")."""
    plain = [{"query": f"q{i}", "pos": [f"p{i}"]} for i in range(1200)]
    rich = {
        "query": "last",
        "pos": ["p"],
        "neg": ["n1", "n2"],
        "prompt": "Given a query, retrieve passages.",
        "type": "normal",
        "category": "cs.LG",
        "pos_scores": [0.9],
        "neg_scores": [0.1, 0.2],
    }
    f = _write(tmp_path / "late.jsonl", [*plain, rich])
    rows, kind = load_rows([f])
    assert kind == "triplet" and len(rows) == 1201
    first, last = rows[0], rows[1200]
    assert first["neg"] == [] and first["prompt"] is None and first["pos_scores"] is None
    assert first["category"] is None and first["neg_scores"] is None
    assert last["neg"] == ["n1", "n2"] and last["prompt"] == rich["prompt"] and last["category"] == "cs.LG"
    assert last["pos_scores"] == [0.9] and last["neg_scores"] == [0.1, 0.2]


def test_late_prompt_in_a_pairs_free_file_and_late_scores(tmp_path):
    rows = [{"query": f"q{i}", "pos": [f"p{i}"], "neg": [f"n{i}"]} for i in range(1100)]
    rows.append({"query": "q", "pos": ["p"], "neg": ["n"], "prompt": "task", "neg_scores": [1]})
    loaded, _ = load_rows([_write(tmp_path / "late_prompt.jsonl", rows)])
    assert loaded[1100]["prompt"] == "task" and loaded[1100]["neg_scores"] == [1.0]


@pytest.mark.parametrize("via", ["read_jsonl", "load_rows"])
def test_undecodable_byte_names_file_line_and_column(tmp_path, via):
    path = tmp_path / "latin1.jsonl"
    good = json.dumps({"query": "q", "pos": ["p"]}).encode()
    path.write_bytes(good + b"\n" + good + b"\n" + b'{"query": "caf\xe9", "pos": ["p"]}\n')
    with pytest.raises(DataFormatError) as err:
        if via == "read_jsonl":
            list(read_jsonl(str(path)))
        else:
            load_rows([str(path)])
    assert f"{path}:3" in str(err.value) and "UTF-8" in str(err.value) and "0xe9" in str(err.value)
    assert err.value.line == 3


def test_utf8_bom_is_accepted(tmp_path):
    f = _write(tmp_path / "bom.jsonl", [{"query": "q", "pos": ["p"]}], prefix=b"\xef\xbb\xbf")
    rows, kind = load_rows([f])
    assert kind == "triplet" and rows[0]["query"] == "q"


def test_null_neg_means_no_negatives(tmp_path):
    f = _write(tmp_path / "null.jsonl", [{"query": "q", "pos": ["p"], "neg": None}])
    assert list(read_jsonl(f))[0]["neg"] == []


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ({"query": "", "pos": ["p"]}, "query", "empty string"),
        ({"query": "   ", "pos": ["p"]}, "query", "empty string"),
        ({"query": "q", "pos": [""]}, "pos[0]", "empty string"),
        ({"query": "q", "pos": ["p"], "neg": ["n", ""]}, "neg[1]", "empty string"),
        ({"query": None, "pos": ["p"]}, "query", "is null"),
        ({"query": "q", "pos": None}, "pos", "is null"),
        ({"query": "q", "pos": ["p", "p2"], "pos_scores": [1.0]}, "pos_scores", "1 score(s) for 2"),
        ({"query": "q", "pos": ["p"], "neg": ["n"], "neg_scores": [0.1, 0.2]}, "neg_scores", "2 score(s)"),
        ({"query": "q", "pos": ["p"], "pos_scores": ["high"]}, "pos_scores[0]", "finite number"),
        ({"query": "q", "pos": ["p"], "pos_scores": 0.5}, "pos_scores", "list of numbers"),
        ({"query": "q", "pos": ["p"], "category": 3}, "category", "expected a string"),
    ],
)
def test_bad_fields_name_file_line_and_field(tmp_path, row, field, problem):
    f = _write(tmp_path / "bad.jsonl", [{"query": "ok", "pos": ["ok"]}, row])
    with pytest.raises(DataFormatError) as err:
        list(read_jsonl(f))
    assert f"{f}:2: field {field!r}" in str(err.value) and problem in str(err.value)


def test_empty_pair_text_is_rejected(tmp_path):
    f = _write(tmp_path / "pairs.jsonl", [{"text1": "a", "text2": "", "score": 1}])
    with pytest.raises(DataFormatError, match=r"pairs.jsonl:1: field 'text2': is an empty string"):
        list(read_jsonl(f))
