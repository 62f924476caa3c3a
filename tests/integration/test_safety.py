"""Nothing lost, nothing silent (issue 10): NaN/Inf stop the run, broken models fail evaluation."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch
from hydra import compose, initialize_config_module
from safetensors.torch import load_file, save_file

from embedlight.backbones.loading import IncompleteCheckpointError
from embedlight.callbacks import NonFiniteError
from embedlight.evaluation.base import NonFiniteEmbeddingError
from embedlight.train import run
from tests.helpers import compose_cfg, tiny_overrides, write_beir


def _digest(folder) -> dict[str, str]:
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            out[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def test_nan_loss_stops_and_keeps_last_checkpoint_and_export(tiny_bert, tmp_path):
    """`loss.temperature=1e-45` makes the loss NaN: the run must raise naming the step, and leave the
    previous last.ckpt and export byte for byte as they were."""
    extra = ["callbacks.checkpoint.every_n_train_steps=1", "callbacks.evaluation=null", "logger=none"]
    run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=2, extra=extra)))
    out = tmp_path / "out"
    before_ckpt, before_export = _digest(out / "checkpoints"), _digest(out / "export")
    bad = [*extra, "resume=auto", "loss.temperature=1e-45"]
    with pytest.raises(NonFiniteError, match=r"optimizer step 3 .*the loss is nan"):
        run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=4, extra=bad)))
    assert _digest(out / "checkpoints") == before_ckpt
    assert _digest(out / "export") == before_export
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2


def _evaluate(model: str, tmp_path):
    from embedlight.eval import evaluate

    beir = write_beir(str(tmp_path / "beir"))
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose(
            config_name="eval",
            overrides=[
                f"model={model}",
                f"+evaluation.tiny={{_target_: embedlight.evaluation.RetrievalEvaluator, path: '{beir}'}}",
                "device=cpu",
            ],
        )
    return evaluate(cfg)


def _copy_model(src: str, dst, edit) -> str:
    """A copy of the model folder ``src`` whose weights went through ``edit(state) -> state``."""
    os.makedirs(dst)
    for f in os.listdir(src):
        if f != "model.safetensors":
            with open(os.path.join(src, f), "rb") as a, open(os.path.join(dst, f), "wb") as b:
                b.write(a.read())
    save_file(edit(load_file(os.path.join(src, "model.safetensors"))), os.path.join(dst, "model.safetensors"))
    return str(dst)


def test_eval_of_nan_weights_fails_loudly(tiny_bert, tmp_path):
    def poison(state):
        state["encoder.layer.1.output.dense.weight"][0, 0] = float("nan")
        return state

    model = _copy_model(tiny_bert, tmp_path / "nan_model", poison)
    with pytest.raises(NonFiniteEmbeddingError, match=r"evaluator 'tiny': \d+ of \d+ embeddings are NaN/Inf"):
        _evaluate(model, tmp_path)


def test_missing_tensors_are_refused_in_eval_and_training(tiny_bert, tmp_path):
    from embedlight.backbones.hf_encoder import HFEncoder

    key = "encoder.layer.0.attention.self.query.weight"
    model = _copy_model(tiny_bert, tmp_path / "truncated", lambda s: {k: v for k, v in s.items() if k != key})
    with pytest.raises(
        IncompleteCheckpointError,
        match=rf"truncated: incomplete checkpoint, 1 tensor\(s\) missing: \['{key}'\]",
    ):
        _evaluate(model, tmp_path)
    with pytest.raises(IncompleteCheckpointError, match=key):
        HFEncoder(pretrained=model)


def test_missing_bert_pooler_is_allowed(tiny_bert, tmp_path):
    """BERT's next-sentence pooler head is never used for embeddings; MLM checkpoints lack it."""
    from embedlight.backbones.hf_encoder import HFEncoder

    model = _copy_model(
        tiny_bert,
        tmp_path / "nopooler",
        lambda s: {k: v for k, v in s.items() if not k.startswith("pooler.")},
    )
    HFEncoder(pretrained=model)
    assert 0.0 <= _evaluate(model, tmp_path)["tiny/ndcg@10"] <= 1.0
