"""The typed batch: what the collators return, how it reaches the device, how a loss gets its fields."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from transformers import AutoTokenizer

from embedlight.data.batch import LOSS_FIELDS, Batch, ICLCounts
from embedlight.data.collator import ContrastiveCollator
from embedlight.data.jsonl import RowKind
from embedlight.data.mixture import Source

TRIPLETS = [
    {"source": 0, "query": "the cat", "docs": ["a cat", "a dog"]},
    {"source": 0, "query": "the cat", "docs": ["a cat", "a fish"]},  # same query text as row 0
]
PAIRS = [{"source": 1, "text1": "a cat", "text2": "one cat", "score": 4.0}] * 2


@pytest.fixture(scope="module")
def collate(tiny_bert):
    sources = [Source("t", []), Source("p", [], kind=RowKind.PAIRS, in_batch_negatives=False)]
    return ContrastiveCollator(AutoTokenizer.from_pretrained(tiny_bert), sources)


def test_collators_return_a_batch_with_the_fields_of_their_kind(collate):
    t = collate(TRIPLETS)
    assert isinstance(t, Batch) and t.kind is RowKind.TRIPLET and t.size == 2
    assert (
        t.docs["input_ids"].size(0) == 4 and t.labels is None and t.teacher_scores is None and t.icl is None
    )
    assert t.query_hash.tolist()[0] == t.query_hash.tolist()[1] and t.doc_hash.shape == (4,)
    assert t.doc_hash[0] == t.doc_hash[2] and t.doc_hash[1] != t.doc_hash[3]  # "a cat" twice
    p = collate(PAIRS)
    assert p.kind is RowKind.PAIRS and p.labels.tolist() == [4.0, 4.0] and p.in_batch_negatives is False
    assert p.query_hash is None and p.doc_hash is None


def test_a_misspelled_field_is_an_error_not_a_new_key(collate):
    batch = collate(TRIPLETS)
    with pytest.raises(AttributeError, match="query_hsh"):
        batch.query_hsh  # noqa: B018
    with pytest.raises(TypeError, match="teacher_score"):
        Batch(query=batch.query, docs=batch.docs, teacher_score=None)
    assert {f.name for f in dataclasses.fields(Batch)} == {"query", "docs", "icl", *LOSS_FIELDS}


def test_lightning_moves_every_tensor_and_keeps_the_rest(collate):
    batch = collate(TRIPLETS)
    batch.icl = ICLCounts(kept=3, dropped=1)
    moved = move_data_to_device(batch, torch.device("meta"))  # what Trainer.fit does with a batch
    assert isinstance(moved, Batch) and moved is not batch
    tensors = [*moved.query.values(), *moved.docs.values(), moved.query_hash, moved.doc_hash]
    assert all(t.device.type == "meta" for t in tensors)
    assert moved.icl == ICLCounts(kept=3, dropped=1) and moved.in_batch_negatives is True
    assert moved.labels is None and batch.query_hash.device.type == "cpu"  # the original is untouched


def test_pin_memory_replaces_every_tensor_and_keeps_the_rest(collate, monkeypatch):
    # CPU stand-in for pinning (it needs a CUDA device): torch's loader calls batch.pin_memory()
    from torch.utils.data._utils.pin_memory import pin_memory

    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t, *a, **k: t.clone().fill_(7))
    batch = collate(TRIPLETS)
    batch.icl = ICLCounts(kept=2)
    pinned = pin_memory(batch)
    assert isinstance(pinned, Batch) and pinned.icl == ICLCounts(kept=2) and pinned.in_batch_negatives is True
    tensors = [*pinned.query.values(), *pinned.docs.values(), pinned.query_hash, pinned.doc_hash]
    assert len(tensors) == 8 and all(bool((t == 7).all()) for t in tensors)
    assert pinned.labels is None and not bool((batch.query_hash == 7).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs a CUDA device")
def test_pin_memory_pins_every_tensor(collate):
    pinned = collate(TRIPLETS).pin_memory()
    assert isinstance(pinned, Batch)
    assert all(t.is_pinned() for t in [*pinned.query.values(), *pinned.docs.values(), pinned.query_hash])


def test_loss_inputs_are_the_declared_fields_and_a_missing_required_one_fails(collate):
    batch = collate(TRIPLETS)
    got = batch.loss_inputs({"in_batch_negatives": False, "labels": False}, "MyLoss")
    assert list(got) == ["in_batch_negatives", "labels"] and got["labels"] is None
    with pytest.raises(
        ValueError, match=r"loss MyLoss needs the batch field 'teacher_scores', .* triplet batch"
    ):
        batch.loss_inputs({"teacher_scores": True}, "MyLoss")
    with pytest.raises(ValueError, match=r"needs the batch field 'query_hash', which this pairs batch"):
        collate(PAIRS).loss_inputs({"query_hash": True}, "MyLoss")


def test_icl_counts_between_two_readings():
    before = {"queries": 2, "requested": 5, "kept": 4, "dropped": 1, "truncated": 0, "all_dropped": 0}
    after = {"queries": 6, "requested": 9, "kept": 7, "dropped": 2, "truncated": 1, "all_dropped": 1}
    assert ICLCounts.between(before, after) == ICLCounts(kept=3, dropped=1, truncated=1, all_dropped=1)
