"""The one output guard and the one summary writer that every command uses."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from embedlight.utils.outputs import OutputExistsError, guard_output, plain, write_summary


def test_a_file_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "o.jsonl"
    assert guard_output(out) is False  # nothing there yet
    out.write_text("old\n")
    with pytest.raises(OutputExistsError) as err:
        guard_output(out, key="output")
    assert str(err.value) == f"{out} exists. Replace it with overwrite=true or choose another output."
    assert isinstance(err.value, FileExistsError)
    assert guard_output(out, overwrite=True) is True
    assert out.read_text() == "old\n"  # a file is replaced by its (atomic) writer, not removed here


def test_a_folder_counts_only_when_it_holds_something(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    assert guard_output(folder) is False  # empty: nothing to replace
    (folder / "a.jsonl").write_text("x")
    (folder / "sub").mkdir()
    with pytest.raises(OutputExistsError, match=r"already holds files \(a\.jsonl, sub/\)\. Replace it"):
        guard_output(folder, what="files", key="dataset.out_dir")


def test_found_and_remove_name_what_belongs_to_the_command(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run / "notes.txt").write_text("mine")
    kw = dict(found=["checkpoints/*.ckpt"], remove=["checkpoints"], what="a run", key="paths.output_dir")
    with pytest.raises(OutputExistsError) as err:
        guard_output(run, alternatives="continue it with resume=auto", **kw)
    assert str(err.value) == (
        f"{run} already holds a run (checkpoints/*.ckpt). Continue it with resume=auto, replace it with "
        "overwrite=true (deletes checkpoints) or choose another paths.output_dir."
    )
    assert (run / "checkpoints" / "last.ckpt").exists()  # refusing changes nothing
    assert guard_output(run, overwrite=True, **kw) is True
    assert not (run / "checkpoints").exists() and (run / "notes.txt").read_text() == "mine"
    assert guard_output(run, found=[]) is False  # nothing of the command's own: no refusal


def test_long_listings_are_cut(tmp_path):
    for i in range(8):
        (tmp_path / f"f{i}").write_text("")
    with pytest.raises(OutputExistsError, match=r"f4, \.\.\. \(8 entries\)"):
        guard_output(tmp_path)


def test_summary_is_written_atomically_and_printed(tmp_path, capsys):
    path = tmp_path / "sub" / "stats.json"
    got = write_summary(
        path, {"n": 2, "settings": plain(OmegaConf.create({"a": "${b}", "b": 1}))}, ["l1", "l2"]
    )
    assert got == {"n": 2, "settings": {"a": 1, "b": 1}}
    assert json.loads(path.read_text()) == got and not (tmp_path / "sub" / "stats.json.tmp").exists()
    assert capsys.readouterr().out == "l1\nl2\n"
    write_summary(None, {"n": 1}, "one line")  # no file: print only
    assert capsys.readouterr().out == "one line\n"
    assert plain([1, 2]) == [1, 2]  # plain values pass through
