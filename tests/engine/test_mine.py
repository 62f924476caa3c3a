"""``embedlight-mine`` end to end with a fake encoder, checked against a numpy brute-force ranking."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from embedlight.data.jsonl import RowKind, read_jsonl
from embedlight.engine.mining.run import run as mine
from embedlight.engine.mining.store import encode_to_memmap
from tests.engine.fakes import FakeEncoder, fake_model, random_table


def _cfg(name: str, overrides: list[str]):
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def _data(tmp_path, n_rows=6, n_docs=30):
    docs = [f"doc {i}" for i in range(n_docs)]
    rows = [
        {"query": f"query {i}", "pos": [docs[i]], "neg": [docs[-1]], "category": f"c{i % 2}"}
        for i in range(n_rows)
    ]
    rows[1]["pos"].append(docs[7])  # two positives
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"_id": str(i), "title": "", "text": d}) + "\n" for i, d in enumerate(docs))
    )
    table = random_table([*docs, *(r["query"] for r in rows)], dim=6, seed=3)
    return rows, docs, table, path, corpus


def test_mined_rows_match_brute_force(tmp_path):
    rows, docs, table, path, corpus = _data(tmp_path)
    out = tmp_path / "mined.jsonl"
    margin, start, end, k = 0.95, 2, 12, 4
    cfg = _cfg(
        "mine",
        [
            "model=fake",
            f"input={path}",
            f"corpus={corpus}",
            f"output={out}",
            f"negatives={k}",
            f"range_start={start}",
            f"range_end={end}",
            f"relative_margin={margin}",
            "show_progress=false",
        ],
    )
    summary = mine(cfg, model=fake_model(table))
    mined = list(read_jsonl(str(out), RowKind.TRIPLET))  # valid FlagEmbedding rows
    raw = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(mined) == len(rows) and summary["counts"]["rows"] == len(rows)
    D = np.stack([table[d] for d in docs])
    for row, got in zip(rows, raw):
        assert got["category"] == row["category"] and got["pos"] == row["pos"]
        q = table[row["query"]]
        scores = D @ q
        order = np.argsort(-scores, kind="stable")
        pos_scores = [float(table[p] @ q) for p in row["pos"]]
        np.testing.assert_allclose(got["pos_scores"], pos_scores, rtol=1e-5)
        window = [int(i) for i in order[start:end]]
        allowed = {i for i in window if docs[i] not in row["pos"] and scores[i] <= margin * max(pos_scores)}
        assert not set(got["neg"]) & set(row["pos"])  # a positive is never a negative
        got_ids = [docs.index(t) for t in got["neg"]]
        assert set(got_ids) <= allowed
        assert len(got_ids) == min(k, len(allowed))
        assert got["neg_ranks"] == [window.index(i) + start for i in got_ids]
        np.testing.assert_allclose(got["neg_scores"], scores[got_ids], rtol=1e-5)
    with pytest.raises(FileExistsError):
        mine(cfg, model=fake_model(table))


def test_default_corpus_is_the_pool_and_query_instruction_is_used(tmp_path):
    rows, docs, table, path, _ = _data(tmp_path)
    out = tmp_path / "mined.jsonl"
    model = fake_model(
        {
            (
                "Represent this sentence for searching relevant passages: " + k
                if k.startswith("query")
                else k
            ): v
            for k, v in table.items()
        }
    )
    model.encoder = _Prefixing(model.encoder)
    cfg = _cfg(
        "mine",
        [
            "model=fake",
            f"input={path}",
            f"output={out}",
            "query_instruction=bge",
            "range_start=0",
            "show_progress=false",
        ],
    )
    summary = mine(cfg, model=model)
    pool = {d for r in rows for d in (*r["pos"], *r["neg"])}
    assert summary["n_corpus"] == len(pool)
    for line in out.read_text().splitlines():
        row = json.loads(line)
        assert set(row["neg"]) <= pool and not set(row["neg"]) & set(row["pos"])
    kinds = {(k, i) for k, i, _ in model.encoder.inner.calls}
    assert ("query", "Represent this sentence for searching relevant passages: ") in kinds
    assert ("document", "") in kinds


class _Prefixing:
    """Passes ``instruction + text`` to the table lookup (checks that the instruction reaches the model)."""

    def __init__(self, inner: FakeEncoder) -> None:
        self.inner = inner

    def encode(self, texts, *, kind="query", instruction=None, **kw):
        self.inner.calls.append((kind, instruction, len(texts)))
        return self.inner.encode(
            [(instruction or "") + t for t in texts], kind=kind, instruction=instruction, **kw
        )


def test_memmap_store_resumes_after_a_crash(tmp_path):
    texts = [f"t{i}" for i in range(10)]
    table = random_table(texts, dim=4)
    path = str(tmp_path / "emb.f32")
    crashing = FakeEncoder(table, fail_after=2)
    with pytest.raises(RuntimeError, match="simulated"):
        encode_to_memmap(crashing, texts, path, chunk_size=3, key="m", show_progress=False)
    assert json.load(open(path + ".json"))["done"] == 6
    fresh = FakeEncoder(table)
    emb = encode_to_memmap(fresh, texts, path, chunk_size=3, key="m", show_progress=False)
    assert [n for _, _, n in fresh.calls] == [3, 1]  # only the rows after the crash
    np.testing.assert_allclose(np.asarray(emb), np.stack([table[t] for t in texts]))
    half = encode_to_memmap(
        FakeEncoder(table),
        texts,
        str(tmp_path / "emb.f16"),
        dtype="float16",
        chunk_size=4,
        show_progress=False,
    )
    assert half.dtype == np.float16
    np.testing.assert_allclose(np.asarray(half, np.float32), np.stack([table[t] for t in texts]), atol=1e-3)
    other = FakeEncoder(table)
    encode_to_memmap(other, texts, path, chunk_size=3, key="another model", show_progress=False)
    assert sum(n for _, _, n in other.calls) == 10  # a different model starts over


@pytest.mark.parametrize("kind", ["ivf", "hnsw", "ivfpq"])
def test_approximate_indexes_agree_with_flat(kind):
    from embedlight.engine.mining.search import build_index, search

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(2000, 16)).astype(np.float32)
    q = emb[:50] + 0.01 * rng.normal(size=(50, 16)).astype(np.float32)
    _, exact = search(build_index(emb, "flat", device="cpu"), q, 1)
    opts = {"nlist": 16, "nprobe": 16, "pq_m": 8} if kind != "hnsw" else {}
    _, approx = search(build_index(emb, kind, device="cpu", chunk_size=500, **opts), q, 1)
    assert (approx[:, 0] == exact[:, 0]).mean() >= 0.9


def test_rescorer_injected_by_target_removes_its_false_negatives(tmp_path):
    rows, docs, table, path, corpus = _data(tmp_path)
    blocked = docs[6:20]
    out = tmp_path / "mined.jsonl"
    cfg = _cfg(
        "mine",
        [
            "model=fake",
            f"input={path}",
            f"corpus={corpus}",
            f"output={out}",
            "negatives=5",
            "range_start=0",
            "relative_margin=null",
            "show_progress=false",
            f"+rescore={{scorer: {{_target_: tests.engine.fakes.BlockScorer, blocked: {json.dumps(blocked)}}},"
            " max_score: 0.5}",
        ],
    )
    summary = mine(cfg, model=fake_model(table))
    assert summary["counts"]["rescore_max_score"] > 0
    for line in out.read_text().splitlines():
        row = json.loads(line)
        assert not set(row["neg"]) & set(blocked)
        assert len(row["neg"]) == 5 and row["neg_rescores"] == [0.0] * 5


def test_cross_encoder_scorer_on_a_tiny_local_model(tiny_bert):
    from embedlight.engine.mining.negatives import CrossEncoderScorer

    scorer = CrossEncoderScorer(tiny_bert, device="cpu", max_length=32)
    scores = scorer([("the cat", "the cat is big"), ("news", "a small bird")])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    assert scores[0] != scores[1]
