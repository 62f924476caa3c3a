"""Mining the real 5,000-passage MS MARCO subset (slow: encodes the whole corpus)."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from embedlight.data.jsonl import RowKind, read_jsonl
from embedlight.engine.mining.run import run as mine
from tests.engine.test_mine import _cfg


@pytest.mark.slow
def test_mine_msmarco_subset(shared_data, tiny_bert, tmp_path):
    folder = f"{shared_data}/retrieval_msmarco_subset"
    docs = {}
    for line in open(f"{folder}/corpus.jsonl"):
        d = json.loads(line)
        docs[d["_id"]] = f"{d.get('title') or ''} {d['text']}".strip()
    queries = {json.loads(line)["_id"]: json.loads(line)["text"] for line in open(f"{folder}/queries.jsonl")}
    pos = defaultdict(list)
    for line in open(f"{folder}/qrels/test.tsv"):
        qid, did, score = line.split()
        if int(score) >= 2:  # highly relevant passages as positives; the rest of the corpus may be mined
            pos[qid].append(docs[did])
    rows_path = tmp_path / "rows.jsonl"
    rows_path.write_text("".join(json.dumps({"query": queries[q], "pos": p}) + "\n" for q, p in pos.items()))
    out = tmp_path / "mined.jsonl"
    cfg = _cfg(
        "mine",
        [
            f"model={tiny_bert}",
            f"input={rows_path}",
            f"corpus={folder}/corpus.jsonl",
            f"output={out}",
            "device=cpu",
            "show_progress=false",
            f"store.path={tmp_path / 'corpus.f32'}",
            "store.chunk_size=2000",
            "relative_margin=null",  # a random-init model scores every candidate like the positive
        ],
    )
    summary = mine(cfg)
    assert summary["n_corpus"] == len(set(docs.values()))
    mined = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(list(read_jsonl(str(out), RowKind.TRIPLET))) == len(mined) == len(pos)
    for row in mined:
        assert len(row["neg"]) == 15 == len(row["neg_scores"]) == len(set(row["neg"]))
        assert not set(row["neg"]) & set(row["pos"])  # a positive is never a negative
        assert all(2 <= r < 200 for r in row["neg_ranks"])
