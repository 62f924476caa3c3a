"""`validation=bbc_val` composes with the quickstart and validates on BBC training articles only."""

from __future__ import annotations

from omegaconf import OmegaConf

from tests.helpers import compose_cfg


def test_bbc_val_preset_trains_without_the_validation_articles(tmp_path):
    cfg = compose_cfg(
        [
            "experiment=quickstart",
            "validation=bbc_val",
            f"paths.output_dir={tmp_path}",
            f"paths.data_dir={tmp_path}/d",
        ]
    )
    OmegaConf.resolve(cfg)
    assert cfg.data.train_files == [f"{tmp_path}/d/bbc/train_minus_val.jsonl"]
    assert cfg.data.prepare.val_fraction == 0.1 and cfg.data.prepare.out_dir == f"{tmp_path}/d/bbc"
    assert cfg.validation.bbc_val.path == f"{tmp_path}/d/bbc/val" and cfg.validation.bbc_val.split == "val"
    assert cfg.evaluation.bbc.path == f"{tmp_path}/d/bbc/test"  # the test split is still the evaluation
    assert cfg.monitor == "val/bbc_val/ndcg@10" and cfg.export_from == "best"
    assert cfg.callbacks.best_checkpoint.monitor == cfg.callbacks.validation.monitor == cfg.monitor


def test_without_validation_nothing_is_monitored(tmp_path):
    cfg = compose_cfg(["experiment=quickstart", f"paths.output_dir={tmp_path}"])
    assert cfg.validation == {} and cfg.monitor is None and cfg.export_from == "last"
    assert cfg.callbacks.early_stopping.patience is None
