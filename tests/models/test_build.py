"""``models.build``: the one builder of an embedder, used by training and by loading a run's checkpoint."""

from __future__ import annotations

import os

import pytest
import torch
from omegaconf import OmegaConf

from embedlight.backbones.hf_encoder import HFEncoder
from embedlight.models.build import build_embedder
from embedlight.models.load import load_checkpoint_embedder
from embedlight.poolers.weighted_mean import WeightedMeanPooler
from tests.helpers import compose_cfg

TEXTS = ["the cat is red", "a big dog", "news about sport and music"]


def _cfg(tmp_path, tiny_bert, *overrides: str):
    return compose_cfg(
        [
            "experiment=quickstart",
            f"backbone.pretrained={tiny_bert}",
            f"paths.output_dir={tmp_path}",
            *overrides,
        ]
    )


def test_the_configured_backbone_pooler_and_settings_are_built(tmp_path, tiny_bert):
    cfg = _cfg(
        tmp_path, tiny_bert, "pooler=weighted_mean", "embedder.normalize=false", "embedder.max_length=64"
    )
    emb = build_embedder(cfg)
    assert isinstance(emb.backbone, HFEncoder) and isinstance(emb.pooler, WeightedMeanPooler)
    assert emb.normalize is False and emb.max_length == 64 and emb.dim == emb.backbone.hidden_size == 32
    backbone = HFEncoder(tiny_bert)
    assert build_embedder(cfg, backbone=backbone).backbone is backbone  # a built backbone is reused


def test_a_null_pooler_and_a_backbone_outside_the_contract_are_refused(tmp_path, tiny_bert):
    with pytest.raises(ValueError, match=r"^pooler is null"):
        build_embedder(_cfg(tmp_path, tiny_bert, "~pooler"))
    cfg = _cfg(tmp_path, tiny_bert)
    cfg.backbone = {"_target_": "torch.nn.Identity"}
    with pytest.raises(TypeError, match=r"^backbone: torch.nn.Identity built a Identity, not an"):
        build_embedder(cfg)


def test_a_run_checkpoint_is_rebuilt_by_the_same_builder(tmp_path, tiny_bert):
    cfg = _cfg(tmp_path, tiny_bert, "pooler=weighted_mean", "embedder.normalize=false")
    torch.manual_seed(0)
    trained = build_embedder(cfg)
    with torch.no_grad():  # weights that differ from the checkpoint folder's, so loading must happen
        for p in trained.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    run = tmp_path / "run"
    os.makedirs(run / ".hydra")
    os.makedirs(run / "checkpoints")
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    state = {f"embedder.{k}": v for k, v in trained.state_dict().items()}
    torch.save({"state_dict": state}, run / "checkpoints" / "last.ckpt")

    loaded, data = load_checkpoint_embedder(str(run / "checkpoints" / "last.ckpt"))
    assert isinstance(loaded.pooler, WeightedMeanPooler) and loaded.normalize is False
    assert data["_target_"] == cfg.data._target_
    want = trained.encode(TEXTS)  # (3, 32)
    torch.testing.assert_close(loaded.encode(TEXTS), want, rtol=0, atol=0)
    assert not torch.allclose(build_embedder(cfg).encode(TEXTS), want)  # the folder's weights differ
