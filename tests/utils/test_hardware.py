"""hardware=auto: precision and data-loader workers picked from the machine."""

from __future__ import annotations

import types

import pytest
import torch
from omegaconf import OmegaConf

from embedlight.utils import hardware
from tests.helpers import compose_cfg


class CUDAAccelerator:  # stands in for Lightning's class of that name (matched by name)
    pass


def _trainer(accelerator, devices=1):
    return types.SimpleNamespace(accelerator=accelerator, num_devices=devices)


def test_cpu_precision_follows_bf16_instructions(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.auto_precision("cpu") == "32-true"
    assert hardware.auto_precision("auto") == "32-true"
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: True)
    assert hardware.auto_precision("cpu") == "bf16-mixed"
    assert hardware.auto_precision("gpu") == "32-true"  # no CUDA: nothing to autocast on


def test_cuda_precision(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert hardware.auto_precision("auto") == "bf16-mixed"
    assert hardware.auto_precision("gpu") == "bf16-mixed"
    assert hardware.auto_precision("cpu") == "32-true"  # a CPU run on a GPU machine stays fp32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert hardware.auto_precision("gpu") == "32-true"


def test_num_workers(monkeypatch):
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda _: set(range(16)), raising=False)
    assert hardware.resolve_num_workers(3, None) == 3
    assert hardware.resolve_num_workers("auto", None) == 0
    assert hardware.resolve_num_workers("auto", _trainer(object())) == 0  # CPU training: no workers
    assert hardware.resolve_num_workers("auto", _trainer(CUDAAccelerator())) == 8
    assert hardware.resolve_num_workers("auto", _trainer(CUDAAccelerator(), devices=4)) == 3
    assert hardware.resolve_num_workers("auto", _trainer(CUDAAccelerator(), devices=8)) == 1
    kw = hardware.loader_kwargs("auto", _trainer(CUDAAccelerator()))
    assert kw == {"num_workers": 8, "persistent_workers": True, "pin_memory": True}
    assert hardware.loader_kwargs(0, None) == {
        "num_workers": 0,
        "persistent_workers": False,
        "pin_memory": False,
    }


@pytest.mark.parametrize("hw", ["auto", "cpu"])
def test_default_config_resolves_precision(hw):
    cfg = compose_cfg([f"hardware={hw}"])
    precision = OmegaConf.to_container(cfg.trainer, resolve=True)["precision"]
    assert precision in ("32-true", "bf16-mixed")
    if hw == "auto":
        assert precision == hardware.auto_precision("auto")


@pytest.mark.parametrize(("value", "expected"), [("0", False), ("1", True), ("true", True), ("no", False)])
def test_env_overrides_the_cpu_flags(monkeypatch, value, expected):
    monkeypatch.setenv("EMBEDLIGHT_CPU_BF16", value)
    hardware.cpu_has_fast_bf16.cache_clear()
    try:
        assert hardware.cpu_has_fast_bf16() is expected
        assert hardware.auto_precision("cpu") == ("bf16-mixed" if expected else "32-true")
    finally:
        hardware.cpu_has_fast_bf16.cache_clear()


def test_env_override_rejects_other_values(monkeypatch):
    monkeypatch.setenv("EMBEDLIGHT_CPU_BF16", "maybe")
    hardware.cpu_has_fast_bf16.cache_clear()
    try:
        with pytest.raises(ValueError, match="EMBEDLIGHT_CPU_BF16"):
            hardware.cpu_has_fast_bf16()
    finally:
        hardware.cpu_has_fast_bf16.cache_clear()
