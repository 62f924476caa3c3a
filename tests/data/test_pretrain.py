"""PretrainDataModule: validated plain-text JSONL, BEIR fields, chunking, streaming."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from embedlight.data.pretrain import PretrainDataModule
from embedlight.testing import make_tiny_model
from embedlight.utils.io import DataFormatError


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return AutoTokenizer.from_pretrained(
        make_tiny_model(str(tmp_path_factory.mktemp("tiny") / "bert"), "bert")
    )


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_long_documents_become_chunks_of_max_len(tokenizer, tmp_path):
    long_doc = " ".join(["the cat is on the red bank"] * 10)  # 70 words
    files = [_write(tmp_path / "a.jsonl", [{"text": long_doc}, {"text": "a dog"}] * 4)]
    dm = PretrainDataModule(tokenizer, train_files=files, max_len=16, batch_size=4, min_chunk_len=1)
    dm.setup("fit")
    rows = dm.dataset["input_ids"]
    assert len(rows) == 4 * (5 + 1)  # 70 tokens -> 5 chunks of 14 (+[CLS],[SEP]); "a dog" -> 1
    assert all(
        len(r) <= 16 and r[0] == tokenizer.cls_token_id and r[-1] == tokenizer.sep_token_id for r in rows
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[0] == 4 and batch["input_ids"].shape == batch["attention_mask"].shape
    assert (batch["input_ids"][:, 0] == tokenizer.cls_token_id).all()  # right padding: slot 0 is [CLS]


def test_bad_rows_name_file_line_and_field(tokenizer, tmp_path):
    path = _write(tmp_path / "bad.jsonl", [{"text": "the cat"}, {"text": 3}])
    dm = PretrainDataModule(tokenizer, train_files=[path], max_len=16)
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:2: field 'text'"):
        dm.setup("fit")
    path = _write(tmp_path / "beir.jsonl", [{"_id": "1", "title": "news", "text": "the cat"}, {"_id": "2"}])
    dm = PretrainDataModule(tokenizer, train_files=[path], max_len=16, title_field="title")
    with pytest.raises(DataFormatError, match=r"beir\.jsonl:2: field 'text': missing"):
        dm.setup("fit")


def test_beir_title_is_prepended(tokenizer, tmp_path):
    path = _write(tmp_path / "beir.jsonl", [{"_id": "1", "title": "news", "text": "the cat"}])
    dm = PretrainDataModule(tokenizer, train_files=[path], max_len=16, title_field="title", batch_size=1)
    dm.setup("fit")
    assert tokenizer.decode(dm.dataset["input_ids"][0], skip_special_tokens=True) == "news . the cat"


def test_streaming_yields_batches(tokenizer, tmp_path):
    files = [
        _write(tmp_path / f"{i}.jsonl", [{"text": "the cat is on the red bank " * 3}] * 10) for i in range(2)
    ]
    dm = PretrainDataModule(tokenizer, train_files=files, max_len=8, batch_size=4, streaming=True)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert batches and all(b["input_ids"].shape[0] == 4 and b["input_ids"].shape[1] <= 8 for b in batches)


def test_needs_some_data():
    with pytest.raises(ValueError, match="train_files"):
        PretrainDataModule(None)


@pytest.mark.parametrize("streaming", [False, True])
def test_hf_dataset_with_another_text_field(tokenizer, tmp_path, streaming):
    path = _write(
        tmp_path / "hf.jsonl", [{"body": "the cat is on the red bank " * 2, "id": i} for i in range(12)]
    )
    dm = PretrainDataModule(
        tokenizer,
        hf_dataset="json",
        hf_data_files=[path],
        text_field="body",
        streaming=streaming,
        max_len=8,
        batch_size=4,
    )
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 12 * 2 // 4  # 14 words -> 2 chunks of 6 (+[CLS],[SEP]) per row
    assert all(b["input_ids"].shape == (4, 8) for b in batches)
