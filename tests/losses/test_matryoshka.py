"""Matryoshka loss (Kusupati et al., 2022): weighted inner loss over re-normalised prefixes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from embedlight.losses.infonce import InfoNCELoss
from embedlight.losses.matryoshka import MatryoshkaLoss
from embedlight.training.run import build, run
from tests.helpers import compose_cfg, tiny_overrides


def _hand_infonce(q: list[list[float]], d: list[list[float]], t: float, in_batch: bool = True) -> float:
    """InfoNCE with plain Python loops: -log softmax of each query's positive (docs[i*G])."""
    b, group = len(q), len(d) // len(q)
    total = 0.0
    for i in range(b):
        cands = range(len(d)) if in_batch else range(i * group, (i + 1) * group)
        scores = {j: sum(x * y for x, y in zip(q[i], d[j])) / t for j in cands}
        total += -scores[i * group] + math.log(sum(math.exp(s) for s in scores.values()))
    return total / b


def _unit_prefix(rows: torch.Tensor, dim: int) -> list[list[float]]:
    out = []
    for row in rows.tolist():
        p = row[:dim]
        n = math.sqrt(sum(x * x for x in p))
        out.append([x / n for x in p])
    return out


@pytest.mark.parametrize("in_batch", [True, False])
def test_weighted_sum_over_renormalised_prefixes(in_batch):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 8, generator=g) * 3  # (B, D) deliberately not unit length
    d = torch.randn(6, 8, generator=g) * 3  # (B*G, D), G = 2
    dims, weights, t = [8, 4, 2], [1.0, 0.5, 0.25], 0.1
    loss = MatryoshkaLoss(InfoNCELoss(temperature=t), dims=dims, weights=weights)
    got = loss(q, d, in_batch_negatives=in_batch)  # the batch extra reaches the inner loss
    want = sum(
        w * _hand_infonce(_unit_prefix(q, k), _unit_prefix(d, k), t, in_batch) for k, w in zip(dims, weights)
    )
    assert got.item() == pytest.approx(want, rel=1e-5)
    # the Embedder's full-vector normalisation before the wrapper changes nothing
    unit = loss(
        torch.nn.functional.normalize(q, dim=-1),
        torch.nn.functional.normalize(d, dim=-1),
        in_batch_negatives=in_batch,
    )
    assert unit.item() == pytest.approx(want, rel=1e-5)


def test_without_normalize_prefixes_stay_raw():
    g = torch.Generator().manual_seed(1)
    q, d = torch.randn(2, 4, generator=g), torch.randn(4, 4, generator=g)
    loss = MatryoshkaLoss(InfoNCELoss(temperature=1.0), dims=[4, 2], normalize=False)
    want = sum(_hand_infonce(q[:, :k].tolist(), d[:, :k].tolist(), 1.0) for k in (4, 2))
    assert loss(q, d).item() == pytest.approx(want, rel=1e-5)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="weights has 1 values for 2"):
        MatryoshkaLoss(InfoNCELoss(), dims=[4, 2], weights=[1.0])
    with pytest.raises(ValueError, match="larger than the embedding size 4"):
        MatryoshkaLoss(InfoNCELoss(), dims=[8, 2])(torch.randn(2, 4), torch.randn(2, 4))


def test_preset_trains_evaluates_each_dim_and_exports_them(tiny_bert, tmp_path):
    """`loss=matryoshka_infonce`: metrics per trained dim (the full vector keeps the plain keys) and the
    trained dims in the export."""
    extra = ["loss=matryoshka_infonce", "loss.dims=[32,16,8]", "loss.weights=[1.0,1.0,0.5]", "logger=none"]
    result = run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=2, extra=extra)))
    after = result["metrics"]["after"]
    for key in ("tiny/ndcg@10", "tiny/dim16/ndcg@10", "tiny/dim8/ndcg@10"):
        assert 0.0 <= after[key] <= 1.0
    assert not any("dim32" in k for k in after)
    meta = json.loads(open(f"{result['export']}/embedlight.json").read())
    assert meta["matryoshka_dims"] == [32, 16, 8]


def test_truncated_encoder_matches_sentence_transformers_truncate_dim(tiny_bert, tmp_path):
    """What evaluation scores at dim 8 is what a sentence-transformers user gets with truncate_dim=8
    (re-normalised, since sentence-transformers truncates after its Normalize module)."""
    from sentence_transformers import SentenceTransformer

    extra = ["loss=matryoshka_infonce", "loss.dims=[32,8]"]
    module, _ = build(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), extra=extra)))
    assert module.embedder.eval_dims() == [8]
    assert module.loss.inner.temperature == 0.05  # quickstart's loss.temperature reached the inner loss
    export = module.embedder.export(str(tmp_path / "export"))
    texts = ["the cat is big", "a small green bird", "news"]
    ours = module.embedder.truncated(8).encode(texts, kind="query")  # (3, 8)
    st = SentenceTransformer(export, device="cpu", truncate_dim=8)
    theirs = st.encode(texts, prompt_name="query", convert_to_tensor=True).cpu()  # (3, 8)
    torch.testing.assert_close(torch.nn.functional.normalize(theirs, dim=-1), ours, atol=1e-5, rtol=1e-5)
    full = module.embedder.encode(texts, kind="query")  # (3, 32)
    assert not torch.allclose(full[:, :8], ours)  # the prefix really was re-normalised


def test_default_dims_halve_the_embedding_and_inner_defaults_to_infonce():
    loss = MatryoshkaLoss(temperature=0.1)
    assert loss.trained_dims(384) == [384, 192, 96, 48]
    g = torch.Generator().manual_seed(2)
    q, d = torch.randn(2, 8, generator=g), torch.randn(4, 8, generator=g)
    want = sum(_hand_infonce(_unit_prefix(q, k), _unit_prefix(d, k), 0.1) for k in (8, 4, 2, 1))
    assert loss(q, d).item() == pytest.approx(want, rel=1e-5)
