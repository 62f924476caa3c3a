"""The registry: ConfigStore entries with defaults, clear errors, the listing command."""

from __future__ import annotations

import re

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


@pytest.mark.parametrize("group", sorted(registry.GROUPS))
def test_wrong_name_lists_valid_names(group):
    names = sorted(registry.registered(group))
    assert len(names) >= 2 and names == sorted(names, key=str)
    with pytest.raises(
        KeyError, match=rf"unknown {group} 'nope'; registered {group} names: {re.escape(', '.join(names))}\"$"
    ):
        registry.get(group, "nope")


def test_cli_lists_everything():
    out = registry.describe()  # what `embedlight-registry` prints
    for group in registry.GROUPS:
        assert f"{group}: {registry.GROUPS[group]}" in out
        for name, cls in registry.registered(group).items():
            assert re.search(rf"^  {re.escape(name)} ", out, re.M), name
            assert f"{cls.__module__}.{cls.__qualname__}(" in out, name
    with pytest.raises(ValueError, match="valid groups"):
        registry.describe(["nope"])


def test_every_evaluator_is_discovered_with_its_config_node():
    """Discovery scans the evaluation package: the evaluators register without a list of names."""
    import pkgutil

    import embedlight.evaluation as package

    repo = ConfigStore.instance().repo["evaluator"]
    for name, cls in registry.registered("evaluator").items():
        assert repo[f"{name}.yaml"].node["_target_"] == f"{cls.__module__}.{cls.__qualname__}"
    modules = {f"embedlight.evaluation.{m.name}" for m in pkgutil.iter_modules(package.__path__)}
    registering = {cls.__module__ for cls in registry.registered("evaluator").values()}
    assert registering <= modules and registry.OPTIONAL_MODULES & modules == {
        "embedlight.evaluation.mteb_bridge"
    }


def test_an_evaluator_composes_from_the_registry(tmp_path):
    from hydra.utils import instantiate

    from tests.helpers import compose_cfg

    path = tmp_path / "pairs.jsonl"
    path.write_text('{"text1": "a", "text2": "b", "score": 1}\n{"text1": "c", "text2": "d", "score": 2}\n')
    cfg = compose_cfg(["+evaluator@evaluation.mine=sts", f"evaluation.mine.path={path}"])
    assert cfg.evaluation.mine.batch_size == 64  # the default of STSEvaluator's signature
    assert instantiate(cfg.evaluation.mine).name == "pairs"
