"""Time RetroMAE's mask construction per batch against a full training step (forward + backward + AdamW).

Usage (from the repo root):
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python experiments/retromae/time_masking.py \
        --backbone all-MiniLM-L6-v2 --batch-size 32 --max-len 128 --steps 5

Batches are real chunks of the shared MS MARCO + DBPedia passages (``data=pretrain_beir_passages``).
Prints one JSON line per mode.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.data.pretrain import PretrainDataModule
from embedlight.models.embedder import Embedder
from embedlight.modules.retromae import RetroMAEModule
from embedlight.poolers.cls import CLSPooler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", default="all-MiniLM-L6-v2")
    p.add_argument("--shared-dir", default=os.environ.get("EMBEDLIGHT_SHARED", "../shared/data"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="timed training steps per mode")
    p.add_argument("--mask-reps", type=int, default=50, help="timed mask constructions per mode")
    p.add_argument("--modes", default="enhanced,basic")
    p.add_argument("--whole-word-mask", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    backbone = HFEncoder(args.backbone)
    files = [
        os.path.join(args.shared_dir, d, "corpus.jsonl")
        for d in ("retrieval_msmarco_subset", "retrieval_dbpedia_subset")
    ]
    dm = PretrainDataModule(
        backbone.tokenizer,
        train_files=files,
        title_field="title",
        max_len=args.max_len,
        batch_size=args.batch_size,
    )
    dm.setup("fit")
    batches = iter(dm.train_dataloader())
    for mode in args.modes.split(","):
        torch.manual_seed(0)
        module = RetroMAEModule(
            Embedder(backbone, CLSPooler()), mode=mode, whole_word_mask=args.whole_word_mask
        ).to(device)
        module.train()
        opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
        batch = {k: v.to(device) for k, v in next(batches).items()}
        ids, att = batch["input_ids"], batch["attention_mask"]
        for _ in range(3):  # warm-up
            module.build_masks(ids, att)
        sync()
        mask_s = []
        for _ in range(args.mask_reps):
            t = time.perf_counter()
            module.build_masks(ids, att)
            sync()
            mask_s.append(time.perf_counter() - t)
        step_s = []
        for i in range(args.steps + 1):
            batch = {k: v.to(device) for k, v in next(batches).items()}
            sync()
            t = time.perf_counter()
            out = module(batch["input_ids"], batch["attention_mask"])
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            if i:  # the first step is warm-up
                step_s.append(time.perf_counter() - t)
        mask_ms, step_ms = statistics.median(mask_s) * 1e3, statistics.median(step_s) * 1e3
        print(
            json.dumps(
                {
                    "mode": mode,
                    "device": str(device),
                    "threads": torch.get_num_threads(),
                    "backbone": args.backbone,
                    "batch": list(ids.shape),
                    "whole_word_mask": args.whole_word_mask,
                    "mask_ms_median": round(mask_ms, 3),
                    "step_ms_median": round(step_ms, 1),
                    "mask_share_of_step": round(mask_ms / step_ms, 5),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
