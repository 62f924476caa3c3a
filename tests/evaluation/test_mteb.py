"""MTEB 2 bridge: an embedlight model through ``mteb.evaluate`` agrees with embedlight's own evaluators on
the same local data (tiny random model by default; the bundled MiniLM on real data in the slow test),
prompts follow mteb's priority order, ICL tasks get their few-shot file, and ``embedlight-mteb``."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.evaluation import RetrievalEvaluator, STSEvaluator
from embedlight.evaluation.mteb_bridge import MTEBEncoder, run_mteb
from embedlight.models.embedder import Embedder
from embedlight.poolers.mean import MeanPooler
from tests.helpers import WORDS, write_beir


def _sts_jsonl(path, n: int = 24, seed: int = 0) -> str:
    import random

    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            a = " ".join(rng.choice(WORDS) for _ in range(6))
            b = " ".join(rng.choice(WORDS) for _ in range(6))
            f.write(json.dumps({"text1": a, "text2": b, "score": rng.uniform(0, 5)}) + "\n")
    return str(path)


@pytest.fixture
def tiny_embedder(tiny_bert):
    torch.manual_seed(0)
    return Embedder(HFEncoder(tiny_bert), MeanPooler(), max_length=32)


def test_mteb_agrees_with_embedlight_evaluators_tiny(tiny_embedder, tmp_path):
    sts = _sts_jsonl(tmp_path / "sts.jsonl")
    beir = write_beir(str(tmp_path / "beir"), n=16)
    local = {"TinySTS": {"type": "sts", "path": sts}, "TinyRetrieval": {"type": "retrieval", "path": beir}}
    scores = run_mteb(MTEBEncoder(tiny_embedder, "tiny"), [], local, batch_size=8)
    ours_sts = STSEvaluator(sts, name="s")(tiny_embedder)["s/spearman"]
    ours_ret = RetrievalEvaluator(beir, name="r")(tiny_embedder)["r/ndcg@10"]
    assert 0.0 < abs(ours_sts) < 1.0 and 0.0 < ours_ret < 1.0  # a non-trivial score, not a degenerate case
    assert scores["TinySTS"]["cosine_spearman"] == pytest.approx(ours_sts, abs=1e-3)
    assert scores["TinyRetrieval"]["ndcg_at_10"] == pytest.approx(ours_ret, abs=1e-3)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        self.calls.append((kind, instruction))
        return torch.stack([torch.tensor([len(t), t.count(" ") + 1.0, 1.0]) for t in texts])


def test_mteb_prompts_priority_and_kinds(tmp_path):
    beir = write_beir(str(tmp_path / "beir"), n=6)
    sts = _sts_jsonl(tmp_path / "sts.jsonl", n=6)
    rec = Recorder()
    prompts = {"R-query": "task+kind: ", "Retrieval": "type: ", "document": "doc: ", "STS": "sts: "}
    run_mteb(
        MTEBEncoder(rec, "rec", prompts=prompts),
        [],
        {"R": {"type": "retrieval", "path": beir}, "S": {"type": "sts", "path": sts}},
    )
    assert ("query", "task+kind: ") in rec.calls  # "<Task>-query" beats "<TaskType>"
    assert ("document", "type: ") in rec.calls  # "<TaskType>" beats the bare kind
    assert ("query", "sts: ") in rec.calls and all(i is not None for _, i in rec.calls)


def test_mteb_icl_examples_per_task(tiny_llama, tmp_path):
    from embedlight.backbones.hf_decoder import HFDecoder
    from embedlight.poolers.last_token import LastTokenPooler

    torch.manual_seed(0)
    emb = Embedder(HFDecoder(tiny_llama), LastTokenPooler(), max_length=32)
    ex_dir = tmp_path / "icl"
    ex_dir.mkdir()
    (ex_dir / "WithShots.json").write_text(json.dumps([{"query": "alpha beta", "response": "gamma"}]))
    enc = MTEBEncoder(emb, "icl", prompts={"STS": "find similar text"}, icl_examples_dir=str(ex_dir))
    assert enc._icl_encoder("WithShots", "find similar text").mode == "few_shot"
    assert enc._icl_encoder("NoShots", "find similar text").mode == "zero_shot"
    sts = _sts_jsonl(tmp_path / "sts.jsonl", n=6)
    scores = run_mteb(enc, [], {"WithShots": {"type": "sts", "path": sts}}, batch_size=4)
    assert -1.0 <= scores["WithShots"]["cosine_spearman"] <= 1.0
    with pytest.raises(ValueError, match="ICL Embedder"):
        MTEBEncoder(Recorder(), icl_examples_dir=str(ex_dir))


def test_embedlight_mteb_command(tiny_bert, tmp_path, monkeypatch):
    from hydra.core.global_hydra import GlobalHydra

    from embedlight.cli import mteb as mteb_cli

    sts = _sts_jsonl(tmp_path / "sts.jsonl", n=8)
    out = tmp_path / "mteb.json"
    argv = [
        "embedlight-mteb",
        f"model={tiny_bert}",
        f"+local_tasks.CliSTS={{type: sts, path: {sts}}}",
        f"output={out}",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    GlobalHydra.instance().clear()
    mteb_cli.main()
    result = json.loads(out.read_text())
    assert set(result["mteb"]) == {"CliSTS"} and -1.0 <= result["mteb"]["CliSTS"]["main_score"] <= 1.0


class CachedEncoder:
    """Memoises ``(text, kind, instruction) -> vector`` so both paths share one encoding pass (the test is
    about data, prompts and metrics; each side still asks for its own texts, kinds and instructions)."""

    def __init__(self, encoder) -> None:
        self.encoder, self.cache = encoder, {}

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        missing = list(dict.fromkeys(t for t in texts if (t, kind, instruction) not in self.cache))
        if missing:
            emb = self.encoder.encode(missing, kind=kind, instruction=instruction, batch_size=batch_size)
            self.cache.update({(t, kind, instruction): e for t, e in zip(missing, emb, strict=True)})
        return torch.stack([self.cache[(t, kind, instruction)] for t in texts])


@pytest.mark.slow
def test_mteb_agrees_with_embedlight_minilm_real_data(shared_data):
    """The bundled all-MiniLM-L6-v2 (a sentence-transformers folder) on STSB test (500 seeded pairs) and the
    MS MARCO subset (10 queries, 1500 passages), via mteb.evaluate and via embedlight's evaluators."""
    from embedlight.models.sentence_transformer import SentenceTransformerEncoder

    enc = CachedEncoder(SentenceTransformerEncoder("all-MiniLM-L6-v2", "cpu"))
    stsb = os.path.join(shared_data, "stsb_en", "stsbenchmark.tsv.gz")
    msmarco = os.path.join(shared_data, "retrieval_msmarco_subset")
    sts_args = {"split": "test", "max_pairs": 500, "seed": 0}
    ret_args = {"max_queries": 10, "max_corpus": 1500}
    local = {
        "LocalSTSBenchmark": {"type": "sts", "path": stsb, **sts_args},
        "LocalMSMARCOSubset": {"type": "retrieval", "path": msmarco, **ret_args},
    }
    scores = run_mteb(MTEBEncoder(enc, "all-MiniLM-L6-v2"), [], local, batch_size=64)
    ours_sts = STSEvaluator(stsb, name="s", **sts_args)(enc)["s/spearman"]
    ours_ret = RetrievalEvaluator(msmarco, name="r", **ret_args)(enc)["r/ndcg@10"]
    assert ours_sts > 0.75 and ours_ret > 0.3  # real weights give real scores
    assert scores["LocalSTSBenchmark"]["cosine_spearman"] == pytest.approx(ours_sts, abs=1e-3)
    assert scores["LocalMSMARCOSubset"]["ndcg_at_10"] == pytest.approx(ours_ret, abs=1e-3)
