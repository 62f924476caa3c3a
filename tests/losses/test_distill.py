"""Distillation: hand-computed KL, teacher scores from rows to the batch, and a student that learns them."""

from __future__ import annotations

import json
import math
import random

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from embedlight.data.mixture import MixtureDataset, Source
from embedlight.registry import registered
from embedlight.training.run import build
from tests.helpers import WORDS, compose_cfg, tiny_overrides

# 2 queries x 3 documents; q.d by hand: q0 -> [1, 0.5, 0], q1 -> [1, 0, -1]
Q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
D = torch.tensor([[1.0, 0.0], [0.5, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0]])
STUDENT = [[1.0, 0.5, 0.0], [1.0, 0.0, -1.0]]
TEACHER = [[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]]


def _softmax(xs, t):
    z = sum(math.exp(x / t) for x in xs)
    return [math.exp(x / t) / z for x in xs]


def _kl_by_hand(teacher, student, t_t, t_s):
    total = 0.0
    for tr, sr in zip(teacher, student):
        p, q = _softmax(tr, t_t), _softmax(sr, t_s)
        total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    return total / len(teacher)


def test_distill_kl_known_value_2x3():
    loss = registered("loss")["distill_kl"](temperature=0.5, teacher_temperature=2.0)
    value = loss(Q, D, teacher_scores=torch.tensor(TEACHER)).item()
    expected = _kl_by_hand(TEACHER, STUDENT, t_t=2.0, t_s=0.5)
    assert expected > 0.1  # the example is far from a match
    assert value == pytest.approx(expected, abs=1e-6)
    # p_t = softmax([1, .5, 0]) for row 0; one number written out so a shared mistake cannot hide
    p0 = [math.exp(1) / (math.exp(1) + math.exp(0.5) + 1), math.exp(0.5) / (math.exp(1) + math.exp(0.5) + 1)]
    assert _softmax(TEACHER[0], 2.0)[:2] == pytest.approx(p0)


def test_distill_kl_is_zero_when_student_matches_and_temperatures_matter():
    loss = registered("loss")["distill_kl"](temperature=1.0, teacher_temperature=1.0)
    assert loss(Q, D, teacher_scores=torch.tensor(STUDENT)).item() == pytest.approx(0.0, abs=1e-7)
    # same scores, but the student is sharpened 2x: no longer a match
    sharp = registered("loss")["distill_kl"](temperature=0.5, teacher_temperature=1.0)
    assert sharp(Q, D, teacher_scores=torch.tensor(STUDENT)).item() > 0.01


def test_distill_kl_gradient_matches_cross_entropy_form():
    # FlagEmbedding minimises -sum p_t log p_s; KL differs by the teacher entropy: same gradient
    q = Q.clone().requires_grad_()
    registered("loss")["distill_kl"](temperature=0.5, teacher_temperature=2.0)(
        q, D, teacher_scores=torch.tensor(TEACHER)
    ).backward()
    q2 = Q.clone().requires_grad_()
    student = torch.einsum("bd,bgd->bg", q2, D.view(2, 3, 2)) / 0.5
    p_t = F.softmax(torch.tensor(TEACHER) / 2.0, dim=-1)
    (-(p_t * F.log_softmax(student, dim=-1)).sum(-1).mean()).backward()
    assert q.grad.abs().sum() > 0
    assert torch.allclose(q.grad, q2.grad, atol=1e-6)


