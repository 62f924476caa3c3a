"""Distributed logic on 2 CPU processes (gloo): cross-device negatives and a DDP training run."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from embedlight.losses.infonce import InfoNCELoss
from tests.helpers import tiny_overrides, write_triplets
from tests.integration.ddp_harness import (
    assert_same_weights,
    checkpoint_weights,
    ddp_and_single,
    read_records,
    run_train,
    write_pairs,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=-1)  # (B=4, D)
    d = torch.nn.functional.normalize(torch.randn(8, 8, generator=g), dim=-1)  # (B*G=8, D), G=2
    return q, d


def _worker(rank: int, port: int, out: str, kwargs: dict, hashes: dict | None = None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    q, d = _data()
    ql = q[rank * 2 : rank * 2 + 2].clone().requires_grad_()  # (2, D) this rank's queries
    dl = d[rank * 4 : rank * 4 + 4].clone().requires_grad_()  # (4, D) their groups
    ids = {}
    if hashes:  # this rank's slice of the text ids
        ids = {
            "query_hash": hashes["query_hash"][rank * 2 : rank * 2 + 2],
            "doc_hash": hashes["doc_hash"][rank * 4 : rank * 4 + 4],
        }
    loss = InfoNCELoss(temperature=0.1, **kwargs)(ql, dl, **ids)
    loss.backward()
    torch.save({"loss": loss.detach(), "gq": ql.grad, "gd": dl.grad}, os.path.join(out, f"r{rank}.pt"))
    dist.barrier()  # both ranks done with their collectives before gloo is torn down
    dist.destroy_process_group()


def _check(tmp_path, hashes=None, **kwargs):
    try:
        mp.spawn(_worker, args=(_free_port(), str(tmp_path), kwargs, hashes), nprocs=2, join=True)
    except mp.ProcessExitedException:
        # gloo can abort in its destructor at interpreter exit ("terminate called without an active
        # exception") after the work is done; the results written before that are still checked below
        if not all((tmp_path / f"r{i}.pt").exists() for i in range(2)):
            raise
    q, d = _data()
    q.requires_grad_()
    d.requires_grad_()
    full = InfoNCELoss(temperature=0.1, **kwargs)(q, d, **(hashes or {}))
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


def test_cross_device_duplicate_masking_gathers_the_text_ids(tmp_path):
    # rank 1's first row repeats rank 0's first row; rank 1's hard negative is rank 0's 2nd positive
    from embedlight.data.collator import text_hash

    hashes = {
        "query_hash": text_hash(["a", "b", "a", "d"]),
        "doc_hash": text_hash(["pa", "na", "pb", "nb", "pa", "nc", "pd", "pb"]),
    }
    _check(tmp_path, hashes=hashes, bidirectional=True, extended=True)
    q, d = _data()
    masked = InfoNCELoss(temperature=0.1)(q, d, **hashes)
    assert abs(masked.item() - InfoNCELoss(temperature=0.1)(q, d).item()) > 1e-3  # the ids matter


def _initial_weights(tiny_dir: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(os.path.join(tiny_dir, "model.safetensors"))


def test_real_ddp_equals_one_process_over_the_same_global_batches(tiny_bert, tmp_path):
    """2 gloo processes x B=2 vs 1 process x 4 rows: same global batches, same weights after 3 steps.

    Hard negatives (group size 3) and cross-device negatives are on; nothing is simulated: Lightning's
    DDP averages the real gradients of the two processes.
    """
    base = tiny_overrides(tiny_bert, str(tmp_path), extra=["data.group_size=3", "loss.cross_device=true"])
    ddp, single, rec = ddp_and_single(base, str(tmp_path), steps=3, per_rank_batch=2)
    steps = list(zip(rec["ddp_r0"], rec["ddp_r1"]))
    assert len(steps) == len(rec["single_r0"]) == 3
    for (a, b), s in zip(steps, rec["single_r0"]):
        assert a["rows"] == b["rows"] == 2 and s["rows"] == 4
        assert a["query_hash"] + b["query_hash"] == s["query_hash"]  # union of the ranks = 1-process batch
    assert_same_weights(ddp, single, atol=1e-5)
    init = _initial_weights(tiny_bert)
    moved = max(
        float((ddp[k] - init[name]).abs().max())
        for k in ddp
        for name in init
        if k.endswith("." + name) and init[name].shape == ddp[k].shape
    )
    assert moved > 1e-3  # the weights moved far more than the tolerance: the comparison is not vacuous


def test_mixture_under_ddp_keeps_ranks_on_the_same_batch_kind(tiny_bert, tmp_path):
    """Three sources (in-batch negatives on, off, scored pairs), 2 epochs, 2 gloo processes.

    Gradient accumulation (2) with evaluation every 2 steps also exercises the evaluation barriers.
    The run must finish inside the timeout, both ranks see the same batch kind at every step, and
    rank 0 evaluates and exports (the `hardware=ddp_cpu` smoke run).
    """
    noinb = write_triplets(str(tmp_path / "noinb.jsonl"), n=16, seed=5)
    pairs = write_pairs(str(tmp_path / "pairs.jsonl"), n=16)
    sources = f"{{noinb: {{files: ['{noinb}'], in_batch_negatives: false}}, sts: {{files: ['{pairs}']}}}}"
    record = str(tmp_path / "batches")
    overrides = tiny_overrides(
        tiny_bert,
        str(tmp_path),
        steps=-1,
        extra=[
            "hardware=ddp_cpu",
            "data.batch_size=2",
            f"+data.sources={sources}",
            "trainer.max_epochs=2",
            "trainer.accumulate_grad_batches=2",
            "callbacks.evaluation.every_n_steps=2",
            f"+callbacks.record={{_target_: tests.integration.ddp_harness.BatchRecorder, path: '{record}'}}",
        ],
    )
    proc = run_train(overrides, timeout=900)
    assert "distributed_backend=gloo" in proc.stderr or "ddp" in proc.stderr.lower()
    assert (tmp_path / "out" / "export" / "modules.json").exists()
    rec = read_records(record)
    r0, r1 = rec["r0"], rec["r1"]
    # 24 + 16 + 16 rows in global batches of 4: 6 + 4 + 4 steps per epoch, 2 epochs
    assert len(r0) == len(r1) == 28
    assert [(r["epoch"], r["kind"]) for r in r0] == [(r["epoch"], r["kind"]) for r in r1]
    assert {r["kind"] for r in r0} == {"triplet", "triplet_no_inbatch", "pairs"}
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {"before", "after", "step_2", "step_14"} <= set(metrics)  # 14 optimizer steps, no hang


@pytest.mark.parametrize("ddp", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_sigterm_checkpoints_exits_nonzero_and_resumes_exactly(tiny_bert, tmp_path, ddp):
    """SIGTERM at step 3 of 8 (mid-epoch: 6 steps per epoch): exit 143, last.ckpt at the next step
    boundary, no export; ``resume=auto`` then ends with the weights of an uninterrupted run.

    Dropout stays on and the optimizer is AdamW: the resumed run must restore the RNG and the
    optimizer state too. Under DDP the signal reaches rank 0 only; both ranks stop at the same step.
    """
    hardware = ["hardware=ddp_cpu", "data.batch_size=2"] if ddp else ["hardware=cpu", "data.batch_size=4"]
    common = [
        *tiny_overrides(tiny_bert, str(tmp_path), steps=8, extra=hardware),
        "evaluation=none",
        "callbacks.evaluation=null",
        "callbacks.checkpoint.every_n_train_steps=8",
    ]
    full = str(tmp_path / "full")
    run_train([*common, f"paths.output_dir={full}"])
    cut = str(tmp_path / "cut")
    kill = "+callbacks.kill={_target_: tests.integration.ddp_harness.SignalAt, step: 3}"
    proc = run_train([*common, f"paths.output_dir={cut}", kill], check=False)
    assert proc.returncode == 143, proc.stderr[-4000:]
    ckpt = torch.load(os.path.join(cut, "checkpoints", "last.ckpt"), map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 4  # the step in flight finished, then the checkpoint was written
    assert not os.path.exists(os.path.join(cut, "export"))
    assert not os.path.exists(os.path.join(cut, "checkpoints", "last.ckpt.tmp"))
    run_train([*common, f"paths.output_dir={cut}", "resume=auto"])
    assert_same_weights(checkpoint_weights(cut), checkpoint_weights(full), atol=0.0)
    assert os.path.exists(os.path.join(cut, "export", "modules.json"))
