"""Data larger than RAM: training rows are a memory-mapped Arrow table, and resume over it is exact."""

from __future__ import annotations

import json

import torch
from datasets.table import MemoryMappedTable

from embedlight.data import ContrastiveDataModule
from embedlight.data.mixture import MixtureBatchSampler
from tests.helpers import WORDS


def _write(path, n):
    with open(path, "w") as fh:
        for i in range(n):
            w = [WORDS[(i * 7 + j) % len(WORDS)] for j in range(10)]
            fh.write(
                json.dumps(
                    {
                        "query": " ".join(w[:3]),
                        "pos": [" ".join(w)],
                        "neg": [" ".join(reversed(w)), " ".join(w[::2])],
                        "pos_scores": [float(i % 5)],
                        "neg_scores": [0.5, -1.0],
                    }
                )
                + "\n"
            )
    return path


def _loader(tokenizer, path, skip=0):
    dm = ContrastiveDataModule(
        tokenizer=tokenizer, train_files=[path], batch_size=4, group_size=3, num_workers=0, seed=5
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    dm.batch_sampler.set_epoch(1)
    dm.batch_sampler.skip_batches(skip)
    return dm, loader


def test_rows_are_memory_mapped_from_the_arrow_cache(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    path = _write(str(tmp_path / "train.jsonl"), 64)
    dm, _ = _loader(AutoTokenizer.from_pretrained(tiny_bert), path)
    rows = dm.sources[0].rows
    assert rows.cache_files and all(f["filename"].endswith(".arrow") for f in rows.cache_files)
    assert isinstance(rows.data, MemoryMappedTable)  # pages come from disk on demand, not from RAM
    assert rows[3]["pos_scores"] == [3.0] and rows[3]["neg_scores"] == [0.5, -1.0]


def test_resume_mid_epoch_gives_the_same_batches(tiny_bert, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    path = _write(str(tmp_path / "train.jsonl"), 80)
    _, loader = _loader(tok, path)
    full = list(loader)
    assert len(full) == 20
    _, resumed = _loader(tok, path, skip=7)  # a new process: fresh datamodule, sampler told to skip 7
    rest = list(resumed)
    assert len(rest) == 13
    for a, b in zip(full[7:], rest):
        assert torch.equal(a.query["input_ids"], b.query["input_ids"])
        assert torch.equal(a.docs["input_ids"], b.docs["input_ids"])
        assert torch.equal(a.teacher_scores, b.teacher_scores)  # (B, G)
    assert not torch.equal(full[0].query["input_ids"], rest[0].query["input_ids"])


def test_sampler_keys_are_all_it_holds_per_row():
    # the sampler holds one (epoch, source, row) key per row and epoch; texts stay in the Arrow file
    class Rows:
        def __len__(self):
            return 1000

        def __getitem__(self, i):  # never called by the sampler
            raise AssertionError("the sampler must not read rows")

    from embedlight.data.mixture import Source

    batches = MixtureBatchSampler([Source("s", Rows())], batch_size=10).global_batches(0)
    assert sorted(k[2] for b in batches for k in b) == list(range(1000))


def test_arrow_row_lengths_match_the_python_definition():
    # group_by_length reads lengths with Arrow compute in batches; it must equal the per-row definition
    import random

    import datasets

    from embedlight.data.jsonl import RowKind
    from embedlight.data.mixture import _arrow_lengths

    rng = random.Random(0)
    rows = [
        {
            "query": "é" * rng.randrange(1, 40),
            "pos": ["p" * rng.randrange(1, 90) for _ in range(rng.randrange(1, 4))],
            "neg": [],
        }
        for _ in range(300)
    ]
    expected = [len(r["query"]) + sum(len(p) for p in r["pos"]) // len(r["pos"]) for r in rows]
    ds = datasets.Dataset.from_list(rows)
    assert _arrow_lengths(ds, RowKind.TRIPLET, batch_size=64) == expected  # several batches
    assert _arrow_lengths(ds.select([5, 3, 1]), RowKind.TRIPLET) == [expected[5], expected[3], expected[1]]
    pairs = [{"text1": "x" * i, "text2": "yé" * i, "score": 1.0} for i in range(50)]
    assert _arrow_lengths(datasets.Dataset.from_list(pairs), RowKind.PAIRS, batch_size=16) == [
        3 * i for i in range(50)
    ]
