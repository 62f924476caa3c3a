"""Exact mid-epoch resume for every recipe: k steps straight == k/2 steps, copy the checkpoint,
resume=auto, k/2 more; bit-identical weights (torch.equal) on the CPU in fp32 (`hardware=cpu`)."""

from __future__ import annotations

import glob
import json
import os
import shutil

import pytest
import torch

from embedlight.training.run import run
from tests.helpers import WORDS, compose_cfg, tiny_overrides, write_triplets


def _straight_then_resumed(tmp_path, overrides, steps: int, resume_at: int) -> None:
    """Run ``steps`` steps in a/, resume b/ from a/'s step-``resume_at`` checkpoint, compare last.ckpt."""
    a, b = tmp_path / "a", tmp_path / "b"
    every = [
        f"callbacks.checkpoint.every_n_train_steps={resume_at}",
        "callbacks.checkpoint.save_top_k=-1",
        "callbacks.evaluation=null",
        "logger=none",
        f"trainer.max_steps={steps}",
    ]
    run(compose_cfg([*overrides(a), *every]))
    mid = glob.glob(str(a / "out" / "checkpoints" / f"*step={resume_at}.ckpt"))
    assert mid, os.listdir(a / "out" / "checkpoints")
    os.makedirs(b / "out" / "checkpoints")
    shutil.copy(mid[0], b / "out" / "checkpoints" / "last.ckpt")
    run(compose_cfg([*overrides(b), *every, "resume=auto"]))
    sa = torch.load(a / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    sb = torch.load(b / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    assert sa["global_step"] == sb["global_step"] == steps
    assert sa["state_dict"].keys() == sb["state_dict"].keys() and sa["state_dict"]
    differ = [k for k, v in sa["state_dict"].items() if not torch.equal(sb["state_dict"][k], v)]
    assert not differ, f"weights differ after resume: {differ[:5]}"
    # and the resumed run really trained: its weights moved away from the checkpoint it started from
    start = torch.load(mid[0], weights_only=True)["state_dict"]
    assert any(not torch.equal(start[k], v) for k, v in sb["state_dict"].items())


def test_contrastive_resume_across_an_epoch_boundary(tiny_bert, tmp_path):
    """24 rows / batch 4 = 6 batches an epoch: resume 2 batches into epoch 1 (its own shuffle)."""

    def overrides(d):
        return tiny_overrides(tiny_bert, str(d), extra=["trainer.max_epochs=3"])

    _straight_then_resumed(tmp_path, overrides, steps=10, resume_at=8)


def _texts(path, n: int = 40) -> str:
    import random

    rng = random.Random(0)
    with open(path, "w") as fh:
        for _ in range(n):
            fh.write(json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(20))}) + "\n")
    return str(path)


@pytest.mark.parametrize("streaming", [False, True], ids=["map", "streaming"])
def test_retromae_resume(tiny_bert, tmp_path, streaming):
    texts = _texts(tmp_path / "texts.jsonl")

    def overrides(d):
        return [
            "experiment=retromae_tiny",
            f"backbone.pretrained={tiny_bert}",
            "backbone.config_overrides=null",
            f"data.train_files=[{texts}]",
            "data.max_len=16",
            "data.batch_size=4",
            f"data.streaming={str(streaming).lower()}",
            "+data.shuffle_buffer=16",
            f"paths.output_dir={d}/out",
            "callbacks.progress=null",
            "hardware=cpu",
        ]

    _straight_then_resumed(tmp_path, overrides, steps=4, resume_at=2)


def test_icl_resume(tiny_llama, tmp_path):
    train = write_triplets(str(tmp_path / "train.jsonl"), n=24)

    def overrides(d):
        return [
            "experiment=icl_tiny",
            f"backbone.pretrained={tiny_llama}",
            f"data.sources.retrieval.files=[{train}]",
            "evaluation={}",
            f"paths.output_dir={d}/out",
            "callbacks.progress=null",
            "hardware=cpu",
        ]

    _straight_then_resumed(tmp_path, overrides, steps=4, resume_at=2)


def test_a_finished_run_continues_exactly_with_more_steps(tiny_bert, tmp_path):
    """2 steps (a finished run), then resume=auto trainer.max_steps=4 == 4 steps straight. Lightning's own
    end-of-training save would keep an older step or mark the epoch finished (the rest skipped)."""
    extra = [
        "callbacks.evaluation=null",
        "logger=none",
        "module.scheduler=null",
    ]  # lr independent of max_steps
    run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path / "a"), steps=4, extra=extra)))
    b = tiny_overrides(tiny_bert, str(tmp_path / "b"), steps=2, extra=extra)
    run(compose_cfg(b))
    run(compose_cfg([*b, "resume=auto", "trainer.max_steps=4"]))
    sa = torch.load(tmp_path / "a" / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    assert sa["global_step"] == sb["global_step"] == 4
    assert all(torch.equal(sb["state_dict"][k], v) for k, v in sa["state_dict"].items())
