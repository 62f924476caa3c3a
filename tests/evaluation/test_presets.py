"""The evaluation presets compose for `embedlight-eval` and `embedlight-train`, instantiate on the real
files, and the training callback receives the same evaluators."""

from __future__ import annotations

import logging

import pytest
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from embedlight.callbacks.evaluation import EvaluationCallback
from embedlight.evaluation.run import build_evaluators
from tests.helpers import compose_cfg

EXPECTED = {
    "cmteb_local": {"STSB-zh", "ATEC", "BQ", "LCQMC", "PAWSX", "AFQMC"},
    "english_local": {
        "STSB",
        "STS12",
        "STS13",
        "STS14",
        "STS15",
        "STS16",
        "MR",
        "CR",
        "SUBJ",
        "MPQA",
        "SST2",
        "TREC",
        "TREC-clustering",
        "MRPC",
        "SNLI-pairs",
        "MSMARCO-rerank",
        "msmarco_subset",
        "dbpedia_subset",
    },
    "passkey": {"passkey"},
    "sts_robustness": {"stsb_robustness"},
}


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_preset_composes_for_eval_and_train(shared_data, preset, monkeypatch):
    monkeypatch.setenv("EMBEDLIGHT_SHARED", shared_data)
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose(config_name="eval", overrides=["model=x", f"evaluation={preset}"])
    evaluators = build_evaluators(cfg.evaluation)  # as embedlight-eval builds them
    assert {ev.name for ev in evaluators} == EXPECTED[preset]
    train_cfg = compose_cfg([f"evaluation={preset}"])
    callback = instantiate(train_cfg.callbacks.evaluation)  # as embedlight-train builds it
    assert isinstance(callback, EvaluationCallback)
    assert {ev.name for ev in callback.evaluators} == EXPECTED[preset]


def test_afqmc_overlap_warning_is_logged(shared_data, monkeypatch, caplog):
    monkeypatch.setenv("EMBEDLIGHT_SHARED", shared_data)
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose(config_name="eval", overrides=["model=x", "evaluation=cmteb_local"])
    afqmc = instantiate(cfg.evaluation.AFQMC)
    with caplog.at_level(logging.WARNING):
        assert len(afqmc.data) == 2000
    assert any("ATEC" in r.getMessage() and "AFQMC" in r.getMessage() for r in caplog.records)
