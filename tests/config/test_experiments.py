"""Every ``conf/experiment/*.yaml`` composes and instantiates with a tiny backbone."""

from __future__ import annotations

import os

import pytest
from omegaconf import OmegaConf

import embedlight
from embedlight.training.run import build
from tests.helpers import compose_cfg

CONF = os.path.join(os.path.dirname(embedlight.__file__), "conf")
EXPERIMENTS = sorted(f[:-5] for f in os.listdir(os.path.join(CONF, "experiment")) if f.endswith(".yaml"))


def test_there_are_experiments():
    assert "quickstart" in EXPERIMENTS


# per experiment: the classes it must build and the settings that define the recipe, read back from
# the instantiated objects (``module.<path>``) and the resolved config (``cfg.<path>``)
EXPECTED = {
    "quickstart": {
        "classes": ("ContrastiveModule", "HFEncoder", "MeanPooler", "InfoNCELoss", "ContrastiveDataModule"),
        "module": {"loss.temperature": 0.05, "embedder.normalize": True},
        "cfg": {"module.optimizer.lr": 5.0e-5, "trainer.max_epochs": 1, "data.batch_size": 32},
    },
    "icl_tiny": {
        "classes": ("ICLModule", "HFDecoder", "LastTokenPooler", "InfoNCELoss", "ICLDataModule"),
        "module": {"embedder.backbone.lora": True, "embedder.backbone.padding_side": "left"},
        "lora": {"r": 4, "lora_alpha": 8, "target_modules": {"q_proj", "v_proj"}},
        "cfg": {"data.mode": "dynamic", "data.max_examples": 2, "trainer.precision": "32-true"},
    },
    "icl_smollm2": {
        "classes": ("ICLModule", "HFDecoder", "LastTokenPooler", "InfoNCELoss", "ICLDataModule"),
        "module": {"loss.temperature": 0.02, "embedder.backbone.padding_side": "left", "pair_loss": None},
        "lora": {"r": 16, "lora_alpha": 32},
        "cfg": {"module.optimizer.lr": 1.0e-4, "data.max_examples": 2, "trainer.max_steps": 300},
    },
    "icl_mistral7b": {  # bge-en-icl: LoRA r=32, alpha=64 on Mistral-7B, temperature 0.02
        "classes": ("ICLModule", "HFDecoder", "LastTokenPooler", "InfoNCELoss", "ICLDataModule"),
        "module": {"loss.temperature": 0.02, "loss.cross_device": True, "embedder.max_length": 2048},
        "lora": {"r": 32, "lora_alpha": 64},
        "cfg": {"trainer.strategy": "ddp", "trainer.precision": "bf16-mixed", "data.max_examples": 5},
    },
    "retromae_minilm": {
        "classes": ("RetroMAEModule", "HFEncoder", "CLSPooler", None, "PretrainDataModule"),
        "module": {"mode": "enhanced", "encoder_mask_ratio": 0.3, "decoder_mask_ratio": 0.5},
        "cfg": {"module.optimizer.lr": 1.0e-4, "data.max_len": 128, "loss": None},
    },
    "retromae_tiny": {
        "classes": ("RetroMAEModule", "HFEncoder", "CLSPooler", None, "PretrainDataModule"),
        "module": {"mode": "enhanced", "encoder_mask_ratio": 0.3, "decoder_mask_ratio": 0.5},
        "cfg": {"module.optimizer.lr": 5.0e-4, "trainer.precision": "32-true", "loss": None},
    },
}


def _get(obj, path: str):
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) or hasattr(obj, "keys") else getattr(obj, part)
    return obj


