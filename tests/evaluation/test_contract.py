"""Every registered evaluator, built from its registry config on a tiny benchmark written here.

Contract (see ``embedlight.registry``): ``__call__(encoder) -> {"<name>/<metric>": float}``, every value
finite, and an encoder that knows the answers scores better than one that does not. A new evaluator
adds its entry to :data:`EXAMPLES` (a benchmark builder and the metric to compare); a registered
evaluator without one fails :func:`test_every_registered_evaluator_has_an_example`.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from embedlight.evaluation.base import Evaluator
from embedlight.registry import registered

N = 12  # topics: query i, its document and its pair partner share the word topic<i>


class KeyEncoder:
    """A deterministic encoder: a text's vector is a fixed random unit vector of ``key(text)``.

    Texts with the same key get the same vector; different keys are nearly orthogonal (dimension 64).
    It is both a ``TextEncoder`` (``encode``) and the Embedder surface the ICL evaluator drives
    (``tokenizer``, ``backbone.append_eos``, ``max_length``, ``embed_texts``).
    """

    class _Backbone:
        append_eos = True

    def __init__(self, key: Callable[[str], str], tokenizer: Any) -> None:
        self.key = key
        self.tokenizer = tokenizer
        self.backbone = self._Backbone()
        self.max_length = 128

    def _vectors(self, texts: list[str]) -> torch.Tensor:
        rows = []
        for text in texts:
            g = torch.Generator().manual_seed(zlib.crc32(self.key(text).encode("utf-8")))
            rows.append(torch.randn(64, generator=g))
        return F.normalize(torch.stack(rows), dim=-1)  # (N, 64)

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        return self._vectors(list(texts))

    def embed_texts(self, texts, prefixes=None, **_: Any) -> torch.Tensor:
        prefixes = prefixes or [""] * len(texts)
        return self._vectors([p + t for p, t in zip(prefixes, texts)])


def truth(text: str) -> str:
    """What a text is about: the person of a passkey text, else its last ``topic<i>`` word."""
    person = re.search(r"([A-Z][a-z]+ [A-Z][a-z]+)'s passkey", text)
    if person:
        return person.group(1)
    topics = re.findall(r"topic\d+", text)
    return topics[-1] if topics else text


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _beir(tmp: Path) -> str:
    folder = tmp / "beir"
    (folder / "qrels").mkdir(parents=True)
    _jsonl(
        folder / "corpus.jsonl",
        [{"_id": f"d{i}", "title": "", "text": f"a page on topic{i}"} for i in range(N)],
    )
    _jsonl(folder / "queries.jsonl", [{"_id": f"q{i}", "text": f"what about topic{i}"} for i in range(N)])
    (folder / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(N)))
    return str(folder)


def _sts(tmp: Path) -> str:
    rows = [{"text1": f"one topic{i}", "text2": f"two topic{i}", "score": 5.0} for i in range(N)]
    rows += [{"text1": f"one topic{i}", "text2": f"two topic{(i + 1) % N}", "score": 0.0} for i in range(N)]
    return _jsonl(tmp / "sts.jsonl", rows)


def _senteval(tmp: Path) -> str:
    root = tmp / "senteval"
    (root / "MR").mkdir(parents=True)
    (root / "MR" / "rt-polarity.neg").write_text("".join(f"review {j} topic0\n" for j in range(10)))
    (root / "MR" / "rt-polarity.pos").write_text("".join(f"review {j} topic1\n" for j in range(10)))
    return str(root)


@dataclass
class Example:
    """A tiny benchmark for one evaluator: its config (everything but ``_target_``) and the metric to compare."""

    config: Callable[[Path], dict[str, Any]]
    better: str | None  # metric (after "<name>/") where knowing the answers must score higher


STS = {"_target_": "embedlight.evaluation.sts.STSEvaluator", "name": "tiny-sts"}
RETRIEVAL = {"_target_": "embedlight.evaluation.retrieval.RetrievalEvaluator", "k_values": [1, 10]}
EXAMPLES: dict[str, Example] = {
    "retrieval": Example(lambda tmp: {"path": _beir(tmp), "k_values": [1, 10]}, "ndcg@1"),
    "reranking": Example(
        lambda tmp: {
            "path": _jsonl(
                tmp / "rerank.jsonl",
                [
                    {
                        "query": f"q topic{i}",
                        "positive": [f"p topic{i}"],
                        "negative": [f"n topic{(i + k) % N}" for k in (1, 2, 3)],
                    }
                    for i in range(N)
                ],
            )
        },
        "map",
    ),
    "sts": Example(lambda tmp: {"path": _sts(tmp)}, "spearman"),
    "pair_classification": Example(
        lambda tmp: {"path": str(_pairs(tmp))},
        "ap",
    ),
    "classification": Example(lambda tmp: {"path": _senteval(tmp), "task": "MR", "n_folds": 2}, "accuracy"),
    "clustering": Example(lambda tmp: {"path": _senteval(tmp), "task": "MR", "split": None}, "v_measure"),
    "passkey": Example(lambda tmp: {"lengths": [48], "n_docs": 8}, "top1@48"),
    "robustness": Example(
        lambda tmp: {"evaluator": {**STS, "path": _sts(tmp)}, "task_type": "sts"}, "mean/spearman"
    ),
    "icl": Example(
        lambda tmp: {
            "evaluator": {**RETRIEVAL, "path": _beir(tmp)},
            "task": "Given a question, retrieve a page that answers it.",
            "examples": [{"query": "what about topic0", "response": "a page on topic0"}],
            "modes": ["zero_shot", "few_shot", "prompteol"],
            "query_max_len": 96,
        },
        "few_shot/ndcg@1",
    ),
}


def _pairs(tmp: Path) -> Path:
    path = tmp / "pairs.tsv"
    rows = [f"one topic{i}\ttwo topic{i}\t1\n" for i in range(N)]
    rows += [f"one topic{i}\ttwo topic{(i + 1) % N}\t0\n" for i in range(N)]
    path.write_text("".join(rows))
    return path


def test_every_registered_evaluator_has_an_example():
    missing = sorted(set(registered("evaluator")) - set(EXAMPLES))
    assert not missing, f"registered evaluator(s) {missing} have no entry in EXAMPLES ({__file__})"
    assert not set(EXAMPLES) - set(registered("evaluator")), "EXAMPLES names an unregistered evaluator"


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


def _build(name: str, tmp_path: Path) -> Evaluator:
    """The evaluator as config builds it: the registry's node (``_target_`` + defaults) and the example."""
    node = ConfigStore.instance().repo["evaluator"][f"{name}.yaml"].node
    return instantiate(OmegaConf.merge(node, EXAMPLES[name].config(tmp_path)))


@pytest.mark.parametrize("name", sorted(registered("evaluator")))
def test_evaluator_contract(name, tmp_path, tokenizer):
    if name not in EXAMPLES:
        pytest.fail(f"evaluator {name!r} has no entry in EXAMPLES")
    evaluator = _build(name, tmp_path)
    assert isinstance(evaluator, registered("evaluator")[name]) and isinstance(evaluator, Evaluator)
    knows = evaluator(KeyEncoder(truth, tokenizer))
    guesses = evaluator(KeyEncoder(lambda text: text, tokenizer))
    for metrics in (knows, guesses):
        assert metrics and set(metrics) == set(knows)
        for key, value in metrics.items():
            assert key.startswith(f"{evaluator.name}/") and len(key) > len(evaluator.name) + 1, key
            assert isinstance(value, float) and math.isfinite(value), (key, value)
    better = EXAMPLES[name].better
    if better is not None:
        key = f"{evaluator.name}/{better}"
        assert knows[key] > guesses[key], (key, knows[key], guesses[key])
