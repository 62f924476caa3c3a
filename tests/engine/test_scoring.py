"""embedlight-score: teacher scores added to a triplet JSONL, checked against sentence-transformers."""

from __future__ import annotations

import json

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from embedlight.data import ContrastiveDataModule
from embedlight.data.mixture import MixtureDataset
from embedlight.engine.scoring import score_file
from embedlight.utils.io import DataFormatError
from tests.helpers import write_triplets


def _teacher(kind, model):
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose(
            config_name="score",
            overrides=[
                f"teacher={kind}",
                f"teacher.model={model}",
                "teacher.device=cpu",
                "input=x",
                "output=y",
            ],
        )
    return instantiate(cfg.teacher)


def test_embedder_teacher_scores_are_cosines_and_train(tiny_bert, tmp_path):
    from sentence_transformers import SentenceTransformer

    src = write_triplets(str(tmp_path / "in.jsonl"), n=6)
    out = str(tmp_path / "out.jsonl")
    assert score_file(_teacher("embedder", tiny_bert), src, out, chunk_rows=4) == 6  # 2 chunks
    rows = [json.loads(line) for line in open(out)]
    originals = [json.loads(line) for line in open(src)]
    st = SentenceTransformer(tiny_bert, device="cpu")
    for row, orig in zip(rows, originals):
        assert {k: row[k] for k in orig} == orig  # every input field kept
        assert len(row["pos_scores"]) == len(row["pos"]) and len(row["neg_scores"]) == len(row["neg"])
        q = st.encode([row["query"]], convert_to_tensor=True)
        d = st.encode(row["pos"] + row["neg"], convert_to_tensor=True)
        expected = torch.nn.functional.cosine_similarity(q, d).tolist()
        assert row["pos_scores"] + row["neg_scores"] == pytest.approx(expected, abs=1e-4)
    # the scored file trains: its rows carry teacher scores into the dataset
    dm = ContrastiveDataModule(train_files=[out], batch_size=2, group_size=3)
    dm.setup("fit")
    item = MixtureDataset(dm.sources, 3)[(0, 0, 0)]
    assert len(item["teacher_scores"]) == 3
    # never overwritten silently; bad rows are named
    with pytest.raises(FileExistsError, match="overwrite"):
        score_file(None, src, out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a", "pos": ["b"]}\n{"query": "a", "pos": "b"}\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: field 'pos'"):
        score_file(_teacher("embedder", tiny_bert), str(bad), str(tmp_path / "bad.out.jsonl"))
    assert not (tmp_path / "bad.out.jsonl").exists() and not (tmp_path / "bad.out.jsonl.tmp").exists()


def test_cross_encoder_teacher_scores_each_pair(tiny_bert, tmp_path):
    from sentence_transformers import CrossEncoder

    src = write_triplets(str(tmp_path / "in.jsonl"), n=3)
    out = str(tmp_path / "out.jsonl")
    teacher = _teacher("cross_encoder", tiny_bert)  # the tiny BERT's classifier head is random
    score_file(teacher, src, out)
    reference = CrossEncoder(tiny_bert, device="cpu", activation_fn=torch.nn.Identity())
    reference.model.load_state_dict(teacher.model.model.state_dict())
    for row in (json.loads(line) for line in open(out)):
        for doc, s in zip(row["pos"] + row["neg"], row["pos_scores"] + row["neg_scores"]):
            assert s == pytest.approx(float(reference.predict([(row["query"], doc)])[0]), abs=1e-4)
