"""``training.run.build``: a configured part the recipe does not take stops the run at start-up,
naming the config key, instead of being dropped."""

from __future__ import annotations

import lightning as L
import pytest
from torch import nn

from embedlight.backbones.base import Backbone
from embedlight.backbones.hf_decoder import HFDecoder
from embedlight.poolers.mean import MeanPooler
from embedlight.training.run import build, check_parts
from tests.helpers import compose_cfg


class BackboneOnlyModule(L.LightningModule):
    """A recipe that takes a bare backbone: no pooler, no loss."""

    def __init__(self, backbone: nn.Module, lr: float = 1e-4) -> None:
        super().__init__()
        self.backbone = backbone


TARGET = f"{__name__}.BackboneOnlyModule"


def _cfg(tmp_path, *overrides: str, module: str | None = None):
    cfg = compose_cfg(["experiment=retromae_tiny", f"paths.output_dir={tmp_path}", *overrides])
    if module:
        cfg.module = {"_target_": module}  # the whole node, not merged with the preset's
    return cfg


def test_a_module_without_a_pooler_given_one_names_pooler(tmp_path):
    cfg = _cfg(tmp_path, "pooler=mean", module=TARGET)
    with pytest.raises(ValueError, match=r"^pooler: .*BackboneOnlyModule.*~pooler on the command line"):
        check_parts(cfg)


def test_a_module_without_a_pooler_builds_with_pooler_null(tmp_path, tiny_bert):
    cfg = _cfg(
        tmp_path,
        "~pooler",
        f"backbone.pretrained={tiny_bert}",
        "backbone.random_init=false",
        "backbone.config_overrides=null",
        module=TARGET,
    )
    module, datamodule = build(cfg)
    assert isinstance(module.backbone, Backbone) and not hasattr(module, "embedder")
    assert datamodule.tokenizer is module.backbone.tokenizer


@pytest.mark.parametrize("key", ["loss", "pair_loss"])
def test_a_loss_retromae_does_not_take_names_the_key(tmp_path, key):
    cfg = _cfg(tmp_path)
    assert cfg[key] is None  # the presets unset them
    cfg[key] = {"_target_": "embedlight.losses.infonce.InfoNCELoss"}  # as a user's config would set it
    with pytest.raises(ValueError, match=rf"^{key}: .*RetroMAEModule takes no {key}.*`{key}: null`"):
        check_parts(cfg)


def test_an_embedder_recipe_without_a_pooler_names_pooler(tmp_path):
    cfg = compose_cfg(["experiment=quickstart", "~pooler", f"paths.output_dir={tmp_path}"])
    with pytest.raises(ValueError, match=r"^pooler is null.*set pooler=<name>"):
        build(cfg)


def test_presets_that_unset_parts_pass(tmp_path):
    for name in ("retromae_tiny", "retromae_minilm", "quickstart", "icl_tiny"):
        check_parts(compose_cfg([f"experiment={name}", f"paths.output_dir={tmp_path}"]))


def test_retromae_pooler_mean_is_injected_not_dropped(tmp_path, tiny_bert):
    cfg = _cfg(
        tmp_path,
        "pooler=mean",
        f"backbone.pretrained={tiny_bert}",
        "backbone.random_init=false",
        "backbone.config_overrides=null",
    )
    module, _ = build(cfg)
    assert isinstance(module.embedder.pooler, MeanPooler)
    assert module.backbone is module.embedder.backbone


def test_a_datamodule_that_cannot_append_the_backbones_eos_is_refused(tmp_path, tiny_llama):
    assert HFDecoder.append_eos
    cfg = _cfg(
        tmp_path,
        "backbone=hf_decoder",
        f"backbone.pretrained={tiny_llama}",
        "pooler=last_token",
    )
    with pytest.raises(ValueError, match=r"^data: .*PretrainDataModule takes no append_eos"):
        build(cfg)
