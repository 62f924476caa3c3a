"""GradCache (Gao et al., 2021): chunked backward gives the gradients of one full-batch backward."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from embedlight.backbones.hf_decoder import HFDecoder
from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.data.tokenize import tokenize
from embedlight.losses.infonce import InfoNCELoss
from embedlight.losses.matryoshka import MatryoshkaLoss
from embedlight.models.embedder import Embedder
from embedlight.modules.grad_cache import GradCache, split_features
from embedlight.poolers.last_token import LastTokenPooler
from embedlight.poolers.mean import MeanPooler

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
QUERIES = ["the cat", "a big dog is red", "news", "what is the market rate", "fish", "blue bird sport"]
DOCS = [f"{q} {w}" for q in QUERIES for w in ("team win", "film music game one two")]  # G = 2


def _encoder(tiny_bert: str, dropout: bool = False, **kwargs) -> Embedder:
    torch.manual_seed(0)
    overrides = {} if dropout else NO_DROPOUT
    backbone = HFEncoder(tiny_bert, config_overrides=overrides, **kwargs)
    return Embedder(backbone, MeanPooler())


def _batch(embedder: Embedder, eos: bool = False):
    q = tokenize(embedder.tokenizer, QUERIES, [""] * len(QUERIES), 32, eos)
    d = tokenize(embedder.tokenizer, DOCS, [""] * len(DOCS), 32, eos)
    return q, d


def _reference(embedder: Embedder, loss_fn, q, d) -> dict[str, torch.Tensor]:
    """Gradients of one ordinary forward/backward over the whole batch."""
    embedder.zero_grad()
    loss_fn(embedder(q), embedder(d)).backward()
    return {n: p.grad.clone() for n, p in embedder.named_parameters() if p.grad is not None}


def _grad_cache(
    embedder: Embedder, loss_fn, q, d, chunk: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    embedder.zero_grad()
    loss = GradCache(chunk)(embedder, [q, d], loss_fn, lambda x: x.backward())
    return {n: p.grad.clone() for n, p in embedder.named_parameters() if p.grad is not None}, loss


def _assert_same(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    assert ref.keys() == got.keys() and ref
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("chunk", [1, 3, 12])
def test_encoder_gradients_equal_full_batch(tiny_bert, chunk):
    emb = _encoder(tiny_bert)
    q, d = _batch(emb)
    loss_fn = InfoNCELoss(temperature=0.05)
    ref = _reference(emb, loss_fn, q, d)
    got, loss = _grad_cache(emb, loss_fn, q, d, chunk)
    _assert_same(ref, got)
    with torch.no_grad():
        torch.testing.assert_close(loss, loss_fn(emb(q), emb(d)))


def test_gradient_checkpointing_gradients_equal_full_batch(tiny_bert):
    plain = _encoder(tiny_bert)
    q, d = _batch(plain)
    loss_fn = InfoNCELoss(temperature=0.05)
    ref = _reference(plain, loss_fn, q, d)
    checkpointed = _encoder(tiny_bert, gradient_checkpointing=True)
    got, _ = _grad_cache(checkpointed, loss_fn, q, d, 4)
    _assert_same(ref, got)


def test_decoder_with_lora_gradients_equal_full_batch(tiny_llama):
    torch.manual_seed(0)
    backbone = HFDecoder(tiny_llama, lora=True, lora_r=4, lora_alpha=8, lora_dropout=0.0, target_modules=None)
    with torch.no_grad():  # peft initialises B = 0: perturb it so that A gets gradients too
        for name, p in backbone.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    emb = Embedder(backbone, LastTokenPooler())
    q, d = _batch(emb, eos=True)
    loss_fn = InfoNCELoss(temperature=0.05)
    ref = _reference(emb, loss_fn, q, d)
    assert all("lora_" in n for n in ref)  # only adapters train
    assert any("lora_A" in n for n in ref) and any("lora_B" in n for n in ref)
    got, _ = _grad_cache(emb, loss_fn, q, d, 5)
    _assert_same(ref, got)


def test_matryoshka_gradients_equal_full_batch(tiny_bert):
    emb = _encoder(tiny_bert)
    q, d = _batch(emb)
    loss_fn = MatryoshkaLoss(InfoNCELoss(temperature=0.05), dims=[32, 16, 8], weights=[1.0, 0.5, 0.25])
    ref = _reference(emb, loss_fn, q, d)
    got, _ = _grad_cache(emb, loss_fn, q, d, 5)
    _assert_same(ref, got)


def test_bf16_autocast_gradients_match_full_batch(tiny_bert):
    """Under CPU bf16 autocast the chunked and the one-shot backward agree to bf16 precision."""
    emb = _encoder(tiny_bert)
    q, d = _batch(emb)
    loss_fn = InfoNCELoss(temperature=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = _reference(emb, loss_fn, q, d)
        got, _ = _grad_cache(emb, loss_fn, q, d, 4)
    assert ref.keys() == got.keys()
    for name in ref:
        assert got[name].dtype == torch.float32  # weights and their gradients stay fp32
        err = (got[name] - ref[name]).norm() / ref[name].norm().clamp_min(1e-12)
        assert err < 0.05, (name, err.item())


def test_dropout_masks_replay_on_the_second_forward(tiny_bert):
    """With dropout on, every re-forwarded chunk reproduces its graph-free first forward exactly."""
    emb = _encoder(tiny_bert, dropout=True).train()
    q, d = _batch(emb)
    seen: list[tuple[bool, torch.Tensor]] = []

    def encode(features):
        out = emb(features)
        seen.append((torch.is_grad_enabled(), out.detach().clone()))
        return out

    GradCache(4)(encode, [q, d], InfoNCELoss(temperature=0.05), lambda x: x.backward())
    first = [e for grad, e in seen if not grad]
    second = [e for grad, e in seen if grad]
    assert len(first) == len(second) == 2 + 3  # 6 queries and 12 documents in chunks of 4
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    with torch.no_grad():  # and dropout is really on: another draw differs
        assert not torch.equal(emb(split_features(q, 4)[0]), first[0])


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="grad_cache_chunk_size"):
        GradCache(-1)


# --- cross-device negatives in 2 gloo processes -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_grads(rank: int, port: int, out: str, tiny_bert: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    emb = _encoder(tiny_bert)
    q, d = _batch(emb)
    q = {k: v[rank * 3 : rank * 3 + 3] for k, v in q.items()}  # this rank's 3 queries
    d = {k: v[rank * 6 : rank * 6 + 6] for k, v in d.items()}  # and their 6 documents
    ddp = torch.nn.parallel.DistributedDataParallel(emb)
    calls = []

    def counting_hook(state, bucket):  # one call per bucket per all-reduce
        calls.append(bucket.index())
        return default_hooks.allreduce_hook(state, bucket)

    ddp.register_comm_hook(None, counting_hook)
    loss_fn = InfoNCELoss(temperature=0.05, cross_device=True)
    result = {}
    for chunk in (1, 2, 3):
        emb.zero_grad()
        calls.clear()
        loss = GradCache(chunk)(ddp, [q, d], loss_fn, lambda x: x.backward(), no_sync=ddp.no_sync)
        result[chunk] = {
            "loss": loss,
            "calls": list(calls),
            "grads": {n: p.grad.clone() for n, p in emb.named_parameters() if p.grad is not None},
        }
    torch.save(result, os.path.join(out, f"r{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


def test_cross_device_grad_cache_in_two_processes_equals_one_process(tiny_bert, tmp_path):
    """2 ranks x 3 queries with DDP and cross-device negatives == 1 process with all 6 queries.

    DDP averages the ranks' gradients; each rank's loss is its own queries' mean, so the average
    equals the full batch's gradient. The all-reduce runs once per step (one call per bucket), not
    once per chunk.
    """
    try:
        mp.spawn(_rank_grads, args=(_free_port(), str(tmp_path), tiny_bert), nprocs=2, join=True)
    except mp.ProcessExitedException:  # gloo may abort at interpreter exit after the work is saved
        if not all((tmp_path / f"r{i}.pt").exists() for i in range(2)):
            raise
    emb = _encoder(tiny_bert)
    q, d = _batch(emb)
    loss_fn = InfoNCELoss(temperature=0.05)
    ref = _reference(emb, loss_fn, q, d)
    ranks = [torch.load(tmp_path / f"r{i}.pt", weights_only=False) for i in range(2)]
    for chunk in (1, 2, 3):
        for r in ranks:
            _assert_same(ref, r[chunk]["grads"])  # already all-reduced (averaged) by DDP
            calls = r[chunk]["calls"]
            assert calls and len(calls) == len(set(calls))  # each bucket reduced once per step
        mean_loss = (ranks[0][chunk]["loss"] + ranks[1][chunk]["loss"]) / 2
        with torch.no_grad():
            torch.testing.assert_close(mean_loss, loss_fn(emb(q), emb(d)))


# --- inside Trainer.fit (manual optimization) ----------------------------------------------------


def _fit_state(tiny_bert, tmp, extra) -> dict[str, torch.Tensor]:
    from embedlight.training.run import run
    from tests.helpers import compose_cfg, tiny_overrides

    base = ["callbacks.evaluation=null", "logger=none", "callbacks.checkpoint.every_n_train_steps=2"]
    run(compose_cfg(tiny_overrides(tiny_bert, str(tmp), steps=4, extra=[*base, *extra])))
    ckpt = torch.load(os.path.join(tmp, "out", "checkpoints", "last.ckpt"), weights_only=True)
    assert ckpt["global_step"] == 4
    return {**ckpt["state_dict"], "lr": torch.tensor(ckpt["lr_schedulers"][0]["_last_lr"][0])}


def test_fit_with_grad_cache_equals_plain_fit_with_clipping_and_accumulation(tiny_bert, tmp_path):
    """4 optimizer steps of 2 accumulated batches, gradients clipped at a norm that bites: GradCache
    (the module optimises manually) ends with the weights and learning rate of Lightning's loop."""
    extra = [
        "backbone.config_overrides={hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0}",
        "trainer.accumulate_grad_batches=2",
        "data.batch_size=2",  # 12 batches: 4 steps of 2
        "trainer.gradient_clip_val=0.05",
    ]
    plain = _fit_state(tiny_bert, tmp_path / "plain", extra)
    cached = _fit_state(tiny_bert, tmp_path / "gc", [*extra, "+module.grad_cache_chunk_size=3"])
    assert plain.keys() == cached.keys()
    for k, v in plain.items():
        torch.testing.assert_close(cached[k], v, atol=1e-5, rtol=1e-4, msg=k)


