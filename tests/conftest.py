"""Shared fixtures: tiny random-init models written once per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

SHARED = os.environ.get(
    "EMBEDLIGHT_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """Folder of a 2-layer, hidden-32 BERT with a ~100-word tokenizer."""
    from embedlight.testing import make_tiny_model

    return make_tiny_model(str(tmp_path_factory.mktemp("tiny_bert")), "bert")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    """Folder of a 2-layer, hidden-32 Llama whose tokenizer has no pad token."""
    from embedlight.testing import make_tiny_model

    return make_tiny_model(str(tmp_path_factory.mktemp("tiny_llama")), "llama")


@pytest.fixture
def shared_data() -> str:
    """The real datasets beside the repo; tests that need them skip when absent."""
    if not os.path.isdir(SHARED):
        pytest.skip(f"shared data not found at {SHARED}")
    return os.path.abspath(SHARED)
