"""Loading mining models (run checkpoint vs export) and the query prefixes they were trained with."""

from __future__ import annotations

import glob
import json

import torch
from omegaconf import OmegaConf

from embedlight.engine.encode import query_prefixes
from embedlight.models.load import LoadedModel, load_model
from embedlight.prompts.icl import ICL_TEMPLATES
from embedlight.prompts.instructions import TEMPLATES
from embedlight.training.run import run
from tests.helpers import compose_cfg, tiny_overrides


def test_checkpoint_and_export_encode_alike_with_the_runs_instruction(tiny_bert, tmp_path):
    extra = ["+data.query_instruction=bge", "callbacks.evaluation=null"]
    cfg = compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=2, extra=extra))
    run(cfg)
    (tmp_path / "out" / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / "out" / ".hydra" / "config.yaml")  # as `embedlight-train` (Hydra) does
    ckpt = glob.glob(str(tmp_path / "out" / "checkpoints" / "*.ckpt"))[0]
    from_ckpt = load_model(ckpt, device="cpu")
    from_export = load_model(str(tmp_path / "out" / "export"), device="cpu")
    assert from_ckpt.prompts["query"] == TEMPLATES["bge"]["query"]  # the run's data instruction
    texts = ["the cat is big", "a small green bird", "news of the market"]
    a = from_ckpt.encoder.encode(texts, kind="document", instruction="")
    b = from_export.encoder.encode(texts, kind="document", instruction="")
    torch.testing.assert_close(
        a, b, atol=1e-5, rtol=1e-5
    )  # our Embedder from the .ckpt == sentence-transformers


def test_query_prefixes_follow_the_collator_rules():
    model = LoadedModel(None, prompts={"query": "Instruct: {task}\nQuery: ", "document": ""})
    rows = [{"query": "a", "prompt": "find news"}, {"query": "b"}]
    prefixes, texts = query_prefixes(rows, model, instruction_fields={"task": "default task"})
    assert prefixes == ["Instruct: find news\nQuery: ", "Instruct: default task\nQuery: "]
    assert texts == ["a", "b"]
    prefixes, _ = query_prefixes(rows, model, query_instruction="e5", use_row_prompt=False)
    assert prefixes == ["query: ", "query: "]
    icl = LoadedModel(
        None,
        prompts={"query": ""},
        icl={
            "example": "<instruct>{task}\n<query>{query}\n<response>{response}",
            "query": "<instruct>{task}\n<query>{query}\n<response>",
            "separator": "\n\n",
        },
    )
    prefixes, texts = query_prefixes(
        rows[1:], icl, icl_task="t", icl_examples=[{"query": "x", "response": "y"}]
    )
    assert prefixes == ["<instruct>t\n<query>x\n<response>y\n\n<instruct>t\n<query>"]
    assert texts == ["b\n<response>"]


def test_icl_prefixes_read_an_examples_file_in_the_models_template(tmp_path):
    """``icl.examples`` (mine/filter configs) is a file path: read once, rendered in the export's template."""
    examples = tmp_path / "ex.jsonl"
    examples.write_text(json.dumps({"query": "x", "pos": ["y", "z"]}) + "\n")
    rows = [{"query": "a", "prompt": "find news"}, {"query": "b"}]
    e5 = LoadedModel(None, prompts={"query": ""}, icl={**ICL_TEMPLATES["e5_mistral"], "separator": " | "})
    prefixes, texts = query_prefixes(rows, e5, icl_task="t", icl_examples=str(examples))
    assert prefixes == [
        "Instruct: find news\nQuery: x\nResponse: y | Instruct: find news\nQuery: ",
        "Instruct: t\nQuery: x\nResponse: y | Instruct: t\nQuery: ",
    ]
    assert texts == ["a", "b"]  # e5_mistral has nothing after the query
    no_template = LoadedModel(None, prompts={})  # an ICL task but no saved template: the default one
    prefixes, texts = query_prefixes(rows[1:], no_template, icl_task="t")
    assert prefixes == ["<instruct>t\n<query>"] and texts == ["b\n<response>"]