def test_grad_cache_resume_is_exact(tiny_bert, tmp_path):
    """With GradCache and dropout on: 4 steps straight == 2 steps, restart from the checkpoint, 2 more."""
    import shutil

    extra = ["+module.grad_cache_chunk_size=3", "callbacks.checkpoint.save_top_k=-1"]
    straight = _fit_state(tiny_bert, tmp_path / "a", extra)
    step2 = [f for f in os.listdir(tmp_path / "a" / "out" / "checkpoints") if "step=2" in f]
    assert step2
    os.makedirs(tmp_path / "b" / "out" / "checkpoints")
    shutil.copy(
        tmp_path / "a" / "out" / "checkpoints" / step2[0],
        tmp_path / "b" / "out" / "checkpoints" / "last.ckpt",
    )
    resumed = _fit_state(tiny_bert, tmp_path / "b", [*extra, "resume=auto"])
    for k, v in straight.items():
        torch.testing.assert_close(resumed[k], v, msg=k)


def _ddp_fit_state(tiny_bert, tmp, extra) -> dict[str, torch.Tensor]:
    import subprocess
    import sys

    from tests.helpers import tiny_overrides

    overrides = tiny_overrides(
        tiny_bert,
        str(tmp),
        steps=3,
        extra=[
            "hardware=ddp_cpu",
            "backbone.config_overrides={hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0}",
            "trainer.gradient_clip_val=0.05",
            "callbacks.evaluation=null",
            "callbacks.checkpoint.every_n_train_steps=3",
            "logger=none",
            "export=false",
            *extra,
        ],
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "embedlight.cli.train", *overrides],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ckpt = torch.load(os.path.join(tmp, "out", "checkpoints", "last.ckpt"), weights_only=True)
    assert ckpt["global_step"] == 3
    return ckpt["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [1, 8])
def test_ddp_fit_with_grad_cache_equals_ddp_fit_without(tiny_bert, tmp_path, chunk):
    """Trainer.fit on 2 gloo processes, cross-device negatives, clipped: GradCache (manual optimization,
    one all-reduce per step) ends with the weights of Lightning's automatic DDP loop."""
    plain = _ddp_fit_state(tiny_bert, tmp_path / "plain", [])
    cached = _ddp_fit_state(tiny_bert, tmp_path / "gc", [f"+module.grad_cache_chunk_size={chunk}"])
    for k, v in plain.items():
        torch.testing.assert_close(cached[k], v, atol=1e-5, rtol=1e-4, msg=k)
    initial = _encoder_state(tiny_bert)
    assert any(
        not torch.allclose(plain[k], v) for k, v in initial.items() if k in plain
    )  # training moved them


def _encoder_state(tiny_bert) -> dict[str, torch.Tensor]:
    emb = _encoder(tiny_bert)
    return {f"embedder.{k}": v for k, v in emb.state_dict().items()}


def test_icl_fit_with_grad_cache_equals_plain_fit(tiny_llama, tmp_path, shared_data):
    """The ICL recipe (decoder + LoRA, few-shot queries) uses the same runner: equal LoRA weights."""
    from omegaconf import OmegaConf

    from embedlight.training.run import run
    from tests.helpers import compose_cfg, write_triplets

    train = write_triplets(str(tmp_path / "train.jsonl"), n=16)

    def fit(name: str, extra: list[str]) -> dict[str, torch.Tensor]:
        out = tmp_path / name
        cfg = compose_cfg(
            [
                "experiment=icl_tiny",
                f"backbone.pretrained={tiny_llama}",
                f"paths.output_dir={out}",
                f"paths.shared_dir={shared_data}",
                f"data.sources.retrieval.files=[{train}]",
                "+data.sources.retrieval.task=find similar text",
                "callbacks.evaluation=null",
                "logger=none",
                "export=false",
                "trainer.max_steps=3",
                *extra,
            ]
        )
        OmegaConf.resolve(cfg)
        run(cfg)
        return torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]

    plain = fit("plain", [])
    cached = fit("gc", ["+module.grad_cache_chunk_size=3"])
    assert plain and plain.keys() == cached.keys() and all("lora_" in k for k in plain)
    for k, v in plain.items():
        torch.testing.assert_close(cached[k], v, atol=1e-5, rtol=1e-4, msg=k)


def test_ddp_fit_with_grad_cache_equals_the_one_process_run(tiny_bert, tmp_path):
    """H3's harness: 2 gloo processes x 2 queries with GradCache (chunks of 3 texts, cross-device
    negatives, group size 3) vs 1 process x 4 queries over the same global batches: same weights
    after 3 SGD steps. (Chunk sizes 1 and 8 are compared with the plain DDP loop in the slow test.)"""
    from tests.helpers import tiny_overrides
    from tests.integration.ddp_harness import assert_same_weights, ddp_and_single

    extra = ["data.group_size=3", "loss.cross_device=true", "+module.grad_cache_chunk_size=3"]
    base = tiny_overrides(tiny_bert, str(tmp_path), extra=extra)
    ddp, single, _ = ddp_and_single(base, str(tmp_path), steps=3, per_rank_batch=2)
    assert_same_weights(ddp, single, atol=1e-5)
    initial = _encoder_state(tiny_bert)
    assert any(not torch.allclose(ddp[k], v, atol=1e-3) for k, v in initial.items() if k in ddp)  # they moved
