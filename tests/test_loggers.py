"""wandb runs offline without a key and never writes the key into the run config."""

from __future__ import annotations

from embedlight import loggers


def test_offline_without_key(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert loggers._has_wandb_key() is False


def test_key_detected_from_env(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-123")
    assert loggers._has_wandb_key() is True


def test_offline_logger_does_not_record_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-123")
    monkeypatch.setenv("HOME", str(tmp_path))
    logger = loggers.wandb_logger(project="t", save_dir=str(tmp_path / "wb"), mode="offline")
    logger.log_hyperparams({"lr": 1e-4})
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.experiment.finish()
    text = "".join(
        p.read_text(errors="ignore")
        for p in (tmp_path / "wb").rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".json", ".log", ".txt")
    )
    assert text and "secret-key" not in text
