"""Token limits of 0 or 1 are rejected when the object is built, naming the config key (issue 10, item 3)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from embedlight.data import ContrastiveDataModule
from embedlight.data.limits import check_max_len
from embedlight.data.pretrain import PretrainDataModule


@pytest.fixture(scope="module")
def tok(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


@pytest.mark.parametrize("value", [0, 1, 2])
@pytest.mark.parametrize("key", ["query_max_len", "passage_max_len"])
def test_contrastive_limits(tok, key, value):
    # BERT adds [CLS] and [SEP]: 2 leaves no room for a text token either
    with pytest.raises(ValueError, match=rf"data\.{key}={value} leaves no room"):
        ContrastiveDataModule(tok, train_files=["x.jsonl"], **{key: value})
    ContrastiveDataModule(tok, train_files=["x.jsonl"], **{key: 3})


def test_eos_is_counted_and_no_tokenizer_still_checks():
    with pytest.raises(ValueError, match=r"data\.query_max_len=2 .* at least 3"):
        ContrastiveDataModule(None, train_files=["x.jsonl"], query_max_len=2, append_eos=True)
    with pytest.raises(ValueError, match=r"must be an integer"):
        check_max_len("embedder.max_length", 12.5)


@pytest.mark.parametrize("value", [0, 1])
def test_pretrain_max_len(tok, value):
    with pytest.raises(ValueError, match=rf"data\.max_len={value}"):
        PretrainDataModule(tok, train_files=["x.jsonl"], max_len=value)


@pytest.mark.parametrize("value", [0, 1])
def test_embedder_max_length_via_the_config(tiny_bert, tmp_path, value):
    from embedlight.training.run import build
    from tests.helpers import compose_cfg, tiny_overrides

    cfg = compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), extra=[f"embedder.max_length={value}"]))
    with pytest.raises(Exception, match=rf"embedder\.max_length={value} leaves no room"):
        build(cfg)


def test_both_samplers_check_the_batch_size_the_same_way():
    from embedlight.data.mixture import MixtureBatchSampler
    from embedlight.data.pretrain import ShuffledBatchSampler

    for make in (
        lambda: MixtureBatchSampler([], batch_size=0),
        lambda: ShuffledBatchSampler(10, batch_size=0),
    ):
        with pytest.raises(ValueError, match=r"^data\.batch_size must be >= 1, got 0$"):
            make()


def _jsonl(path, rows):
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_both_datamodules_refuse_an_epoch_without_a_full_batch(tok, tmp_path):
    triplets = _jsonl(tmp_path / "t.jsonl", [{"query": f"q{i}", "pos": [f"p{i}"]} for i in range(3)])
    dm = ContrastiveDataModule(tok, train_files=[triplets], batch_size=4, num_workers=0)
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"^no full batch: 3 rows for batch_size=4 x 1 device\(s\); lower"):
        dm.train_dataloader()
    texts = _jsonl(tmp_path / "x.jsonl", [{"text": "a short text"}] * 3)
    pm = PretrainDataModule(tok, train_files=[texts], batch_size=4, max_len=16, num_workers=0)
    pm.setup("fit")
    with pytest.raises(ValueError, match=r"^no full batch: 3 chunks for batch_size=4 x 1 device\(s\); lower"):
        pm.train_dataloader()
