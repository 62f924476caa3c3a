"""Every loss declares the batch fields it reads; a misspelled one fails loudly (issue 16, item 4)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.data.batch import LOSS_FIELDS
from embedlight.data.collator import ContrastiveCollator
from embedlight.data.jsonl import RowKind
from embedlight.data.mixture import MixtureBatchSampler, MixtureDataset, Source
from embedlight.losses.fields import batch_fields
from embedlight.losses.infonce import InfoNCELoss
from embedlight.losses.matryoshka import MatryoshkaLoss
from embedlight.models.embedder import Embedder
from embedlight.modules.contrastive import ContrastiveModule
from embedlight.poolers.mean import MeanPooler
from embedlight.registry import registered

Q = F.normalize(torch.randn(2, 8, generator=torch.Generator().manual_seed(0)), dim=-1)  # (B, D)
D = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(1)), dim=-1)  # (B*G, D), G = 2


@pytest.mark.parametrize("name", sorted(registered("loss")))
def test_every_loss_declares_batch_fields_and_refuses_a_misspelled_key(name):
    loss = registered("loss")[name]()
    fields = batch_fields(loss)
    assert set(fields) <= set(LOSS_FIELDS)
    with pytest.raises(TypeError, match="in_batch_negative") as err:
        loss(Q, D, in_batch_negative=False)  # the field is in_batch_negatives
    print(f"{name}: {err.value}")


def test_declared_fields_of_the_losses():
    losses = registered("loss")
    assert batch_fields(losses["infonce"]()) == dict.fromkeys(
        ("in_batch_negatives", "query_hash", "doc_hash"), False
    )
    assert batch_fields(losses["cosent"]()) == {"labels": False}
    assert batch_fields(losses["distill_kl"]()) == {"teacher_scores": False}
    assert set(batch_fields(losses["infonce_distill"]())) == {
        "teacher_scores",
        "in_batch_negatives",
        "query_hash",
        "doc_hash",
    }
    # the Matryoshka wrapper declares what its inner loss reads, and passes it on
    assert batch_fields(MatryoshkaLoss(losses["cosent"](), dims=[8, 4])) == {"labels": False}
    assert batch_fields(MatryoshkaLoss(dims=[8, 4])) == batch_fields(InfoNCELoss())


class TypoLoss(nn.Module):
    def forward(self, query, docs, query_hsh=None):  # a misspelled field name
        return (query.sum() + docs.sum()) * 0


class SwallowingLoss(nn.Module):
    def forward(self, query, docs, **_):
        return (query.sum() + docs.sum()) * 0


class NeedsTeacher(nn.Module):
    def forward(self, query, docs, teacher_scores):  # required: no default
        return (query.sum() + docs.sum()) * 0


class Recording(nn.Module):
    """InfoNCE that records the keyword arguments of each call."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = InfoNCELoss(temperature=0.05)
        self.calls: list[dict] = []

    def forward(self, query, docs, in_batch_negatives=None, query_hash=None):
        self.calls.append({"in_batch_negatives": in_batch_negatives, "query_hash": query_hash})
        return self.inner(query, docs, in_batch_negatives=in_batch_negatives, query_hash=query_hash)


@pytest.fixture
def embedder(tiny_bert):
    torch.manual_seed(0)
    return Embedder(HFEncoder(tiny_bert), MeanPooler())


def test_a_misspelled_or_swallowed_field_stops_the_module_at_construction(embedder):
    with pytest.raises(
        TypeError, match=r"TypoLoss reads batch field\(s\) \['query_hsh'\] .*batch fields: in_batch_negatives"
    ):
        ContrastiveModule(embedder, TypoLoss())
    with pytest.raises(TypeError, match=r"SwallowingLoss.forward takes \*\*_: declare the batch fields"):
        ContrastiveModule(embedder, InfoNCELoss(), pair_loss=SwallowingLoss())
    with pytest.raises(TypeError, match="query_hsh"):
        ContrastiveModule(embedder, MatryoshkaLoss(TypoLoss(), dims=[4]))  # through the wrapper too


def _loader(tokenizer, sources, batch_size=4):
    return DataLoader(
        MixtureDataset(sources, group_size=2),
        batch_sampler=MixtureBatchSampler(sources, batch_size),
        collate_fn=ContrastiveCollator(tokenizer, sources, 16, 16),
    )


def _trainer(steps: int) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        precision="32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


ROWS = [{"query": f"query {w}", "pos": [f"doc {w}"], "neg": [f"other {w}"]} for w in "abcdefgh"]


@pytest.mark.parametrize("chunk", [None, 3], ids=["plain", "grad-cache"])
def test_fit_passes_each_loss_exactly_its_fields_on_the_device(embedder, chunk):
    loss = Recording()
    sources = [Source("t", ROWS, in_batch_negatives=False)]
    module = ContrastiveModule(embedder, loss, grad_cache_chunk_size=chunk)
    _trainer(2).fit(module, _loader(embedder.tokenizer, sources))
    assert len(loss.calls) == 2
    for call in loss.calls:
        assert call["in_batch_negatives"] is False  # the source's setting reached the loss
        assert call["query_hash"].shape == (4,) and call["query_hash"].dtype == torch.long


def test_a_required_field_the_batch_lacks_fails_at_the_step(embedder):
    sources = [Source("t", ROWS)]
    with pytest.raises(ValueError, match=r"loss NeedsTeacher needs the batch field 'teacher_scores'"):
        _trainer(1).fit(ContrastiveModule(embedder, NeedsTeacher()), _loader(embedder.tokenizer, sources))


def test_pair_batches_reach_the_pair_loss_with_their_labels(embedder):
    pairs = [{"text1": f"a {w}", "text2": f"b {w}", "score": float(i)} for i, w in enumerate("abcdefgh")]
    sources = [Source("p", pairs, kind=RowKind.PAIRS)]
    seen = []

    class PairLoss(nn.Module):
        def forward(self, query, docs, labels):
            seen.append(labels.tolist())
            return (query * docs).sum() * 0 + query.sum() * 0

    _trainer(1).fit(
        ContrastiveModule(embedder, InfoNCELoss(), pair_loss=PairLoss()), _loader(embedder.tokenizer, sources)
    )
    assert len(seen) == 1 and len(set(seen[0])) == 4 and set(seen[0]) <= {float(i) for i in range(8)}
