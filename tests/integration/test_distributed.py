"""Distributed logic on 2 CPU processes (gloo): cross-device negatives and a DDP training run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from embedlight.losses.infonce import InfoNCELoss
from tests.helpers import tiny_overrides


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=-1)  # (B=4, D)
    d = torch.nn.functional.normalize(torch.randn(8, 8, generator=g), dim=-1)  # (B*G=8, D), G=2
    return q, d


def _worker(rank: int, port: int, out: str, kwargs: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    q, d = _data()
    ql = q[rank * 2 : rank * 2 + 2].clone().requires_grad_()  # (2, D) this rank's queries
    dl = d[rank * 4 : rank * 4 + 4].clone().requires_grad_()  # (4, D) their groups
    loss = InfoNCELoss(temperature=0.1, **kwargs)(ql, dl)
    loss.backward()
    torch.save({"loss": loss.detach(), "gq": ql.grad, "gd": dl.grad}, os.path.join(out, f"r{rank}.pt"))
    dist.barrier()  # both ranks done with their collectives before gloo is torn down
    dist.destroy_process_group()


def _check(tmp_path, **kwargs):
    try:
        mp.spawn(_worker, args=(_free_port(), str(tmp_path), kwargs), nprocs=2, join=True)
    except mp.ProcessExitedException:
        # gloo can abort in its destructor at interpreter exit ("terminate called without an active
        # exception") after the work is done; the results written before that are still checked below
        if not all((tmp_path / f"r{i}.pt").exists() for i in range(2)):
            raise
    q, d = _data()
    q.requires_grad_()
    d.requires_grad_()
    full = InfoNCELoss(temperature=0.1, **kwargs)(q, d)
    full.backward()
    r = [torch.load(tmp_path / f"r{i}.pt", weights_only=True) for i in range(2)]
    # DDP averages the ranks: mean of rank losses and half the summed gradients equal the full batch's
    torch.testing.assert_close((r[0]["loss"] + r[1]["loss"]) / 2, full.detach())
    torch.testing.assert_close(torch.cat([r[0]["gq"], r[1]["gq"]]) / 2, q.grad)
    torch.testing.assert_close(torch.cat([r[0]["gd"], r[1]["gd"]]) / 2, d.grad)


def test_cross_device_negatives_equal_one_big_batch(tmp_path):
    _check(tmp_path)


def test_cross_device_with_gtr_and_gte_terms(tmp_path):
    _check(tmp_path, bidirectional=True, extended=True)


def test_ddp_cpu_training_run(tiny_bert, tmp_path):
    """`hardware=ddp_cpu`: two gloo processes train, rank 0 evaluates and exports."""
    overrides = tiny_overrides(tiny_bert, str(tmp_path), steps=3, extra=["hardware=ddp_cpu", "logger=csv"])
    cmd = [sys.executable, "-m", "embedlight.train", *overrides]
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics) == {"before", "after"}
    assert (tmp_path / "out" / "export" / "modules.json").exists()
    assert "distributed_backend=gloo" in proc.stderr or "ddp" in proc.stderr.lower()
