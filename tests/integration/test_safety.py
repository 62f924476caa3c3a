"""Nothing lost, nothing silent (issue 10): NaN/Inf stop the run, broken models fail evaluation."""

from __future__ import annotations

import hashlib
import os

import pytest
import torch
from hydra import compose, initialize_config_module
from safetensors.torch import load_file, save_file

from embedlight.backbones.loading import IncompleteCheckpointError
from embedlight.callbacks import NonFiniteError
from embedlight.evaluation.base import NonFiniteEmbeddingError
from embedlight.training.run import run
from tests.helpers import compose_cfg, tiny_overrides, write_beir


def _digest(folder) -> dict[str, str]:
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(root, f)
            out[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def test_nan_loss_stops_and_keeps_last_checkpoint_and_export(tiny_bert, tmp_path):
    """`loss.temperature=1e-45` makes the loss NaN: the run must raise naming the step, and leave the
    previous last.ckpt and export byte for byte as they were."""
    extra = ["callbacks.checkpoint.every_n_train_steps=1", "callbacks.evaluation=null", "logger=none"]
    run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=2, extra=extra)))
    out = tmp_path / "out"
    before_ckpt, before_export = _digest(out / "checkpoints"), _digest(out / "export")
    bad = [*extra, "resume=auto", "loss.temperature=1e-45"]
    with pytest.raises(NonFiniteError, match=r"optimizer step 3 .*the loss is nan"):
        run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=4, extra=bad)))
    assert _digest(out / "checkpoints") == before_ckpt
    assert _digest(out / "export") == before_export
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2


def _evaluate(model: str, tmp_path):
    from embedlight.evaluation.run import run as evaluate

    beir = write_beir(str(tmp_path / "beir"))
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose(
            config_name="eval",
            overrides=[
                f"model={model}",
                f"+evaluation.tiny={{_target_: embedlight.evaluation.RetrievalEvaluator, path: '{beir}'}}",
                "device=cpu",
            ],
        )
    return evaluate(cfg)


def _copy_model(src: str, dst, edit) -> str:
    """A copy of the model folder ``src`` whose weights went through ``edit(state) -> state``."""
    os.makedirs(dst)
    for f in os.listdir(src):
        if f != "model.safetensors":
            with open(os.path.join(src, f), "rb") as a, open(os.path.join(dst, f), "wb") as b:
                b.write(a.read())
    save_file(edit(load_file(os.path.join(src, "model.safetensors"))), os.path.join(dst, "model.safetensors"))
    return str(dst)


def test_eval_of_nan_weights_fails_loudly(tiny_bert, tmp_path):
    def poison(state):
        state["encoder.layer.1.output.dense.weight"][0, 0] = float("nan")
        return state

    model = _copy_model(tiny_bert, tmp_path / "nan_model", poison)
    with pytest.raises(NonFiniteEmbeddingError, match=r"evaluator 'tiny': \d+ of \d+ embeddings are NaN/Inf"):
        _evaluate(model, tmp_path)


def test_missing_tensors_are_refused_in_eval_and_training(tiny_bert, tmp_path):
    from embedlight.backbones.hf_encoder import HFEncoder

    key = "encoder.layer.0.attention.self.query.weight"
    model = _copy_model(tiny_bert, tmp_path / "truncated", lambda s: {k: v for k, v in s.items() if k != key})
    with pytest.raises(
        IncompleteCheckpointError,
        match=rf"truncated: incomplete checkpoint, 1 tensor\(s\) missing: \['{key}'\]",
    ):
        _evaluate(model, tmp_path)
    with pytest.raises(IncompleteCheckpointError, match=key):
        HFEncoder(pretrained=model)


def test_missing_bert_pooler_is_allowed(tiny_bert, tmp_path):
    """BERT's next-sentence pooler head is never used for embeddings; MLM checkpoints lack it."""
    from embedlight.backbones.hf_encoder import HFEncoder

    model = _copy_model(
        tiny_bert,
        tmp_path / "nopooler",
        lambda s: {k: v for k, v in s.items() if not k.startswith("pooler.")},
    )
    HFEncoder(pretrained=model)
    assert 0.0 <= _evaluate(model, tmp_path)["tiny/ndcg@10"] <= 1.0


