"""The CUDA paths: hardware=auto on a GPU (bf16 autocast, loader workers), exact resume, ICL in bf16.

Marked ``gpu`` (left out of ``make test``); run with ``pytest -m gpu`` on a machine with CUDA.
"""

from __future__ import annotations

import glob
import json
import os
import shutil

import pytest
import torch

from embedlight.training.run import run
from tests.helpers import compose_cfg, tiny_overrides, write_triplets

# cuBLAS needs this before its first handle for deterministic GEMMs (trainer.deterministic below)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_auto_hardware_trains_in_bf16_with_workers(tiny_bert, tmp_path):
    summary = tmp_path / "throughput.json"
    extra = [
        "callbacks.evaluation=null",
        "callbacks.throughput.window=2",
        f"+callbacks.throughput.summary_path={summary}",
    ]
    cfg = compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=6, extra=extra))
    assert cfg.trainer.accelerator == "auto"
    result = run(cfg)
    data = json.loads(summary.read_text())
    assert data["precision"] == "bf16-mixed" and data["steps_timed"] == 5 and data["samples_per_sec"] > 0
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(result["export"], device="cuda")
    emb = st.encode(["a b c", "d e"], convert_to_tensor=True)
    assert emb.shape[0] == 2 and torch.isfinite(emb).all()


def test_workers_resolve_to_processes_on_cuda(tiny_bert, tmp_path):
    import lightning as L

    from embedlight.training.run import build

    cfg = compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=1))
    _, datamodule = build(cfg)
    trainer = L.Trainer(accelerator="gpu", devices=1, logger=False, enable_progress_bar=False)
    datamodule.trainer = trainer
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    assert loader.num_workers >= 1 and loader.pin_memory


def _max_diff(a, b) -> tuple[str, float]:
    sa = torch.load(a / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    sb = torch.load(b / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    assert sa["global_step"] == sb["global_step"] == 4
    diffs = {
        k: (sb["state_dict"][k].float() - v.float()).abs().max().item() for k, v in sa["state_dict"].items()
    }
    return max(diffs.items(), key=lambda kv: kv[1])


@pytest.mark.parametrize("workers", ["0", "auto"])
def test_resume_is_exact_on_gpu(tiny_bert, tmp_path, workers):
    """4 steps straight == 2 steps, resume, 2 more, on the GPU in fp32 (CUDA RNG restored).

    Deterministic kernels: the embedding and attention backward otherwise accumulate in any order,
    and Adam turns those last-bit differences into different weights. A repeat of the straight run
    tells non-determinism apart from a resume error.
    """
    every = [
        "hardware=gpu",
        "+trainer.deterministic=true",
        f"data.num_workers={workers}",
        "callbacks.checkpoint.every_n_train_steps=2",
        "callbacks.checkpoint.save_top_k=-1",
        "callbacks.evaluation=null",
    ]
    a, a2, b = tmp_path / "a", tmp_path / "a2", tmp_path / "b"
    run(compose_cfg(tiny_overrides(tiny_bert, str(a), steps=4, extra=every)))
    run(compose_cfg(tiny_overrides(tiny_bert, str(a2), steps=4, extra=every)))
    step2 = glob.glob(str(a / "out" / "checkpoints" / "*step=2.ckpt"))
    assert step2
    os.makedirs(b / "out" / "checkpoints")
    shutil.copy(step2[0], b / "out" / "checkpoints" / "last.ckpt")
    run(compose_cfg(tiny_overrides(tiny_bert, str(b), steps=4, extra=[*every, "resume=auto"])))
    repeat, resumed = _max_diff(a, a2), _max_diff(a, b)
    assert repeat[1] == 0.0 and resumed[1] == 0.0, f"repeat {repeat}, resumed {resumed}"


def test_icl_lora_fit_in_bf16(tiny_llama, tmp_path):
    train = write_triplets(str(tmp_path / "train.jsonl"), n=16)
    cfg = compose_cfg(
        [
            "experiment=icl_tiny",
            "hardware=gpu_bf16",
            f"backbone.pretrained={tiny_llama}",
            f"paths.output_dir={tmp_path / 'out'}",
            f"data.sources.retrieval.files=[{train}]",
            "+data.sources.retrieval.task=find similar text",
            "evaluation=none",
            "callbacks.evaluation=null",
        ]
    )
    result = run(cfg)
    assert result["export"] and os.path.isfile(os.path.join(result["export"], "model.safetensors"))
