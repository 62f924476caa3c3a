"""Validation during training: the best checkpoint by the monitored metric, export_from, early stopping.

A scripted evaluator returns chosen values at each validation, so the test knows which step is best;
an every-2-steps ``save_top_k=-1`` checkpoint of the same run is the independent reference for the
weights the best checkpoint and the export must hold.
"""

from __future__ import annotations

import glob
import json

import pytest
import torch
from safetensors.torch import load_file

from embedlight.callbacks.validation import BestCheckpoint, load_best_weights
from embedlight.evaluation import Evaluator
from embedlight.training.run import run
from tests.helpers import compose_cfg, tiny_overrides

SCRIPT = {2: 0.5, 4: 0.9, 6: 0.7, 8: 0.6, 10: 0.95}  # step -> validation score


class ScriptedEvaluator(Evaluator):
    """Returns ``SCRIPT[n]`` at its n-th call (steps 2, 4, ... when validating every 2 steps)."""

    def __init__(self, name: str = "scripted") -> None:
        self.name = name
        self.calls = 0

    def __call__(self, encoder) -> dict[str, float]:
        self.calls += 1
        return {f"{self.name}/score": SCRIPT[2 * self.calls], f"{self.name}/other": -float(self.calls)}


def _overrides(tiny_bert, tmp, steps, extra=()):
    return tiny_overrides(
        tiny_bert,
        tmp,
        steps=steps,
        extra=[
            "+validation.s={_target_: tests.integration.test_validation.ScriptedEvaluator}",
            "monitor=val/s/score",
            "callbacks.validation.every_n_steps=2",
            "callbacks.checkpoint.every_n_train_steps=2",
            "callbacks.checkpoint.save_top_k=-1",
            "module.optimizer.lr=1e-2",  # weights move visibly between checkpoints
            *extra,
        ],
    )


def _weights(ckpt):
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def test_best_checkpoint_and_export_from_best(tiny_bert, tmp_path):
    result = run(compose_cfg(_overrides(tiny_bert, str(tmp_path), steps=6, extra=["export_from=best"])))
    out = tmp_path / "out"
    ckpts = out / "checkpoints"
    validation = json.loads((out / "validation.json").read_text())
    assert sorted(validation) == ["step_2", "step_4", "step_6"]
    assert [validation[f"step_{s}"]["s/score"] for s in (2, 4, 6)] == [0.5, 0.9, 0.7]
    assert (
        result["objective"] == 0.9
    )  # what `embedlight-train` returns to a sweep: the exported weights' score

    best, step4, last = (_weights(ckpts / n) for n in ("best.ckpt", "epoch=0-step=4.ckpt", "last.ckpt"))
    key = "embedder.backbone.model.encoder.layer.0.attention.self.query.weight"
    key = key if key in best else next(k for k in best if k.endswith("query.weight"))
    assert not torch.equal(step4[key], last[key])  # the test can tell best from last
    for k, v in step4.items():
        torch.testing.assert_close(best[k], v, rtol=0, atol=0)

    exported = load_file(str(out / "export" / "model.safetensors"))
    suffix = key.split("encoder.", 1)[1]
    ekey = next(k for k in exported if k.endswith(suffix))
    torch.testing.assert_close(exported[ekey], step4[key], rtol=0, atol=0)
    # the evaluation tasks also scored the exported (best) weights, besides before/after
    assert set(json.loads((out / "metrics.json").read_text())) == {"before", "after", "best"}
    csv = open(glob.glob(str(out / "logs" / "*" / "metrics.csv"))[0]).read()
    assert "val/s/score" in csv.splitlines()[0]
    assert {p.name for p in (out / "plots").glob("*.png")} >= {
        "loss.png",
        "lr.png",
        "evaluation.png",
        "validation.png",
    }


def test_early_stopping_and_export_from_last(tiny_bert, tmp_path):
    # best 0.9 at step 4; steps 6 (0.7) and 8 (0.6) do not improve -> patience 2 stops at step 8
    extra = ["callbacks.early_stopping.patience=2", "callbacks.evaluation=null", "trainer.max_epochs=-1"]
    result = run(compose_cfg(_overrides(tiny_bert, str(tmp_path), steps=10, extra=extra)))
    assert sorted(json.loads((tmp_path / "out" / "validation.json").read_text())) == [
        "step_2",
        "step_4",
        "step_6",
        "step_8",
    ]
    assert torch.load(tmp_path / "out" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 8
    assert result["objective"] == 0.6  # export_from=last (default): the score at the stop
    out = tmp_path / "out"
    exported = load_file(str(out / "export" / "model.safetensors"))
    last = _weights(out / "checkpoints" / "last.ckpt")
    key = next(k for k in last if k.endswith("layer.0.attention.self.query.weight"))
    ekey = next(k for k in exported if k.endswith("layer.0.attention.self.query.weight"))
    torch.testing.assert_close(exported[ekey], last[key], rtol=0, atol=0)


def test_unknown_monitor_and_bad_export_from_fail_clearly(tiny_bert, tmp_path):
    with pytest.raises(KeyError, match=r"monitor='val/s/typo'.*val/s/score"):
        run(compose_cfg(_overrides(tiny_bert, str(tmp_path / "a"), steps=2, extra=["monitor=val/s/typo"])))
    with pytest.raises(ValueError, match="export_from"):
        run(compose_cfg(_overrides(tiny_bert, str(tmp_path / "b"), steps=2, extra=["export_from=first"])))
    with pytest.raises(FileNotFoundError, match="no best checkpoint"):
        load_best_weights(torch.nn.Linear(1, 1), [BestCheckpoint(monitor=None)])


@pytest.mark.slow
def test_ddp_cpu_validation_best_checkpoint_and_early_stopping(tiny_bert, tmp_path):
    """Two gloo processes: rank 0 validates and broadcasts, both ranks take the same checkpoint and
    stopping decisions (a rank without the score would hang in the collective ones)."""
    import os
    import subprocess
    import sys

    extra = [
        "hardware=ddp_cpu",
        "export_from=best",
        "callbacks.early_stopping.patience=2",
        "trainer.max_epochs=-1",
    ]
    cmd = [
        sys.executable,
        "-m",
        "embedlight.cli.train",
        *_overrides(tiny_bert, str(tmp_path), steps=10, extra=extra),
    ]
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "out"
    assert sorted(json.loads((out / "validation.json").read_text())) == [
        "step_2",
        "step_4",
        "step_6",
        "step_8",
    ]
    best, step4 = (
        _weights(out / "checkpoints" / "best.ckpt"),
        _weights(glob.glob(str(out / "checkpoints" / "*-step=4.ckpt"))[0]),
    )
    for k, v in step4.items():
        torch.testing.assert_close(best[k], v, rtol=0, atol=0)
    assert (out / "export" / "model.safetensors").exists()
