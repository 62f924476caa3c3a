"""A 4-trial Optuna sweep (learning rate x temperature) of `embedlight-train` on a tiny model, as a user
runs it: `python -m embedlight.cli.train -m hparams_search=lr_temperature hydra.sweeper.n_trials=4 ...`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import yaml

from embedlight.training.sweep_table import to_markdown, trial_table
from tests.helpers import write_beir, write_triplets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_optuna_sweep_returns_metric_and_writes_trial_table(tiny_bert, tmp_path):
    train = write_triplets(str(tmp_path / "train.jsonl"))
    beir = write_beir(str(tmp_path / "beir"))
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable, "-m", "embedlight.cli.train", "-m",
        "hparams_search=lr_temperature", "hydra.sweeper.n_trials=4",
        "experiment=quickstart", f"backbone.pretrained={tiny_bert}", f"data.train_files=[{train}]",
        "data.prepare=null", "data.batch_size=4", "evaluation=none", "hardware=cpu",
        f"+validation.v={{_target_: embedlight.evaluation.RetrievalEvaluator, path: '{beir}'}}",
        "monitor=val/v/ndcg@10", "trainer.max_steps=3", "callbacks.validation.every_n_steps=0",
        "callbacks.progress=null", "callbacks.plots=null", "embedder.max_length=32", "export=false",
        f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    trials = [json.loads((sweep / str(i) / "trial.json").read_text()) for i in range(4)]
    for i, t in enumerate(trials):
        assert t["trial"] == i and t["status"] == "completed"
        assert set(t["params"]) == {"module.optimizer.lr", "loss.temperature"}
        assert 1e-6 <= t["params"]["module.optimizer.lr"] <= 1e-3
        assert 0.01 <= t["params"]["loss.temperature"] <= 0.1
        # the objective each trial returned is its validation nDCG@10 (the only validation: the last step)
        val = json.loads((sweep / str(i) / "validation.json").read_text())
        assert t["objective"] == val["step_3"]["v/ndcg@10"]
    assert len({t["params"]["module.optimizer.lr"] for t in trials}) == 4  # TPE proposed distinct points

    # Optuna's own record agrees with the best row of our table
    best = max(trials, key=lambda t: t["objective"])
    optuna_best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert optuna_best["best_value"] == best["objective"]

    with open(sweep / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["trial"]) for r in rows] == [
        t["trial"] for t in sorted(trials, key=lambda t: -t["objective"])
    ]
    assert float(rows[0]["val/v/ndcg@10"]) == best["objective"] and rows[0]["rank"] == "1"
    md = (sweep / "trials.md").read_text()
    assert (
        md.splitlines()[0]
        == "| rank | trial | loss.temperature | module.optimizer.lr | val/v/ndcg@10 | status |"
    )
    assert len(md.strip().splitlines()) == 2 + 4
    assert md.strip() in proc.stdout  # printed at the end of the sweep


def test_sweep_table_sorts_best_first_and_puts_failures_last():
    trials = [
        {"trial": 0, "params": {"lr": 1e-4}, "objective": 0.3, "status": "completed"},
        {"trial": 1, "params": {"lr": 1e-3}, "objective": None, "status": "failed"},
        {"trial": 2, "params": {"lr": 1e-5}, "objective": 0.7, "status": "completed"},
    ]
    columns, rows = trial_table(trials, "maximize")
    assert columns == ["rank", "trial", "lr", "objective", "status"]
    assert [r[1] for r in rows] == [2, 0, 1] and rows[2][0] == "-"
    _, rows_min = trial_table(trials, "minimize")
    assert [r[1] for r in rows_min] == [0, 2, 1]
    assert to_markdown(columns, rows).splitlines()[2] == "| 1 | 2 | 1e-05 | 0.7 | completed |"
