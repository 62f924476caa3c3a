"""One root ``icl:`` key per ICL experiment: the module (and its export), the data and every ICL
evaluator take their template and separator from it, so a run cannot train one template and export or
evaluate another."""

from __future__ import annotations

import inspect
import json
import os

import pytest
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from embedlight.prompts.icl import ICL_TEMPLATES, resolve_icl_template
from embedlight.training.run import build
from tests.config.test_experiments import EXPERIMENTS
from tests.helpers import compose_cfg

ICL_EXPERIMENTS = [name for name in EXPERIMENTS if name.startswith("icl_")]
KEYS = ("template", "separator")


def test_there_are_icl_experiments():
    assert {"icl_tiny", "icl_smollm2", "icl_mistral7b"} <= set(ICL_EXPERIMENTS)


def _consumers(node, path: str = "") -> list[tuple[str, DictConfig]]:
    """Every config node whose ``_target_`` takes a ``template`` argument, with its dotted path."""
    found = []
    if isinstance(node, DictConfig):
        target = node.get("_target_")
        if isinstance(target, str):
            params = inspect.signature(get_object(target)).parameters
            if "template" in params:
                found.append((path, node))
        for key in node:
            found += _consumers(node[key], f"{path}.{key}" if path else str(key))
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            found += _consumers(item, f"{path}[{i}]")
    return found


def _compose(name: str, tmp_path, *extra: str) -> DictConfig:
    cfg = compose_cfg([f"experiment={name}", f"paths.output_dir={tmp_path}", *extra])
    OmegaConf.resolve(cfg)
    return cfg


@pytest.mark.parametrize("name", ICL_EXPERIMENTS)
@pytest.mark.parametrize("template", [None, *sorted(ICL_TEMPLATES)])
def test_every_icl_consumer_takes_the_root_key(name, template, tmp_path):
    extra = [f"icl.template={template}"] if template else []
    cfg = _compose(name, tmp_path, *extra)
    assert set(cfg.icl) == set(KEYS), f"{name}: the root icl key"
    if template:
        assert cfg.icl.template == template
    consumers = dict(_consumers(cfg))
    assert {"module", "data"} <= set(consumers), f"{name}: {sorted(consumers)}"
    if name != "icl_mistral7b":  # the GPU recipe has no evaluation configured
        assert any(path.startswith("evaluation.") for path in consumers), sorted(consumers)
    for path, node in consumers.items():
        for key in KEYS:
            assert key in node, f"{name}: {path}.{key} is not set, so its class default would apply"
            assert node[key] == cfg.icl[key], f"{name}: {path}.{key}"


def test_the_same_template_reaches_the_built_objects_and_the_export(tiny_llama, tmp_path, shared_data):
    """icl_tiny with ``icl.template=e5_mistral``: module, data (its collated prompts), evaluators, export."""
    cfg = _compose(
        "icl_tiny",
        tmp_path,
        f"backbone.pretrained={tiny_llama}",
        f"paths.shared_dir={shared_data}",
        "icl.template=e5_mistral",
        "icl.separator=' || '",
    )
    want = ICL_TEMPLATES["e5_mistral"]
    module, datamodule = build(cfg)
    assert module.template == want and module.separator == " || "
    assert (datamodule.template, datamodule.separator) == ("e5_mistral", " || ")
    datamodule.setup()
    builder = datamodule.collator().builder
    assert (builder.example_template, builder.query_template, builder.separator) == (
        want["example"],
        want["query"],
        " || ",
    )
    evaluators = {k: instantiate(v) for k, v in cfg.evaluation.items() if "template" in v}
    assert evaluators
    for ev in evaluators.values():
        assert (ev.template, ev.separator) == ("e5_mistral", " || ")
    meta = json.load(open(os.path.join(module.export(str(tmp_path / "export")), "embedlight.json")))
    assert meta["icl"] == {**want, "separator": " || "}


def test_a_template_mapping_is_one_value_too(tmp_path):
    """``icl.template`` may be an ``{example, query}`` mapping; every consumer gets the same mapping."""
    pair = {"example": "T: {task} Q: {query} A: {response}", "query": "T: {task} Q: {query}"}
    override = "icl.template={" + ",".join(f"{k}:'{v}'" for k, v in pair.items()) + "}"
    cfg = _compose("icl_smollm2", tmp_path, override)
    assert OmegaConf.to_container(cfg.icl.template) == pair
    for path, node in _consumers(cfg):
        assert resolve_icl_template(OmegaConf.to_container(node.template)) == pair, path
