"""Every ``conf/experiment/*.yaml`` composes and instantiates with a tiny backbone."""

from __future__ import annotations

import os

import pytest
from omegaconf import OmegaConf

import embedlight
from embedlight.train import build
from tests.helpers import compose_cfg

CONF = os.path.join(os.path.dirname(embedlight.__file__), "conf")
EXPERIMENTS = sorted(f[:-5] for f in os.listdir(os.path.join(CONF, "experiment")) if f.endswith(".yaml"))


def test_there_are_experiments():
    assert "quickstart" in EXPERIMENTS


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
    cfg = compose_cfg(overrides)
    OmegaConf.resolve(cfg)  # every interpolation resolves
    module, datamodule = build(cfg)
    assert module is not None and datamodule is not None
    assert hasattr(module, "export")


@pytest.mark.parametrize(
    "hardware", sorted(f[:-5] for f in os.listdir(os.path.join(CONF, "hardware")) if f.endswith(".yaml"))
)
def test_hardware_presets_compose(hardware, tmp_path):
    cfg = compose_cfg(["experiment=quickstart", f"hardware={hardware}", f"paths.output_dir={tmp_path}"])
    assert cfg.trainer.accelerator in ("cpu", "gpu", "auto")
    assert cfg.trainer.precision


def test_override_spelling_from_the_readme(tmp_path):
    cfg = compose_cfg(
        ["experiment=quickstart", "data.train_files=[my.jsonl]", f"paths.output_dir={tmp_path}"]
    )
    assert list(cfg.data.train_files) == ["my.jsonl"]
