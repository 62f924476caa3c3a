"""Every registered backbone keeps the :class:`Backbone` contract: the attributes callers read are
declared, typed and true of the model, on every tiny architecture it can be built from."""

from __future__ import annotations

import json
import os

import pytest
import torch
from torch import nn
from transformers import AutoConfig, AutoTokenizer

from embedlight.backbones.base import Backbone
from embedlight.registry import registered
from embedlight.testing import make_tiny_model

BACKBONES = sorted(registered("backbone").items())
ARCHS = ("bert", "llama")  # every architecture embedlight.testing can write
HIDDEN = 32


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("contract")
    return {arch: make_tiny_model(str(root / arch), arch, hidden=HIDDEN) for arch in ARCHS}


def _built(cls: type, tiny_models: dict[str, str]) -> list[tuple[str, Backbone]]:
    """``cls`` built from every tiny architecture it accepts (its defaults otherwise)."""
    out = []
    for arch, path in tiny_models.items():
        try:
            torch.manual_seed(0)
            out.append((arch, cls(pretrained=path)))
        except ValueError:  # e.g. a decoder backbone refuses a tokenizer without an EOS token
            continue
    return out


def test_there_are_backbones_and_each_is_a_backbone():
    assert BACKBONES
    for name, cls in BACKBONES:
        assert issubclass(cls, Backbone), name
        assert not getattr(cls, "__abstractmethods__", None), (name, cls.__abstractmethods__)
        assert isinstance(cls.append_eos, bool), name  # declared on the class, read without getattr


def test_a_backbone_missing_part_of_the_contract_cannot_be_built():
    class Partial(Backbone):
        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return input_ids

    with pytest.raises(TypeError, match="abstract"):
        Partial()


@pytest.mark.parametrize("name,cls", BACKBONES, ids=[n for n, _ in BACKBONES])
def test_backbone_contract(name, cls, tiny_models, tmp_path):
    built = _built(cls, tiny_models)
    assert built, f"{name}: builds from none of the tiny models {ARCHS}"
    for arch, bb in built:
        where = f"{name}({arch})"
        assert isinstance(bb, Backbone), where
        assert isinstance(bb.hidden_size, int) and bb.hidden_size == HIDDEN, where
        assert bb.tokenizer is not None and callable(bb.tokenizer), where
        assert bb.padding_side in ("left", "right") and bb.padding_side == bb.tokenizer.padding_side, where
        assert isinstance(bb.append_eos, bool), where
        if bb.append_eos:
            assert bb.tokenizer.eos_token_id is not None, where

        classes = bb.layer_classes
        assert isinstance(classes, tuple) and classes, where
        assert all(issubclass(c, nn.Module) for c in classes), where
        assert sum(isinstance(m, classes) for m in bb.modules()) == 2, where  # the 2 tiny layers

        ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 14, 3, 0]])  # (B, L)
        att = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])  # (B, L)
        bb.eval()
        with torch.no_grad():
            hidden = bb(ids, att)  # (B, L, H)
        assert hidden.shape == (2, 5, HIDDEN), where

        flops = bb.flop_model().train_flops(9.0, 41.0)
        assert flops > 0, where

        live_side = bb.padding_side
        out = str(tmp_path / f"{name}-{arch}")
        bb.save_pretrained(out, padding_side="right")  # the export's side
        assert AutoConfig.from_pretrained(out).hidden_size == HIDDEN, where
        saved = AutoTokenizer.from_pretrained(out)
        assert saved.padding_side == "right" and bb.padding_side == live_side, where  # live one kept
        if bb.append_eos:  # sentence-transformers tokenises itself: the saved tokenizer must append EOS
            assert saved("a")["input_ids"][-1] == saved.eos_token_id, where
        with open(os.path.join(out, "config.json")) as fh:
            assert json.load(fh)["hidden_size"] == HIDDEN, where
