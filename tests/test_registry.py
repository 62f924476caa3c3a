"""The registry: ConfigStore entries with defaults, clear errors, the listing command."""

from __future__ import annotations

import pytest
from hydra.core.config_store import ConfigStore
from torch import nn

from embedlight import registry


def test_groups_and_configstore_defaults():
    for group in registry.GROUPS:
        assert registry.registered(group), group
    repo = ConfigStore.instance().repo
    node = repo["loss"]["infonce.yaml"].node
    assert node["_target_"] == "embedlight.losses.infonce.InfoNCELoss"
    assert node["temperature"] == 0.02 and node["bidirectional"] is False


def test_register_new_component_and_duplicates():
    @registry.register("pooler", "_test_max")
    class MaxPooler(nn.Module):
        def __init__(self, width: int = 3, name: str = "x", required: int = None) -> None:  # type: ignore[assignment]
            super().__init__()

    node = ConfigStore.instance().repo["pooler"]["_test_max.yaml"].node
    assert node["width"] == 3 and node["_target_"].endswith("MaxPooler")
    assert registry.get("pooler", "_test_max") is MaxPooler
    with pytest.raises(ValueError, match="already registered"):
        registry.register("pooler", "_test_max")(type("Other", (nn.Module,), {}))
    with pytest.raises(ValueError, match="valid groups"):
        registry.register("optimizer", "x")
    del registry._REGISTRY["pooler"]["_test_max"]  # keep the registry as the package defines it


def test_wrong_name_lists_valid_names():
    with pytest.raises(KeyError, match=r"registered poolers: cls, last_token, mean"):
        registry.get("pooler", "nope")


def test_cli_lists_everything():
    out = registry.describe()  # what `embedlight-registry` prints
    for name in ("hf_encoder", "cls", "mean", "last_token", "weighted_mean", "infonce", "cosent"):
        assert name in out
    with pytest.raises(ValueError, match="valid groups"):
        registry.describe(["nope"])
