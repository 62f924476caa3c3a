"""Per-epoch mixture sampling: weights, homogeneous batches, determinism, sharding, skipping."""

from __future__ import annotations

from collections import Counter

import pytest

from embedlight.data.jsonl import RowKind
from embedlight.data.mixture import MixtureBatchSampler, MixtureDataset, Source, distinct_chunks


def _triplets(n, tag, negs=3):
    return [
        {"query": f"{tag}q{i}", "pos": [f"{tag}p{i}"], "neg": [f"{tag}n{i}_{j}" for j in range(negs)]}
        for i in range(n)
    ]


def _sources():
    return [
        Source("a", _triplets(40, "a"), weight=1.0),
        Source("b", _triplets(20, "b"), weight=2.0),
        Source("c", [{"text1": "x", "text2": "y", "score": 1.0}] * 16, kind=RowKind.PAIRS),
        Source("d", _triplets(16, "d"), in_batch_negatives=False),
    ]


def test_weights_count_rows_per_epoch():
    sampler = MixtureBatchSampler(_sources(), batch_size=4, drop_last=False)
    counts = Counter(key[1] for batch in sampler for key in batch)
    assert counts == {0: 40, 1: 40, 2: 16, 3: 16}  # b: 20 rows x weight 2


def test_batches_never_mix_schema_or_in_batch_setting():
    sources = _sources()
    for batch in MixtureBatchSampler(sources, batch_size=4):
        kinds = {(sources[k[1]].kind, sources[k[1]].in_batch_negatives) for k in batch}
        assert len(kinds) == 1


def test_one_source_per_batch():
    for batch in MixtureBatchSampler(_sources(), batch_size=4, one_source_per_batch=True):
        assert len({k[1] for k in batch}) == 1


def test_epoch_is_deterministic_and_epochs_differ():
    s1, s2 = MixtureBatchSampler(_sources(), 4, seed=7), MixtureBatchSampler(_sources(), 4, seed=7)
    assert list(s1) == list(s2)
    s2.set_epoch(1)
    assert list(s1) != list(s2)


