"""wandb runs offline without a key and never writes the key into the run config."""

from __future__ import annotations

from embedlight.training import loggers


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


def test_redact_hides_secret_looking_values_only():
    cfg = {
        "api_key": "k1",
        "logger": {"wandb_api_key": "k2", "hf_token": "k3", "pad_token": "[PAD]"},
        "lr": 1e-4,
    }
    cfg["tokenizer"] = {"pad_token_id": 0, "password": "pw", "secret": None}
    assert loggers.redact(cfg) == {
        "api_key": "***",
        "logger": {"wandb_api_key": "***", "hf_token": "***", "pad_token": "[PAD]"},
        "lr": 1e-4,
        "tokenizer": {"pad_token_id": 0, "password": "***", "secret": None},
    }


def _wandb_records(path: str):
    """Records of a ``.wandb`` file (wandb's LevelDB-style log: 7-byte file header, 32 KiB blocks of
    records with a ``<crc32 u32, length u16, type u8>`` header; types full/first/middle/last = 1/2/3/4)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B"
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # block trailer padding
            pos += 32768 - pos % 32768
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 2):
            buf = chunk
        elif kind in (3, 4):
            buf += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buf)
            yield record


def test_wandb_offline_run_holds_config_metrics_throughput_tables_and_export(
    tiny_bert, tmp_path, monkeypatch
):
    import glob
    import json
    import time

    from embedlight.training.run import run
    from tests.helpers import compose_cfg, tiny_overrides

    secret = "sk-dummy-SECRET-0123456789abcdef"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_API_KEY", secret)
    extra = [
        "logger=wandb",
        "logger.log_export=true",
        "callbacks.throughput.window=2",
        f"+validation.v={{_target_: embedlight.evaluation.RetrievalEvaluator, path: '{tmp_path}/beir'}}",
        "monitor=val/v/ndcg@10",
        "callbacks.validation.every_n_steps=2",
    ]
    result = run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=4, extra=extra)))
    runs = glob.glob(str(tmp_path / "out" / "wandb" / "offline-run-*"))
    assert len(runs) == 1
    path = glob.glob(f"{runs[0]}/run-*.wandb")[0]
    for _ in range(120):  # wandb-core may still be writing the file when finish() returns: wait for "exit"
        try:
            if any(r.WhichOneof("record_type") == "exit" for r in _wandb_records(path)):
                break
        except Exception:  # a record being written
            pass
        time.sleep(0.5)
    history, config, summary, artifacts = {}, set(), {}, {}
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            for key, value in items.items():
                history.setdefault(key, []).append(value)
        elif kind == "artifact":
            artifacts[record.artifact.type] = {c.path for c in record.artifact.manifest.contents}
        elif kind == "config":
            config |= {i.key or "/".join(i.nested_key) for i in record.config.update}
        elif kind == "summary":
            summary.update(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.summary.update}
            )
    assert {"module", "data", "loss", "monitor", "trainer", "validation"} <= config
    assert len(history["train/loss"]) == 4 and "train/lr" in history
    assert history["throughput/samples_per_sec"] and history["throughput/samples_per_sec"][0] > 0
    assert len(history["val/v/ndcg@10"]) == 2 and history["val/v/ndcg@10"][-1] == result["objective"]
    assert summary["eval_after/tiny/ndcg@10"] == result["metrics"]["after"]["tiny/ndcg@10"]

    assert {"model.safetensors", "modules.json"} <= artifacts.get("model", set()), artifacts  # the export
    tables = {
        p.split("/media/table/")[1].split("_")[0]: p
        for p in glob.glob(f"{runs[0]}/files/media/table/*/*.json")
    }
    assert set(tables) == {"eval/scores", "val/scores"}
    eval_table = json.loads(open(tables["eval/scores"]).read())
    assert eval_table["columns"] == ["task", "metric", "before", "after", "delta"]
    ndcg = next(r for r in eval_table["data"] if r[:2] == ["tiny", "ndcg@10"])
    before, after = result["metrics"]["before"]["tiny/ndcg@10"], result["metrics"]["after"]["tiny/ndcg@10"]
    assert ndcg[2:] == [before, after, after - before]
    val_table = json.loads(open(tables["val/scores"]).read())
    assert [r[0] for r in val_table["data"] if r[2] == "ndcg@10"] == [2, 4]

    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert written and not [p for p in written if secret.encode() in p.read_bytes()]
