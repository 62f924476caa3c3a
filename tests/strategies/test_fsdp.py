"""FSDP (``hardware=fsdp`` / ``fsdp_bf16``): the strategy is built from the backbone's own layer classes.

Lightning's FSDP needs CUDA, so the CPU tests check the construction; the training run is a GPU test.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from embedlight.strategies import build_strategy, fsdp_strategy
from embedlight.training.run import build
from tests.helpers import compose_cfg, tiny_overrides


def _wrapped(strategy) -> set[type]:
    policy = strategy.kwargs["auto_wrap_policy"]
    assert isinstance(policy, ModuleWrapPolicy)
    return set(policy._module_classes)


@pytest.mark.parametrize("preset,precision", [("fsdp", "32-true"), ("fsdp_bf16", "bf16-mixed")])
def test_encoder_preset_wraps_and_checkpoints_bert_layers(tiny_bert, tmp_path, preset, precision):
    from transformers.models.bert.modeling_bert import BertLayer

    cfg = compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), extra=[f"hardware={preset}"]))
    assert cfg.trainer.precision == precision
    module, _ = build(cfg)
    strategy = build_strategy(cfg.trainer.strategy, module)
    assert type(strategy).__name__ == "FSDPStrategy"
    assert _wrapped(strategy) == {BertLayer}  # not BertEmbeddings, although transformers lists it
    checkpointed = strategy._activation_checkpointing_kwargs["auto_wrap_policy"]
    assert set(checkpointed._module_classes) == {BertLayer}
    assert strategy._state_dict_type == "sharded"
    assert strategy.kwargs["use_orig_params"] is True


def test_decoder_with_lora_wraps_llama_decoder_layers(tiny_llama):
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    from embedlight.backbones.hf_decoder import HFDecoder
    from embedlight.losses.infonce import InfoNCELoss
    from embedlight.models.embedder import Embedder
    from embedlight.modules.icl import ICLModule
    from embedlight.poolers.last_token import LastTokenPooler

    backbone = HFDecoder(tiny_llama, lora=True, lora_r=4, lora_alpha=8)
    module = ICLModule(Embedder(backbone, LastTokenPooler()), InfoNCELoss())
    assert any("lora_" in n for n, p in module.named_parameters() if p.requires_grad)
    assert _wrapped(fsdp_strategy(module)) == {LlamaDecoderLayer}


def test_activation_checkpointing_policy_follows_the_flag(tiny_bert, tmp_path):
    from transformers.models.bert.modeling_bert import BertLayer

    module, _ = build(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path))))
    on = fsdp_strategy(module, activation_checkpointing=True)
    off = fsdp_strategy(module, activation_checkpointing=False)
    assert set(on._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes) == {BertLayer}
    assert off._activation_checkpointing_kwargs == {}


def test_a_model_without_layer_report_is_refused():
    with pytest.raises(ValueError, match="layer_classes"):
        fsdp_strategy(torch.nn.Linear(2, 2))


def test_named_strategies_pass_through():
    assert build_strategy("ddp", torch.nn.Linear(2, 2)) == "ddp"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="FSDP needs CUDA")
def test_fsdp_fit_writes_sharded_checkpoint_and_resumes(tiny_bert, tmp_path):
    """Not run in the CPU-only session that wrote it: train 2 steps with hardware=fsdp, resume to 4."""
    from embedlight.training.run import run

    extra = [
        "hardware=fsdp",
        "trainer.devices=1",
        "callbacks.evaluation=null",
        "callbacks.checkpoint.every_n_train_steps=2",
    ]
    run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=2, extra=extra)))
    last = tmp_path / "out" / "checkpoints" / "last.ckpt"
    assert last.is_dir() and os.listdir(last)  # a sharded checkpoint is a folder of shards
    result = run(
        compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=4, extra=[*extra, "resume=auto"]))
    )
    assert result["export"] is not None
