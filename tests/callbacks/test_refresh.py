"""ANCE-style refresh: versions on disk, negatives swapped, exact resume (1 process)."""

from __future__ import annotations

import glob
import json
import os
import shutil

import pytest
import torch

from embedlight.training.run import run
from tests.helpers import compose_cfg, tiny_overrides

REFRESH = (
    "+callbacks.refresh={_target_: embedlight.callbacks.RefreshNegatives, every_n_steps: 2, negatives: 3,"
    " range_start: 0, range_end: 20, batch_size: 32}"
)
EVERY = [
    REFRESH,
    "data.num_workers=0",
    "callbacks.checkpoint.every_n_train_steps=2",
    "callbacks.checkpoint.save_top_k=-1",
    "callbacks.evaluation=null",
]


def test_refresh_writes_versions_and_resume_is_exact(tiny_bert, tmp_path):
    a = tmp_path / "a"
    run(compose_cfg(tiny_overrides(tiny_bert, str(a), steps=6, extra=EVERY)))
    versions = sorted(os.listdir(a / "out" / "negatives"))
    assert versions == ["v0001", "v0002", "v0003"]
    train = [json.loads(line) for line in open(a / "train.jsonl")]
    pool = {t for r in train for t in (*r["pos"], *r["neg"])}
    v1 = [json.loads(line) for line in open(a / "out" / "negatives" / "v0001" / "train.jsonl")]
    assert len(v1) == len(train)
    assert any(r["neg"] != t["neg"] for r, t in zip(v1, train))  # re-mined, not the file's negatives
    for r in v1:
        assert set(r["neg"]) <= pool and not set(r["neg"]) & set(r["pos"]) and len(r["neg"]) <= 3
        assert all(0 <= k < 20 for k in r["neg_ranks"])
    ck = torch.load(a / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    state = next(v for k, v in ck["callbacks"].items() if "RefreshNegatives" in k)
    assert state == {"version": 3}

    # resume from step 4 (negatives v2) in a fresh run folder holding the versions mined so far
    step4 = glob.glob(str(a / "out" / "checkpoints" / "*step=4.ckpt"))
    assert step4, os.listdir(a / "out" / "checkpoints")
    b = tmp_path / "b"
    os.makedirs(b / "out" / "checkpoints")
    shutil.copy(step4[0], b / "out" / "checkpoints" / "last.ckpt")
    for v in ("v0001", "v0002"):
        shutil.copytree(a / "out" / "negatives" / v, b / "out" / "negatives" / v)
    run(compose_cfg(tiny_overrides(tiny_bert, str(b), steps=6, extra=[*EVERY, "resume=auto"])))
    sb = torch.load(b / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    assert sb["global_step"] == 6
    for k, v in ck["state_dict"].items():
        torch.testing.assert_close(sb["state_dict"][k], v, msg=f"{k} differs after resume")


def test_a_malformed_mined_file_names_file_line_and_field(tmp_path):
    """The mined files are read by the one JSONL reader: a U+2028 stays in its row, a bad row is named."""
    from types import SimpleNamespace

    from embedlight.callbacks import RefreshNegatives
    from embedlight.data.jsonl import RowKind
    from embedlight.utils.io import DataFormatError

    got = {}
    dm = SimpleNamespace(
        sources=[SimpleNamespace(name="s", kind=RowKind.TRIPLET)], set_negatives=lambda v, m: got.update(m)
    )
    cb = RefreshNegatives(every_n_steps=1, output_dir=str(tmp_path))
    path = cb.path(None, 1, "s")
    os.makedirs(os.path.dirname(path))
    rows = [{"query": "q", "neg": ["a\u2028b", "c"]}, {"query": "r", "neg": ["d"]}]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    cb._load(SimpleNamespace(logger=None), dm, 1)
    assert got == {"s": [["a\u2028b", "c"], ["d"]]} and cb.version == 1
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"query": "t", "neg": "e"}) + "\n")
    with pytest.raises(DataFormatError, match=r"s\.jsonl:3: field 'neg'"):
        cb._load(SimpleNamespace(logger=None), dm, 1)
    with pytest.raises(FileNotFoundError, match="mined negatives v2 of source 's' not found"):
        cb._load(SimpleNamespace(logger=None), dm, 2)
