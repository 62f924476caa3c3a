"""Reading in-context examples: FlagEmbedding's JSON lists and JSONL files, through the project's one
JSONL reader, with errors that name the file, the line or entry, and the field."""

from __future__ import annotations

import json
import os

import pytest

from embedlight.prompts.examples import Example, find_examples, load_examples
from embedlight.utils.io import DataFormatError

LS = "\u2028"  # LINE SEPARATOR: JSON keeps it raw, str.splitlines() splits on it


def write(path, text: str) -> str:
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def test_load_examples_flagembedding_files(shared_data):
    mteb = os.path.join(shared_data, "flagembedding_examples", "icl_examples", "MTEB", "STSBenchmark.json")
    ex = load_examples(mteb)
    assert ex and all(isinstance(e, Example) and e.query and e.response for e in ex)
    air = os.path.join(shared_data, "flagembedding_examples", "icl_examples", "AIR-Bench")
    files = [os.path.join(r, f) for r, _, fs in os.walk(air) for f in fs if f.endswith(".jsonl")]
    assert files and load_examples(files[0])
    with pytest.raises(ValueError, match="needs a string 'query'"):
        load_examples([{"query": "q"}])


def test_jsonl_and_json_list_layouts(tmp_path):
    rows = [{"query": "q1", "pos": ["p1", "p1b"], "neg": ["n"]}, {"query": "q2", "response": "r2"}]
    jsonl = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    listed = write(tmp_path / "b.json", "\ufeff  \n" + json.dumps(rows, indent=2))  # BOM, blank start
    want = [Example("q1", "p1"), Example("q2", "r2")]
    assert load_examples(jsonl) == want
    assert load_examples(listed) == want
    assert load_examples(rows) == want
    assert load_examples([Example("a", "b"), {"query": "c", "response": "d"}]) == [
        Example("a", "b"),
        Example("c", "d"),
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_line_separator_inside_a_text_stays_in_its_example(tmp_path, suffix):
    rows = [{"query": f"first{LS}half", "response": f"a{LS}b"}, {"query": "two", "response": "2"}]
    if suffix == ".jsonl":  # ensure_ascii=False writes U+2028 raw, as many JSONL writers do
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    else:
        text = json.dumps(rows, ensure_ascii=False)
    assert LS in text
    assert len(text.splitlines()) > len(rows)  # what the old reader split on
    got = load_examples(write(tmp_path / f"ex{suffix}", text))
    assert got == [Example(f"first{LS}half", f"a{LS}b"), Example("two", "2")]


def test_a_malformed_jsonl_line_names_file_line_and_field(tmp_path):
    path = write(
        tmp_path / "bad.jsonl",
        json.dumps({"query": "ok", "response": "fine"})
        + "\n\n"  # a blank line still counts
        + json.dumps({"query": "no answer"})
        + "\n",
    )
    with pytest.raises(
        DataFormatError, match=r"bad\.jsonl:3: field 'response': .*needs a string 'query'"
    ) as err:
        load_examples(path)
    assert (err.value.path, err.value.line, err.value.field) == (path, 3, "response")

    path = write(tmp_path / "q.jsonl", json.dumps({"query": 7, "pos": ["p"]}) + "\n")
    with pytest.raises(DataFormatError, match=r"q\.jsonl:1: field 'query'"):
        load_examples(path)
    path = write(tmp_path / "pos.jsonl", json.dumps({"query": "q", "pos": [3]}) + "\n")
    with pytest.raises(DataFormatError, match=r"pos\.jsonl:1: field 'pos'"):
        load_examples(path)
    path = write(tmp_path / "json.jsonl", '{"query": "a", "response": "b"}\n{"query": "a",\n')
    with pytest.raises(DataFormatError, match=r"json\.jsonl:2: invalid JSON .*column"):
        load_examples(path)
    path = write(tmp_path / "arr.jsonl", '{"query": "a", "response": "b"}\n"just text"\n')
    with pytest.raises(DataFormatError, match=r"arr\.jsonl:2: expected a JSON object"):
        load_examples(path)


def test_a_malformed_json_list_entry_names_file_entry_and_field(tmp_path):
    entries = [{"query": "a", "response": "b"}, {"query": "c", "response": ["not", "text"]}]
    path = write(tmp_path / "bad.json", json.dumps(entries))
    with pytest.raises(ValueError, match=r"bad\.json: entry 1: field 'response'"):
        load_examples(path)
    path = write(tmp_path / "scalar.json", json.dumps([{"query": "a", "response": "b"}, "text"]))
    with pytest.raises(ValueError, match=r"scalar\.json: entry 1: .*got a str"):
        load_examples(path)
    path = write(tmp_path / "broken.json", '[\n  {"query": "a", "response": "b"},\n  {"query": }\n]')
    with pytest.raises(DataFormatError, match=r"broken\.json:3: invalid JSON"):
        load_examples(path)
    path = tmp_path / "latin1.json"
    path.write_bytes(b'[\n{"query": "caf\xe9", "response": "b"}]')
    with pytest.raises(DataFormatError, match=r"latin1\.json:2: not valid UTF-8 at column 15"):
        load_examples(str(path))
    with pytest.raises(ValueError, match=r"examples: entry 0: field 'query'"):
        load_examples([{"response": "r"}])


def test_missing_file_and_find_examples(tmp_path):
    with pytest.raises(FileNotFoundError, match="ICL examples file not found"):
        load_examples(str(tmp_path / "nope.json"))
    (tmp_path / "TaskA.jsonl").write_text(json.dumps({"query": "q", "response": "r"}) + "\n")
    assert find_examples(str(tmp_path), "TaskA") == str(tmp_path / "TaskA.jsonl")
    assert find_examples(str(tmp_path), "TaskB") is None
