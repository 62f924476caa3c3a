"""Old (6N per token from config tables, encoder only) vs reported FLOP models on the bundled models.

Run: PYTHONPATH=. python experiments/flops/compare.py   (writes experiments/flops/compare.json)
"""

from __future__ import annotations

import os
import resource

resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # shared machine: stay under 6 GiB

import torch  # noqa: E402

from embedlight.backbones.hf_decoder import HFDecoder  # noqa: E402
from embedlight.backbones.hf_encoder import HFEncoder  # noqa: E402
from embedlight.models.embedder import Embedder  # noqa: E402
from embedlight.modules.retromae import RetroMAEModule  # noqa: E402
from embedlight.poolers.cls import CLSPooler  # noqa: E402
from embedlight.utils.io import write_json  # noqa: E402


def old_per_token(module: torch.nn.Module) -> int:
    """The former model: 6 FLOPs per token and block weight, all weights counted as trained."""
    from embedlight.utils.flops import matrix_weights

    pooler = getattr(module, "pooler", None)
    frozen, trainable = matrix_weights(module, [pooler] if isinstance(pooler, torch.nn.Module) else [])
    return 6 * (frozen + trainable)


T = 128  # one row of 128 real tokens
rows = {}
minilm = HFEncoder("all-MiniLM-L6-v2")
full = minilm.flop_model()
rows["MiniLM-L6 contrastive (full fine-tune)"] = (old_per_token(minilm.model), full.train_flops(T, T * T) / T)
retro = RetroMAEModule(
    Embedder(HFEncoder("all-MiniLM-L6-v2"), CLSPooler()), mode="enhanced", mlm_head="fresh"
)
rows["MiniLM-L6 RetroMAE enhanced (encoder 30%, decoder all)"] = (
    old_per_token(retro.backbone.model),
    retro.flop_model().train_flops(T, T * T) / T,
)
smol = HFDecoder("smollm2", lora_r=16, lora_alpha=32)  # icl_smollm2's adapters
rows["SmolLM2-135M LoRA r=16, 7 projections"] = (
    old_per_token(smol.base_model),
    smol.flop_model().train_flops(T, T * T) / T,
)
out = {}
for name, (old, new) in rows.items():
    # the old model added the same attention term; add it here so both are per-token totals
    fm = smol.flop_model() if "SmolLM2" in name else full
    old_total = old + 12 * fm.layers * fm.attention_width * T
    out[name] = {
        "old_flops_per_token": old_total,
        "new_flops_per_token": new,
        "old_over_new": old_total / new,
    }
    print(
        f"{name}: old {old_total / 1e6:.1f} MFLOP/token, new {new / 1e6:.1f}, old/new {old_total / new:.3f}"
    )
write_json(os.path.join(os.path.dirname(__file__), "compare.json"), {"row_tokens": T, "models": out})
