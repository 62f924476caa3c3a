"""The one JSONL writer in its streaming modes (the batch call ``write_jsonl`` is tested in
tests/engine/test_io.py): atomic streaming never leaves a part, appending keeps every finished line."""

from __future__ import annotations

import json

import pytest

from embedlight.utils.io import JsonlWriter, iter_records


def test_atomic_stream_appears_only_when_complete(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"old": true}\n')
    with JsonlWriter(path) as out:
        out.write({"a": "x\u2028y"})
        assert json.loads(path.read_text()) == {"old": True}  # the old file until close
        out.write({"b": 2})
    assert [r for _, r in iter_records(str(path))] == [{"a": "x\u2028y"}, {"b": 2}] and out.count == 2
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # U+2028 escaped: one row per line
    assert not (tmp_path / "out.jsonl.tmp").exists()


def test_atomic_stream_failing_midway_leaves_the_old_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"old": true}\n')
    with pytest.raises(RuntimeError), JsonlWriter(path) as out:
        out.write({"new": 1})
        raise RuntimeError("crash")
    assert path.read_text() == '{"old": true}\n' and not (tmp_path / "out.jsonl.tmp").exists()


def test_append_flushes_each_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"n": 0}\n')
    writer = JsonlWriter(path, append=True)
    writer.write({"n": 1})
    assert path.read_text() == '{"n": 0}\n{"n": 1}\n'  # on disk before close
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(RuntimeError), JsonlWriter(path, append=True) as out:
        out.write({"n": 2})
        raise RuntimeError("crash")
    assert [r["n"] for _, r in iter_records(str(path))] == [0, 1, 2]  # appended lines stay