def _cli(tiny_bert, tmp_path):
    """A function running `python -m embedlight.cli.train` on the tiny setup with extra overrides."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    base = tiny_overrides(
        tiny_bert, str(tmp_path), steps=1, extra=["callbacks.evaluation=null", "logger=none"]
    )
    env = {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1"}

    def train(*extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "embedlight.cli.train", *base, *extra]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=repo, timeout=600)

    return base, train


def _without_logs(digest: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in digest.items() if not k.endswith(".log")}  # Hydra appends to train.log


def test_training_into_an_existing_run_is_refused(tiny_bert, tmp_path):
    """A second `python -m embedlight.cli.train` into a run's folder stops before it replaces the run's
    `.hydra`, checkpoint or export, naming `resume=auto` and `overwrite=true`; `overwrite=true` then works."""
    base, train = _cli(tiny_bert, tmp_path)
    out = tmp_path / "out"
    run(compose_cfg(base))  # the existing run (in-process: one subprocess is slow enough on 2 cores)
    (out / ".hydra").mkdir()
    (out / ".hydra" / "config.yaml").write_text("seed: 1\n")
    kept = _digest(out)
    refused = train("seed=2")
    assert refused.returncode != 0
    assert "already holds a run" in refused.stderr
    assert "resume=auto" in refused.stderr and "overwrite=true" in refused.stderr
    assert _without_logs(_digest(out)) == _without_logs(kept)
    result = run(compose_cfg([*base, "overwrite=true"]))
    assert (
        result["export"]
        and torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1
    )


@pytest.mark.slow
def test_cli_twice_into_one_folder(tiny_bert, tmp_path):
    """The whole story on the command line (three processes): fresh, refused, resume=auto, overwrite=true."""
    _, train = _cli(tiny_bert, tmp_path)
    out = tmp_path / "out"
    first = train("seed=1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "seed: 1" in (out / ".hydra" / "config.yaml").read_text()
    kept = _digest(out)
    second = train("seed=2")
    assert second.returncode != 0 and "resume=auto" in second.stderr and "overwrite=true" in second.stderr
    assert _without_logs(_digest(out)) == _without_logs(kept)
    resumed = train("seed=1", "resume=auto", "trainer.max_steps=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    third = train("seed=3", "overwrite=true")
    assert third.returncode == 0, third.stderr[-3000:]
    assert "seed: 3" in (out / ".hydra" / "config.yaml").read_text()
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1


def test_output_guard_allows_resume_overwrite_and_fresh_folders(tmp_path):
    from embedlight.training.run_dir import OutputExistsError, guard_output_dir

    out = tmp_path / "run"
    guard_output_dir(str(out))  # does not exist yet
    (out / ".hydra").mkdir(parents=True)
    (out / ".hydra" / "config.yaml").write_text("seed: 1\n")
    guard_output_dir(str(out), include_config=False)  # this run's own config only
    with pytest.raises(OutputExistsError, match=r"\.hydra/config\.yaml"):
        guard_output_dir(str(out))
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (out / "export").mkdir()
    (out / "export" / "model.safetensors").write_bytes(b"x")
    with pytest.raises(OutputExistsError, match=r"checkpoints/\*\.ckpt, export/"):
        guard_output_dir(str(out), include_config=False)
    guard_output_dir(str(out), resume="auto")
    assert (out / "checkpoints" / "last.ckpt").exists()  # resuming keeps everything
    guard_output_dir(str(out), overwrite=True)
    assert not (out / "checkpoints").exists() and not (out / "export").exists()
    assert (out / ".hydra" / "config.yaml").exists()  # rewritten by the new run itself


def test_corrupt_checkpoint_fails_to_resume_and_is_kept(tiny_bert, tmp_path):
    """A damaged last.ckpt is an error (not a silent fresh start), and it is not replaced."""
    ckpt = tmp_path / "out" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 not really a checkpoint")
    extra = ["callbacks.evaluation=null", "logger=none", "resume=auto"]
    with pytest.raises(Exception, match=r"(?i)zip|archive|checkpoint|pickle"):
        run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=1, extra=extra)))
    assert ckpt.read_bytes() == b"PK\x03\x04 not really a checkpoint"


def test_only_the_first_process_checks_the_folder(tmp_path, monkeypatch):
    """DDP children re-run the entry point after rank 0 wrote `.hydra/`: they must not refuse."""
    from embedlight.training.run_dir import OutputExistsError, guard_output_dir

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(OutputExistsError):
        guard_output_dir(str(tmp_path))
    monkeypatch.setenv("LOCAL_RANK", "1")
    guard_output_dir(str(tmp_path))
