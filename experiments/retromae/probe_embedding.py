"""Does the decoder use the sentence embedding? Held-out reconstruction loss with the right vs a wrong [CLS].

Loads a RetroMAE training checkpoint (``<output_dir>/checkpoints/last.ckpt``), masks held-out text
and measures the decoder's loss when it is given (a) each text's own [CLS] embedding, (b) another
text's (the batch rolled by one), (c) a zero vector. If pretraining made the embedding carry the
text, (a) is clearly below (b) and (c).

Usage (from the repo root):
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python experiments/retromae/probe_embedding.py \
        --ckpt /tmp/retromae/pretrain_minilm/checkpoints/last.ckpt --files data/bbc/test/corpus.jsonl
"""

from __future__ import annotations

import argparse
import json

import torch

from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.data.pretrain import PretrainDataModule
from embedlight.models.embedder import Embedder
from embedlight.modules.retromae import RetroMAEModule
from embedlight.poolers.cls import CLSPooler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument(
        "--backbone", default="all-MiniLM-L6-v2", help="the architecture the checkpoint was trained from"
    )
    p.add_argument("--mode", default="enhanced")
    p.add_argument("--files", nargs="+", default=["data/bbc/test/corpus.jsonl"])
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-len", type=int, default=64)
    args = p.parse_args()

    module = RetroMAEModule(Embedder(HFEncoder(args.backbone), CLSPooler()), mode=args.mode)
    state = torch.load(args.ckpt, map_location="cpu", weights_only=False)["state_dict"]
    module.load_state_dict(state)
    module.eval()
    dm = PretrainDataModule(
        module.backbone.tokenizer, train_files=args.files, max_len=args.max_len, batch_size=args.batch_size
    )
    dm.setup("fit")
    torch.manual_seed(0)
    sums = {"encoder_mlm": 0.0, "decoder_own_cls": 0.0, "decoder_other_cls": 0.0, "decoder_zero_cls": 0.0}
    n = 0
    with torch.no_grad():
        for batch in dm.train_dataloader():
            ids, att = batch["input_ids"], batch["attention_mask"]
            masks = module.build_masks(ids, att)
            hidden = module.backbone(masks["encoder_ids"], att)  # (B, L, H)
            cls = hidden[:, :1]  # (B, 1, H)
            sums["encoder_mlm"] += module._mlm_loss(hidden, masks["encoder_labels"]).item()
            sums["decoder_own_cls"] += module.decoder_loss(cls, ids, att, masks).item()
            sums["decoder_other_cls"] += module.decoder_loss(cls.roll(1, dims=0), ids, att, masks).item()
            sums["decoder_zero_cls"] += module.decoder_loss(torch.zeros_like(cls), ids, att, masks).item()
            n += 1
            if n == args.batches:
                break
    print(json.dumps({k: round(v / n, 4) for k, v in sums.items()} | {"batches": n, "files": args.files}))


if __name__ == "__main__":
    main()
