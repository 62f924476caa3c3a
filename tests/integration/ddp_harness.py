"""Real multi-process DDP runs for tests: ``python -m embedlight.cli.train`` on 2 gloo CPU processes.

Reusable pieces:

* :func:`run_train` runs the entry point in a subprocess (``PYTHONPATH`` = the repo,
  ``OMP_NUM_THREADS=1``) and returns the finished process.
* :func:`ddp_and_single` trains ``steps`` optimizer steps twice from the same tiny model: under
  ``hardware=ddp_cpu`` (W=2 processes of B rows each) and in 1 process with ``batch_size = W*B``. The
  mixture sampler cuts each epoch into global batches of ``W*B`` rows, so the 1-process batch of step
  ``i`` is exactly the union of the ranks' batches of step ``i``. Dropout is off, the optimizer is
  plain SGD (``lr`` large enough for the weights to move; Adam would hide a wrong gradient scale since
  its update is invariant to it), and the weights of both ``last.ckpt`` files are returned.
* :class:`BatchRecorder`, a callback (``+callbacks.record={_target_: tests.integration.ddp_harness.
  BatchRecorder, path: ...}``) that writes, per rank, the kind and the query ids of every batch.
* :func:`checkpoint_weights` / :func:`assert_same_weights`.

Why the two runs must agree: with cross-device negatives each rank's loss is the mean over its B
queries of InfoNCE against all ``W*B*G`` gathered documents, and the gather keeps the gradient path
to every rank's slice; DDP averages the W ranks' gradients, which is the gradient of the mean over
``W*B`` queries, i.e. the 1-process loss.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import lightning as L
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NO_DROPOUT = "backbone.config_overrides={hidden_dropout_prob:0.0,attention_probs_dropout_prob:0.0}"


def run_train(overrides: list[str], timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m embedlight.cli.train <overrides>`` in a subprocess; raise with its log if it fails."""
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "embedlight.cli.train", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(overrides)}\nexit {proc.returncode}\n{proc.stderr[-6000:]}")
    return proc


def checkpoint_weights(output_dir: str) -> dict[str, torch.Tensor]:
    """The module's ``state_dict`` in ``<output_dir>/checkpoints/last.ckpt``."""
    path = os.path.join(output_dir, "checkpoints", "last.ckpt")
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def max_weight_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference over every tensor (the keys must match)."""
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-5) -> None:
    """Every tensor of ``a`` within ``atol`` of ``b``."""
    diff = max_weight_diff(a, b)
    assert diff <= atol, f"weights differ by {diff:.3g} > {atol}"


def ddp_and_single(
    base: list[str],
    tmp: str,
    steps: int,
    per_rank_batch: int = 2,
    world: int = 2,
    lr: float = 0.5,
    no_dropout: str | None = NO_DROPOUT,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, list[dict]]]:
    """Train ``steps`` steps under ``world``-process DDP and in 1 process over the same global batches.

    Args:
        base: Overrides shared by both runs (model, data, loss, ...); ``paths.output_dir``,
            ``data.batch_size`` and the hardware preset are set here.
        tmp: Scratch folder (``ddp/`` and ``single/`` outputs).
        steps: Optimizer steps.
        per_rank_batch: ``B``; the 1-process run uses ``world * B``.
        world: DDP processes (``trainer.devices``).
        lr: SGD learning rate.
        no_dropout: The override that turns the backbone's dropout off (BERT's config names by
            default; pass e.g. ``backbone.config_overrides={attention_dropout:0.0}`` for Llama).

    Returns:
        ``(ddp_weights, single_weights, records)``, where ``records`` maps ``ddp_r0``, ``ddp_r1``, ...
        and ``single_r0`` to the :class:`BatchRecorder` rows of each process.
    """
    mine = ("hardware=", "data.batch_size=", "trainer.max_steps=", "paths.output_dir=", "evaluation=")
    base = [o for o in base if not o.startswith(mine) and not o.startswith("+evaluation.")]
    common = [
        *base,
        *([no_dropout] if no_dropout else []),
        "module.optimizer._target_=torch.optim.SGD",
        f"module.optimizer.lr={lr}",
        "module.optimizer.weight_decay=0.0",
        f"trainer.max_steps={steps}",
        f"callbacks.checkpoint.every_n_train_steps={steps}",
        "export=false",
        "evaluation=none",
        "callbacks.evaluation=null",
    ]
    runs = {
        "ddp": ["hardware=ddp_cpu", f"trainer.devices={world}", f"data.batch_size={per_rank_batch}"],
        "single": ["hardware=cpu", f"data.batch_size={world * per_rank_batch}"],
    }
    weights, records = {}, {}
    for name, extra in runs.items():
        out = os.path.join(tmp, name)
        record = os.path.join(tmp, f"{name}_batches")
        rec = f"+callbacks.record={{_target_: tests.integration.ddp_harness.BatchRecorder, path: '{record}'}}"
        run_train([*common, *extra, f"paths.output_dir={out}", rec])
        weights[name] = checkpoint_weights(out)
        records.update({f"{name}_{k}": v for k, v in read_records(record).items()})
    return weights["ddp"], weights["single"], records


class BatchRecorder(L.Callback):
    """Writes ``<path>.rank<r>.jsonl``: per training batch its step, kind and query ids.

    ``kind`` is ``pairs`` (scored pairs), ``triplet`` (in-batch negatives) or ``triplet_no_inbatch``.

    Args:
        path: File prefix.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        kind = str(batch.kind)  # pairs or triplet
        if kind == "triplet" and batch.in_batch_negatives is False:
            kind = "triplet_no_inbatch"
        qh = batch.query_hash
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "batch_idx": batch_idx,
            "kind": kind,
            "rows": batch.size,
            "query_hash": qh.tolist() if qh is not None else None,
        }
        with open(f"{self.path}.rank{trainer.global_rank}.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")


def read_records(path: str) -> dict[str, list[dict]]:
    """``{"r0": [...], "r1": [...]}`` from the files a :class:`BatchRecorder` wrote under ``path``."""
    folder, prefix = os.path.split(path)
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith(prefix + ".rank") and name.endswith(".jsonl"):
            rank = name[len(prefix) + 5 : -6]
            with open(os.path.join(folder, name)) as fh:
                out[f"r{rank}"] = [json.loads(line) for line in fh]
    return out


class SignalAt(L.Callback):
    """Sends ``signum`` to this process at the end of optimizer step ``step`` (global rank 0 only).

    Simulates a scheduler signalling one process mid-epoch: ``+callbacks.kill={_target_:
    tests.integration.ddp_harness.SignalAt, step: 3}``.

    Args:
        step: The ``global_step`` after which the signal is sent.
        signum: The signal (15 = SIGTERM, 10 = SIGUSR1).
    """

    def __init__(self, step: int, signum: int = 15) -> None:
        self.step = step
        self.signum = signum
        self._sent = False

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.is_global_zero and not self._sent and trainer.global_step == self.step:
            self._sent = True
            os.kill(os.getpid(), self.signum)


def write_pairs(path: str, n: int = 16, seed: int = 2) -> str:
    """Scored pairs ``{text1, text2, score}`` from the tiny tokenizer's words."""
    import random

    from tests.helpers import WORDS

    rng = random.Random(seed)
    with open(path, "w") as fh:
        for _ in range(n):
            a = " ".join(rng.choice(WORDS) for _ in range(5))
            b = " ".join(rng.choice(WORDS) for _ in range(5))
            fh.write(json.dumps({"text1": a, "text2": b, "score": round(rng.random() * 5, 2)}) + "\n")
    return path