def test_distill_kl_errors_without_or_with_misshaped_teacher_scores():
    loss = registered("loss")["distill_kl"]()
    with pytest.raises(ValueError, match="pos_scores"):
        loss(Q, D)
    with pytest.raises(ValueError, match="shape"):
        loss(Q, D, teacher_scores=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="non-finite"):
        loss(Q, D, teacher_scores=torch.tensor([[0.0, float("nan"), 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="teacher_temperature"):
        registered("loss")["distill_kl"](teacher_temperature=0.0)


def test_infonce_distill_is_the_weighted_sum():
    t = torch.tensor(TEACHER)
    infonce = registered("loss")["infonce"](temperature=0.5)(Q, D)
    kl = registered("loss")["distill_kl"](temperature=0.5, teacher_temperature=2.0)(Q, D, teacher_scores=t)
    combined = registered("loss")["infonce_distill"](
        temperature=0.5, teacher_temperature=2.0, infonce_weight=0.3, distill_weight=2.0
    )
    assert combined(Q, D, teacher_scores=t).item() == pytest.approx(0.3 * infonce.item() + 2.0 * kl.item())
    with pytest.raises(ValueError, match="teacher"):
        combined(Q, D)
    lenient = registered("loss")["infonce_distill"](temperature=0.5, require_teacher=False)
    assert lenient(Q, D).item() == pytest.approx(infonce.item())


def test_loss_composes_from_the_command_line(tiny_bert, tmp_path):
    cfg = compose_cfg(
        tiny_overrides(tiny_bert, str(tmp_path), extra=["loss=infonce_distill", "loss.distill_weight=0.5"])
    )
    module, _ = build(cfg)
    assert type(module.loss).__name__ == "InfoNCEDistillLoss" and module.loss.distill_weight == 0.5


def _rows_with_scores(n=3):
    return [
        {
            "query": f"q{i}",
            "pos": [f"p{i}a", f"p{i}b"],
            "neg": [f"n{i}_{j}" for j in range(4)],
            "pos_scores": [10.0 + i, 20.0 + i],
            "neg_scores": [float(j) + i / 10 for j in range(4)],
        }
        for i in range(n)
    ]


def test_dataset_carries_the_scores_of_the_sampled_documents():
    rows = _rows_with_scores()
    score_of = {}
    for r in rows:
        score_of.update(zip(r["pos"], r["pos_scores"]))
        score_of.update(zip(r["neg"], r["neg_scores"]))
    for group_size in (1, 3, 7):  # fewer negatives, more negatives (repeats) than the row has
        ds = MixtureDataset([Source("s", rows)], group_size=group_size, seed=3)
        for epoch in range(4):
            for i in range(len(rows)):
                item = ds[(epoch, 0, i)]
                assert len(item["teacher_scores"]) == group_size
                assert item["teacher_scores"] == [score_of[d] for d in item["docs"]]


def test_dataset_has_no_scores_when_negatives_come_from_other_rows_or_rows_lack_them():
    rows = [{"query": f"q{i}", "pos": [f"p{i}"], "neg": [], "pos_scores": [1.0]} for i in range(4)]
    ds = MixtureDataset([Source("s", rows)], group_size=2)
    assert "teacher_scores" not in ds[(0, 0, 0)]
    plain = [{"query": "q", "pos": ["p"], "neg": ["n"]}]
    assert "teacher_scores" not in MixtureDataset([Source("s", plain)], group_size=2)[(0, 0, 0)]


def _write_scored(path, n=24, seed=0):
    """Rows whose teacher prefers documents that share more words with the query."""
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for _ in range(n):
            q = [rng.choice(WORDS) for _ in range(4)]
            docs = [q[:k] + [rng.choice(WORDS) for _ in range(6 - k)] for k in (4, 3, 1, 0)]
            scores = [float(len(set(q) & set(d))) * 2.0 for d in docs]
            fh.write(
                json.dumps(
                    {
                        "query": " ".join(q),
                        "pos": [" ".join(docs[0])],
                        "neg": [" ".join(d) for d in docs[1:]],
                        "pos_scores": scores[:1],
                        "neg_scores": scores[1:],
                    }
                )
                + "\n"
            )
    return path


def _mean_kl(module, datamodule, loss):
    dataset = MixtureDataset(datamodule.sources, datamodule.group_size, datamodule.seed)
    collate = datamodule.collator()
    keys = [(0, 0, i) for i in range(len(datamodule.sources[0]))]
    batch = collate([dataset[k] for k in keys])
    module.eval()
    with torch.no_grad():
        value = loss(
            module.embedder(batch.query),
            module.embedder(batch.docs),
            teacher_scores=batch.teacher_scores,
        )
    module.train()
    return value.item()


def test_student_moves_toward_the_teacher(tiny_bert, tmp_path):
    torch.manual_seed(0)
    data = _write_scored(str(tmp_path / "scored.jsonl"))
    extra = [
        "loss=distill_kl",
        "loss.temperature=0.05",
        f"data.train_files=[{data}]",
        "data.group_size=4",
        "module.optimizer.lr=1e-3",
        "module.scheduler=null",
    ]
    cfg = compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), extra=extra))
    module, datamodule = build(cfg)
    datamodule.setup("fit")
    before = _mean_kl(module, datamodule, module.loss)
    trainer = L.Trainer(
        max_steps=36,
        accelerator="cpu",
        precision="32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        max_epochs=-1,
    )
    trainer.fit(module, datamodule=datamodule)
    after = _mean_kl(module, datamodule, module.loss)
    assert before > 0.2
    print(f"KL before {before:.4f} after {after:.4f}")
    assert after < 0.5 * before, (before, after)


def test_collator_adds_teacher_scores_only_when_every_row_has_them(tiny_bert):
    from transformers import AutoTokenizer

    from embedlight.data.collator import ContrastiveCollator

    collate = ContrastiveCollator(AutoTokenizer.from_pretrained(tiny_bert), [Source("s", [])])
    scored = {"source": 0, "query": "q", "docs": ["a", "b"], "teacher_scores": [2.0, -1.0]}
    batch = collate([scored, {**scored, "teacher_scores": [0.5, 0.25]}])
    assert torch.equal(batch.teacher_scores, torch.tensor([[2.0, -1.0], [0.5, 0.25]]))  # (B, G)
    plain = {"source": 0, "query": "q", "docs": ["a", "b"]}
    assert collate([scored, plain]).teacher_scores is None


def test_distill_kl_is_fp32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(4, 64, generator=g), dim=-1)  # (B, D)
    d = F.normalize(torch.randn(12, 64, generator=g), dim=-1)  # (B*G, D), G = 3
    t = torch.randn(4, 3, generator=g)
    fn = registered("loss")["distill_kl"](temperature=0.02)
    ref = _kl_by_hand(
        t.tolist(), torch.einsum("bd,bgd->bg", q.double(), d.double().view(4, 3, 64)).tolist(), 1.0, 0.02
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = fn(q, d, teacher_scores=t)
    assert value.dtype == torch.float32 and value.item() == pytest.approx(ref, rel=1e-4)
