"""Every command writes through the one output guard: run as a user would (the entry point's Hydra main,
in-process, with argv), a second run into the same output stops, naming the path and overwrite=true, and
leaves the output as it was; ``overwrite=true`` then replaces it. Loops over pyproject.toml's scripts, so
a new command needs a case here."""

from __future__ import annotations

import gzip
import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from embedlight.utils.outputs import OutputExistsError
from tests.cli.commands import scripts
from tests.helpers import tiny_overrides, write_beir, write_triplets

SCRIPTS = scripts()
MARK = "STALE-OUTPUT-MARKER"
WRITES_NOTHING = {"embedlight-registry"}  # prints the registry; no output to guard


@dataclass
class Case:
    overrides: list[str]
    output: Path  # a file whose content tells which run wrote it
    earlier_run: Callable[[], None] | None = None  # build the first output without running (costly commands)


def call(script: str, overrides: list[str], monkeypatch) -> None:
    """Run ``script`` as its console script would: ``sys.argv = [script, *overrides]; main()``."""
    module, func = SCRIPTS[script].split(":")
    monkeypatch.setattr(sys, "argv", [script, *overrides])
    GlobalHydra.instance().clear()
    getattr(importlib.import_module(module), func)()


def _sts(path: Path) -> str:
    path.write_text(
        "".join(
            json.dumps({"text1": f"alpha beta {i}", "text2": f"beta gamma {i % 3}", "score": i % 5}) + "\n"
            for i in range(8)
        )
    )
    return str(path)


def _shared(root: Path) -> str:
    """The few shared files that the ICL English builder reads."""
    (root / "snli_en").mkdir(parents=True)
    for name, lines in {
        "s1.dev": ["a man walks", "a man walks", "two dogs run"],
        "s2.dev": ["a person moves", "a man sleeps", "animals run"],
        "labels.dev": ["entailment", "contradiction", "entailment"],
    }.items():
        (root / "snli_en" / name).write_text("\n".join(lines) + "\n")
    (root / "stsb_en").mkdir()
    with gzip.open(root / "stsb_en" / "stsbenchmark.tsv.gz", "wt", encoding="utf-8") as fh:
        fh.write("split\tgenre\tdataset\tyear\tsid\tscore\tsentence1\tsentence2\n")
        fh.write("train\tmain\tx\t2012\t1\t4.5\tA cat sits.\tA cat is sitting.\n")
        fh.write("train\tmain\tx\t2012\t2\t1.0\tA cat sits.\tA car drives.\n")
    retrieval = root / "flagembedding_examples" / "example_data" / "retrieval"
    retrieval.mkdir(parents=True)
    for name in ("msmarco.jsonl", "nq.jsonl"):
        row = {"query": f"q {name}", "pos": ["p"], "neg": ["n"], "prompt": "Retrieve.", "extra": 1}
        (retrieval / name).write_text(json.dumps(row) + "\n")
    return str(root)


def case_for(script: str, tmp: Path, tiny_bert: str) -> Case:
    """How to run ``script`` cheaply on tiny inputs, and which file shows its output."""
    model = [f"model={tiny_bert}", "device=cpu"]
    if script == "embedlight-train":
        out = tmp / "out"

        def earlier_run() -> None:  # a run folder, without training twice
            (out / "checkpoints").mkdir(parents=True)
            (out / "checkpoints" / "last.ckpt").write_bytes(b"x")
            (out / "metrics.json").write_text("{}")

        overrides = tiny_overrides(
            tiny_bert, str(tmp), steps=1, extra=["logger=none", "callbacks.plots=null"]
        )
        return Case(overrides, out / "metrics.json", earlier_run)
    if script == "embedlight-eval":
        beir = write_beir(str(tmp / "beir"))
        evaluator = f"+evaluation.tiny={{_target_: embedlight.evaluation.RetrievalEvaluator, path: '{beir}'}}"
        return Case([*model, evaluator, f"output={tmp / 'eval.json'}"], tmp / "eval.json")
    if script == "embedlight-mteb":
        pytest.importorskip("mteb")
        sts = _sts(tmp / "sts.jsonl")
        local = f"+local_tasks.CliSTS={{type: sts, path: {sts}}}"
        return Case([*model, local, f"output={tmp / 'mteb.json'}"], tmp / "mteb.json")
    rows = write_triplets(str(tmp / "rows.jsonl"), n=6)
    quiet = ["show_progress=false", "batch_size=8"]
    if script == "embedlight-mine":
        knobs = ["negatives=2", "range_start=0", "range_end=8"]
        return Case(
            [*model, *quiet, *knobs, f"input={rows}", f"output={tmp / 'mined.jsonl'}"], tmp / "mined.jsonl"
        )
    if script == "embedlight-filter":
        return Case(
            [*model, *quiet, "threshold=-1", f"input={rows}", f"output={tmp / 'kept.jsonl'}"],
            tmp / "kept.jsonl",
        )
    if script == "embedlight-score":
        teacher = [f"teacher.model={tiny_bert}", "teacher.device=cpu"]
        return Case([*teacher, f"input={rows}", f"output={tmp / 'scored.jsonl'}"], tmp / "scored.jsonl")
    if script == "embedlight-synth":
        fake = ["backend._target_=tests.cli.fakes.NumberedChat", "families=[sts]", "examples_per_task=2"]
        return Case(
            [*fake, "demonstration=false", f"output_dir={tmp / 'synth'}"], tmp / "synth" / "train.jsonl"
        )
    if script == "embedlight-prepare":
        shared = _shared(tmp / "shared")
        dataset = ["dataset=icl_english", f"dataset.out_dir={tmp / 'icl'}", f"dataset.shared_dir={shared}"]
        return Case(dataset, tmp / "icl" / "snli.jsonl")
    if script == "embedlight-matmul-peak":
        knobs = ["size=16", "seconds=0.001", "trials=1", "device=cpu"]
        return Case([*knobs, f"output={tmp / 'peak.json'}"], tmp / "peak.json")
    raise AssertionError(f"{script}: add a case to tests/cli/test_outputs.py (or to WRITES_NOTHING)")


@pytest.mark.parametrize("script", sorted(set(SCRIPTS) - WRITES_NOTHING))
def test_second_run_is_refused_and_overwrite_replaces(script, tmp_path, tiny_bert, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")  # Hydra re-raises the command's own exception
    monkeypatch.chdir(tmp_path)
    case = case_for(script, tmp_path, tiny_bert)
    if case.earlier_run is not None:
        case.earlier_run()
    else:
        call(script, case.overrides, monkeypatch)
    assert case.output.is_file(), f"{script} wrote no {case.output}"
    with open(case.output, "a", encoding="utf-8") as fh:  # as if an earlier run had written it
        fh.write(MARK + "\n")
    before = case.output.read_text(encoding="utf-8")

    with pytest.raises(OutputExistsError) as refused:
        call(script, case.overrides, monkeypatch)
    message = str(refused.value)
    assert "overwrite=true" in message and str(tmp_path) in message, message
    assert case.output.read_text(encoding="utf-8") == before  # untouched by the refused run

    call(script, [*case.overrides, "overwrite=true"], monkeypatch)
    assert case.output.is_file() and MARK not in case.output.read_text(encoding="utf-8")


@pytest.mark.parametrize("script", sorted(WRITES_NOTHING))
def test_commands_without_output_write_nothing(script, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    call(script, [], monkeypatch)
    assert capsys.readouterr().out.strip() and not os.listdir(tmp_path)