def test_ranks_partition_the_epoch_evenly():
    full = MixtureBatchSampler(_sources(), 12, world_size=1).global_batches(0)
    shards = [list(MixtureBatchSampler(_sources(), 4, rank=r, world_size=3)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    assert len(shards[0]) == len(full)
    assert len(shards[0]) == len(MixtureBatchSampler(_sources(), 4, world_size=3))
    # the ranks' slices of step i are exactly the 1-process global batch i of W*B rows
    assert [a + b + c for a, b, c in zip(*shards)] == full


def _bucket_of(sources, batch):
    kinds = {(sources[k[1]].kind, sources[k[1]].in_batch_negatives) for k in batch}
    assert len(kinds) == 1
    return kinds.pop()


@pytest.mark.parametrize("world", [2, 3])
def test_all_ranks_draw_the_same_bucket_at_every_step(world):
    # the setup: a source with in-batch negatives, one without, and scored pairs
    sources = [
        Source("inb", _triplets(70, "i")),
        Source("noinb", _triplets(50, "n"), in_batch_negatives=False),
        Source(
            "pairs",
            [{"text1": f"x{i}", "text2": f"y{i}", "score": 1.0} for i in range(40)],
            kind=RowKind.PAIRS,
        ),
    ]
    for epoch in range(3):
        shards = []
        for r in range(world):
            sampler = MixtureBatchSampler(sources, 4, rank=r, world_size=world)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        assert len({len(s) for s in shards}) == 1 and len(shards[0]) == len(sampler)
        steps = list(zip(*shards))
        assert len({_bucket_of(sources, b) for b in shards[0]}) == 3  # all three kinds occur
        for step in steps:
            assert len({_bucket_of(sources, b) for b in step}) == 1  # every rank, same bucket
            assert all(len(b) == 4 for b in step)


def test_one_source_per_global_batch_under_ddp():
    shards = [list(MixtureBatchSampler(_sources(), 2, True, rank=r, world_size=2)) for r in (0, 1)]
    for a, b in zip(*shards):
        assert len({k[1] for k in a + b}) == 1


def test_no_row_repeats_within_a_global_batch():
    # the case: 100 rows at weight 5, global batch 32 (2 ranks x 16)
    sources = [Source("a", _triplets(100, "a"), weight=5.0)]
    shards = [list(MixtureBatchSampler(sources, 16, rank=r, world_size=2)) for r in (0, 1)]
    steps = [a + b for a, b in zip(*shards)]
    assert len(steps) == 500 // 32
    assert all(len({k[1:] for k in batch}) == 32 for batch in steps)
    counts = Counter(k[2] for batch in steps for k in batch)
    assert sum(counts.values()) == 32 * (500 // 32) and max(counts.values()) <= 5


def test_distinct_chunks_defers_repeats_and_keeps_every_key():
    keys = [(0, 0, r) for r in [0, 0, 1, 2, 1, 3, 4, 5, 2, 6]]
    chunks = distinct_chunks(keys, 3)
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert sorted(k for c in chunks for k in c) == sorted(keys)
    assert all(len({k[1:] for k in c}) == len(c) for c in chunks[:3])
    assert chunks[0] == [(0, 0, 0), (0, 0, 1), (0, 0, 2)]  # the 2nd row 0 waits for the next chunk
    assert chunks[1][0] == (0, 0, 0)


def test_repeats_allowed_when_the_bucket_is_too_small():
    sources = [Source("tiny", _triplets(3, "t"), weight=4.0)]  # 3 distinct rows, batch of 4
    batches = list(MixtureBatchSampler(sources, 4))
    assert len(batches) == 3 and sorted(Counter(k[2] for b in batches for k in b).values()) == [4, 4, 4]


def test_skip_batches_resumes_mid_epoch_on_every_rank():
    for r in (0, 1):
        sampler = MixtureBatchSampler(_sources(), 3, rank=r, world_size=2)
        sampler.set_epoch(2)
        full = list(sampler)
        sampler.skip_batches(4)
        assert list(sampler) == full[4:]


def test_skip_batches_resumes_mid_epoch():
    sampler = MixtureBatchSampler(_sources(), 4)
    full = list(sampler)
    sampler.skip_batches(5)
    assert list(sampler) == full[5:]
    assert list(sampler) == full  # skipping applies once


def test_dataset_group_sampling():
    src = [
        Source("a", _triplets(5, "a", negs=10)),
        Source("few", _triplets(5, "f", negs=1)),
        Source("none", _triplets(5, "z", negs=0)),
    ]
    ds = MixtureDataset(src, group_size=4, seed=1)
    row = ds[(0, 0, 2)]
    assert row["docs"][0] == "ap2" and len(row["docs"]) == 4 and len(set(row["docs"][1:])) == 3
    assert ds[(0, 0, 2)] == row  # deterministic per key
    assert ds[(1, 0, 2)]["docs"] != row["docs"]  # resampled next epoch
    assert ds[(0, 1, 0)]["docs"][1:] == ["fn0_0"] * 3  # too few: repeated
    none = ds[(0, 2, 0)]["docs"]
    assert len(none) == 4 and "zp0" == none[0] and all(d.startswith("zp") and d != "zp0" for d in none[1:])


def test_bad_sizes():
    with pytest.raises(ValueError, match="group_size"):
        MixtureDataset([], group_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        MixtureBatchSampler([], batch_size=0)


def _varied(n, seed=0):
    import random

    rng = random.Random(seed)
    return [
        {"query": "q" * rng.randint(1, 20), "pos": ["p" * rng.randint(1, 400)], "neg": []} for _ in range(n)
    ]


def test_group_by_length_keeps_the_rows_and_cuts_padding():
    sources = [Source("a", _varied(400))]
    plain = MixtureBatchSampler(sources, 8, seed=3)
    grouped = MixtureBatchSampler(sources, 8, seed=3, group_by_length=True, megabatch_mult=10)
    assert sorted(k for b in plain for k in b) == sorted(k for b in grouped for k in b)
    assert len(list(grouped)) == len(grouped) == len(list(plain))
    lengths = grouped.lengths()[0]

    def waste(sampler):  # padded slots: sum over batches of (max - each)
        return sum(max(lengths[k[2]] for k in b) * len(b) - sum(lengths[k[2]] for k in b) for b in sampler)

    assert waste(grouped) < 0.5 * waste(plain)


def test_group_by_length_is_deterministic_shuffled_and_resumable():
    sources = [
        Source("a", _varied(400)),
        Source("c", [{"text1": "x" * i, "text2": "y", "score": 1.0} for i in range(64)], kind=RowKind.PAIRS),
    ]
    s1 = MixtureBatchSampler(sources, 8, seed=5, group_by_length=True, megabatch_mult=4)
    s2 = MixtureBatchSampler(sources, 8, seed=5, group_by_length=True, megabatch_mult=4)
    full = list(s1)
    assert full == list(s2)  # a pure function of (seed, epoch)
    firsts = [max(len(sources[k[1]].rows[k[2]].get("pos", [""])[0]) for k in b) for b in full[:10]]
    assert firsts != sorted(firsts, reverse=True)  # batches are shuffled, not globally sorted
    s2.set_epoch(1)
    assert list(s2) != full
    s1.skip_batches(7)
    assert list(s1) == full[7:]
    for batch in full:  # schemas still never mix
        assert len({sources[k[1]].kind for k in batch}) == 1
    shards = [
        list(MixtureBatchSampler(sources, 8, seed=5, rank=r, world_size=2, group_by_length=True))
        for r in (0, 1)
    ]
    assert not {tuple(b) for b in shards[0]} & {tuple(b) for b in shards[1]}


def test_group_by_length_reads_a_datasets_column():
    import datasets

    rows = datasets.Dataset.from_list(_varied(20))
    assert MixtureBatchSampler([Source("a", rows)], 4, group_by_length=True).lengths()[0] == [
        len(r["query"]) + len(r["pos"][0]) for r in _varied(20)
    ]