def test_every_experiment_has_expectations():
    assert set(EXPERIMENTS) == set(EXPECTED)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tiny_bert, tiny_llama, tmp_path):
    cfg = compose_cfg([f"experiment={name}", f"paths.output_dir={tmp_path}"])
    decoder = "decoder" in cfg.backbone._target_
    overrides = [
        f"experiment={name}",
        f"paths.output_dir={tmp_path}",
        f"backbone.pretrained={tiny_llama if decoder else tiny_bert}",
    ]
    if "dtype" in cfg.backbone:
        overrides.append("backbone.dtype=null")
    if "random_init" in cfg.backbone and cfg.backbone.random_init:
        overrides.append(
            "backbone.config_overrides={num_hidden_layers: 1, hidden_size: 32, "
            "num_attention_heads: 2, intermediate_size: 64}"
        )
    cfg = compose_cfg(overrides)
    OmegaConf.resolve(cfg)  # every interpolation resolves
    want = EXPECTED[name]
    for path, value in want["cfg"].items():
        assert _get(cfg, path) == value, f"{name}: cfg.{path}"
    module, datamodule = build(cfg)

    module_cls, backbone_cls, pooler_cls, loss_cls, data_cls = want["classes"]
    assert type(module).__name__ == module_cls
    assert type(datamodule).__name__ == data_cls
    embedder = getattr(module, "embedder", None)
    backbone = embedder.backbone if embedder is not None else module.backbone
    assert type(backbone).__name__ == backbone_cls
    assert (type(embedder.pooler).__name__ if embedder is not None else None) == pooler_cls
    assert (
        type(getattr(module, "loss", None)).__name__ if loss_cls else getattr(module, "loss", None)
    ) == loss_cls
    if backbone_cls == "HFDecoder":  # decoder recipes pool the appended [EOS]
        assert datamodule.append_eos is True
    for path, value in want["module"].items():
        assert _get(module, path) == value, f"{name}: module.{path}"
    if "lora" in want:
        peft = backbone.model.peft_config["default"]
        for key, value in want["lora"].items():
            got = set(getattr(peft, key)) if isinstance(value, set) else getattr(peft, key)
            assert got == value, f"{name}: lora {key}"
        trainable, total = backbone.num_parameters()
        assert 0 < trainable < total  # only the adapters train
    assert callable(module.export)


@pytest.mark.parametrize(
    "hardware", sorted(f[:-5] for f in os.listdir(os.path.join(CONF, "hardware")) if f.endswith(".yaml"))
)
def test_hardware_presets_compose(hardware, tmp_path):
    cfg = compose_cfg(["experiment=quickstart", f"hardware={hardware}", f"paths.output_dir={tmp_path}"])
    want = {  # accelerator, devices, precision, strategy
        "auto": ("auto", 1, None, "auto"),
        "cpu": ("cpu", 1, "32-true", "auto"),
        "cpu_bf16": ("cpu", 1, "bf16-mixed", "auto"),
        "ddp": ("gpu", -1, "32-true", "ddp"),
        "ddp_bf16": ("gpu", -1, "bf16-mixed", "ddp"),
        "ddp_cpu": ("cpu", 2, "32-true", "ddp"),
        "gpu": ("gpu", 1, "32-true", "auto"),
        "gpu_bf16": ("gpu", 1, "bf16-mixed", "auto"),
        "fsdp": ("gpu", -1, "32-true", "embedlight.strategies.fsdp_strategy"),  # built from the backbone
        "fsdp_bf16": ("gpu", -1, "bf16-mixed", "embedlight.strategies.fsdp_strategy"),
    }[hardware]
    t = cfg.trainer
    strategy = t.strategy if isinstance(t.strategy, str) else t.strategy._target_
    assert (t.accelerator, t.devices, strategy) == (want[0], want[1], want[3])
    if want[2] is None:  # `auto` resolves to the precision this machine runs fastest
        from embedlight.utils.hardware import auto_precision

        assert t.precision == auto_precision("auto") and t.precision in ("32-true", "bf16-mixed")
    else:
        assert t.precision == want[2]


def test_override_spelling_from_the_readme(tmp_path):
    cfg = compose_cfg(
        ["experiment=quickstart", "data.train_files=[my.jsonl]", f"paths.output_dir={tmp_path}"]
    )
    assert list(cfg.data.train_files) == ["my.jsonl"]
