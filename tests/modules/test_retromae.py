"""RetroMAEModule on a tiny random BERT: gradients, both decoding modes, export, and the Hydra recipe."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from hydra import compose, initialize_config_module
from safetensors.torch import load_file

from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.models.embedder import Embedder
from embedlight.modules.retromae import RetroMAEModule
from embedlight.poolers.cls import CLSPooler
from embedlight.testing import WORDS, make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return make_tiny_model(str(tmp_path_factory.mktemp("tiny") / "bert"), "bert")


def _cls_embedder(path: str) -> Embedder:
    return Embedder(HFEncoder(path), CLSPooler())


def _texts(n: int = 48, seed: int = 0) -> list[str]:
    g = torch.Generator().manual_seed(seed)
    return [
        " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (int(n_words),), generator=g))
        for n_words in torch.randint(6, 20, (n,), generator=g)
    ]


def _batch(backbone: HFEncoder, n: int = 8) -> dict[str, torch.Tensor]:
    enc = backbone.tokenizer(_texts(n), padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def test_fresh_head_is_announced_and_masks_live_on_the_batch(tiny, caplog):
    with caplog.at_level(logging.INFO, logger="embedlight.modules.retromae"):
        module = RetroMAEModule(_cls_embedder(tiny))
    assert "FRESH MLM head" in caplog.text
    batch = _batch(module.backbone)
    masks = module.build_masks(batch["input_ids"], batch["attention_mask"])
    assert masks["visible"].shape == (*batch["input_ids"].shape, batch["input_ids"].size(1))
    assert (masks["encoder_ids"] == module.mask_token_id).any()


@pytest.mark.parametrize("mode", ["enhanced", "basic"])
def test_encoder_gets_gradient_from_the_decoder_loss(tiny, mode):
    torch.manual_seed(0)
    module = RetroMAEModule(_cls_embedder(tiny), mode=mode)
    module.train()
    batch = _batch(module.backbone)
    out = module(batch["input_ids"], batch["attention_mask"])
    out["decoder_loss"].backward()
    # the last encoder layer reaches the decoder only through the [CLS] sentence embedding
    last = module.backbone.model.encoder.layer[-1]
    grads = [p.grad for p in last.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0
    # and the decoder loss is a real reconstruction loss, not the encoder's
    assert torch.isfinite(out["decoder_loss"]) and out["decoder_loss"].item() > 0


@pytest.mark.parametrize("mode", ["enhanced", "basic"])
def test_both_modes_train(tiny, mode):
    torch.manual_seed(0)
    module = RetroMAEModule(_cls_embedder(tiny), mode=mode)
    batch = _batch(module.backbone, n=16)
    ids, att = batch["input_ids"], batch["attention_mask"]
    fixed = module.build_masks(ids, att)  # the same masks before and after, dropout off

    def losses() -> tuple[float, float]:
        module.eval()
        with torch.no_grad():
            out = module(ids, att, masks=fixed)
        return out["encoder_mlm"].item(), out["decoder_loss"].item()

    enc0, dec0 = losses()
    opt = torch.optim.AdamW(module.parameters(), lr=3e-3)
    module.train()
    for _ in range(60):
        out = module(ids, att)  # fresh masks every step
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        module.train()
    enc1, dec1 = losses()
    assert dec1 < 0.85 * dec0, (dec0, dec1)
    assert enc1 < 0.85 * enc0, (enc0, enc1)


def test_export_keeps_the_encoder_and_the_head(tiny, tmp_path, caplog):
    torch.manual_seed(0)
    module = RetroMAEModule(_cls_embedder(tiny), mode="basic", whole_word_mask=True)
    with torch.no_grad():
        module.mlm_head.dense.weight.add_(1.0)
    out = module.export(str(tmp_path / "export"))
    meta = json.loads((tmp_path / "export" / "embedlight.json").read_text())
    assert meta["pooling_mode"] == "cls" and meta["normalize"] and meta["recipe"] == "retromae"
    with caplog.at_level(logging.INFO, logger="embedlight.modules.retromae"):
        again = RetroMAEModule(_cls_embedder(out))
    assert "MLM head loaded" in caplog.text
    assert torch.allclose(again.mlm_head.dense.weight, module.mlm_head.dense.weight)
    emb = again.embedder.encode(["the cat", "a dog"])
    assert emb.shape == (2, 32) and torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_recipe_runs_and_feeds_the_contrastive_recipe(tiny, tmp_path):
    from embedlight.training.run import build, run

    texts = tmp_path / "text.jsonl"
    texts.write_text("".join(json.dumps({"text": t * 3}) + "\n" for t in _texts(40)))
    triplets = tmp_path / "triplets.jsonl"
    rows = [
        {"query": a, "pos": [b], "neg": [c]} for a, b, c in zip(_texts(24, 1), _texts(24, 2), _texts(24, 3))
    ]
    triplets.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=retromae_tiny",
                f"backbone.pretrained={tiny}",
                "backbone.config_overrides=null",
                f"data.train_files=[{texts}]",
                "data.max_len=16",
                "data.batch_size=8",
                f"paths.output_dir={tmp_path / 'pre'}",
                "trainer.max_steps=3",
                "trainer.log_every_n_steps=1",
                "callbacks.progress=null",
            ],
        )
        result = run(cfg)
        export = result["export"]
        assert export and (tmp_path / "pre" / "export" / "model.safetensors").is_file()
        logged = (tmp_path / "pre" / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
        assert {"train/encoder_mlm", "train/decoder_loss", "train/loss"} <= set(logged.split(","))

        cfg2 = compose(
            "train",
            overrides=[
                "experiment=quickstart",
                f"backbone.pretrained={export}",
                "data=jsonl",
                f"data.train_files=[{triplets}]",
                "data.batch_size=4",
                "data.group_size=2",
                "~evaluation",
                f"paths.output_dir={tmp_path / 'ft'}",
                "trainer.max_steps=2",
                "callbacks.progress=null",
            ],
        )
        module, _ = build(cfg2)
        exported = load_file(str(tmp_path / "pre" / "export" / "model.safetensors"))
        key = next(k for k in exported if k.endswith("word_embeddings.weight"))
        loaded = dict(module.embedder.backbone.model.named_parameters())
        assert torch.equal(
            loaded[next(k for k in loaded if k.endswith("word_embeddings.weight"))], exported[key]
        )
        assert run(cfg2)["export"]
