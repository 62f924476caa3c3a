"""ICLModule, zero-shot/few-shot/PromptEOL evaluation, and a short Hydra-composed ICL fit."""

from __future__ import annotations

import json
import os

import pytest
import torch
from omegaconf import OmegaConf

from embedlight.backbones.hf_decoder import HFDecoder
from embedlight.data.icl import ICLDataModule
from embedlight.evaluation import RetrievalEvaluator, STSEvaluator
from embedlight.evaluation.icl import ICLEncoder, ICLEvaluator
from embedlight.losses.infonce import InfoNCELoss
from embedlight.models.embedder import Embedder
from embedlight.modules.icl import ICLModule
from embedlight.poolers.last_token import LastTokenPooler
from embedlight.prompts.examples import Example
from embedlight.prompts.icl import PROMPTEOL_TEMPLATE
from embedlight.training.run import run
from tests.helpers import compose_cfg, write_beir, write_triplets

TASK = "find similar text"


def embedder(path: str) -> Embedder:
    torch.manual_seed(0)
    bb = HFDecoder(path, lora_r=4, lora_alpha=8, lora_dropout=0.0)
    return Embedder(bb, LastTokenPooler(), max_length=32)


def test_module_defaults_and_training_step(tiny_llama, tmp_path):
    module = ICLModule(embedder(tiny_llama), InfoNCELoss())
    assert module.loss.temperature == 0.02
    train = write_triplets(str(tmp_path / "t.jsonl"), n=8)
    dm = ICLDataModule(
        module.embedder.tokenizer,
        sources={"t": {"files": [train], "task": TASK}},
        max_examples=2,
        batch_size=4,
        group_size=2,
        query_max_len=96,
        passage_max_len=32,
    )
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    loss = module.training_step(batch, 0)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in module.named_parameters():
        assert (p.grad is not None) == ("lora_" in name), name
    trainable, total = module.num_parameters()
    assert 0 < trainable < total


def test_checkpoint_keeps_only_trainable_weights(tiny_llama):
    module = ICLModule(embedder(tiny_llama), InfoNCELoss())
    ckpt = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    assert ckpt["state_dict"] and all("lora_" in k for k in ckpt["state_dict"])
    assert module.strict_loading is False
    module.load_state_dict(ckpt["state_dict"], strict=False)


def test_export_records_the_icl_template(tiny_llama, tmp_path):
    module = ICLModule(embedder(tiny_llama), InfoNCELoss())
    out = module.export(str(tmp_path / "export"))
    meta = json.load(open(os.path.join(out, "embedlight.json")))
    assert meta["icl"]["query"] == "<instruct>{task}\n<query>{query}\n<response>"
    assert meta["pooling_mode"] == "lasttoken"


def test_icl_encoder_inputs_per_mode(tiny_llama):
    emb = embedder(tiny_llama)
    examples = [Example("the cat", "a cat")]
    zs = ICLEncoder(emb, "zero_shot", TASK, examples)
    fs = ICLEncoder(emb, "few_shot", TASK, examples)
    eol = ICLEncoder(emb, "prompteol", TASK, examples)
    assert zs.inputs(["big dog"], "query") == ([f"<instruct>{TASK}\n<query>"], ["big dog\n<response>"])
    prefix, text = fs.inputs(["big dog"], "query")
    assert prefix[0].startswith(f"<instruct>{TASK}\n<query>the cat\n<response>a cat\n\n")
    assert zs.inputs(["a doc"], "document") == ([""], ["a doc"])  # documents raw
    assert "".join(
        eol.inputs(["big dog"], "query")[0] + eol.inputs(["big dog"], "query")[1]
    ) == PROMPTEOL_TEMPLATE.format(text="big dog")
    assert zs.append_eos and not eol.append_eos  # PromptEOL pools the closing quote, no [EOS]
    assert zs.encode(["big dog", "the cat"]).shape == (2, emb.dim)
    assert not torch.allclose(zs.encode(["big dog"]), fs.encode(["big dog"]))


def test_sentence_transformers_prompt_reproduces_few_shot_queries(tiny_llama, tmp_path):
    from sentence_transformers import SentenceTransformer

    from embedlight.prompts.icl import icl_prompt, icl_suffix

    emb = embedder(tiny_llama)
    examples = [Example("the cat", "a cat"), Example("red fish", "blue fish")]
    ours = ICLEncoder(emb, "few_shot", TASK, examples, query_max_len=128).encode(["big dog", "the news"])
    st = SentenceTransformer(emb.export(str(tmp_path / "export")), device="cpu")
    st.max_seq_length = 128
    got = st.encode(
        [q + icl_suffix() for q in ["big dog", "the news"]],
        prompt=icl_prompt(TASK, examples),
        convert_to_tensor=True,
    )
    torch.testing.assert_close(got.cpu(), ours, atol=1e-4, rtol=0)


def test_icl_evaluator_reports_modes_side_by_side(tiny_llama, tmp_path):
    emb = embedder(tiny_llama)
    beir = write_beir(str(tmp_path / "beir"), n=6)
    sts = tmp_path / "sts.jsonl"
    sts.write_text(
        "\n".join(
            json.dumps({"sentence1": a, "sentence2": b, "score": s})
            for a, b, s in [
                ("the cat", "a cat", 5.0),
                ("the dog", "big fish", 0.5),
                ("red bird", "blue bird", 3.0),
                ("the team win", "the team lose", 2.0),
            ]
        )
        + "\n"
    )
    examples = [{"query": "the cat", "response": "a cat"}]
    retrieval = ICLEvaluator(
        RetrievalEvaluator(beir, name="tiny", k_values=[3]),
        TASK,
        examples,
        modes=["zero_shot", "few_shot", "prompteol"],
        query_max_len=96,
    )
    calls = []
    original = ICLEncoder.encode

    def counting(self, texts, **kw):
        calls.append((self.mode, kw.get("kind")))
        return original(self, texts, **kw)

    ICLEncoder.encode = counting
    try:
        metrics = retrieval(emb)
    finally:
        ICLEncoder.encode = original
    for mode in ("zero_shot", "few_shot", "prompteol"):
        assert 0.0 <= metrics[f"tiny/{mode}/ndcg@3"] <= 1.0
    assert len(calls) == 6 and len(retrieval.inner.data.doc_ids) == 6
    sts_eval = ICLEvaluator(STSEvaluator(str(sts), name="sts"), TASK, examples, name="sts_icl")
    got = sts_eval(emb)
    assert set(got) == {"sts_icl/zero_shot/spearman", "sts_icl/few_shot/spearman"}
    with pytest.raises(ValueError, match="needs examples"):
        ICLEvaluator(STSEvaluator(str(sts)), TASK, None)


def test_experiment_configs_compose():
    smol = compose_cfg(["experiment=icl_smollm2"])
    assert smol.backbone.pretrained == "smollm2" and smol.pooler._target_.endswith("LastTokenPooler")
    assert smol.module._target_ == "embedlight.modules.icl.ICLModule" and smol.loss.temperature == 0.02
    paper = compose_cfg(["experiment=icl_mistral7b"])
    b, d = paper.backbone, paper.data
    assert (b.lora_r, b.lora_alpha, b.dtype, b.gradient_checkpointing) == (32, 64, "bf16", True)
    assert (d.query_max_len, d.passage_max_len, d.min_examples, d.max_examples, d.group_size) == (
        2048,
        512,
        0,
        5,
        8,
    )
    assert paper.module.optimizer.lr == 1e-4 and paper.trainer.precision == "bf16-mixed"
    assert paper.trainer.strategy == "ddp"


def test_tiny_icl_fit_with_hydra(tiny_llama, tmp_path, shared_data):
    train = write_triplets(str(tmp_path / "train.jsonl"), n=16)
    out = tmp_path / "out"
    cfg = compose_cfg(
        [
            "experiment=icl_tiny",
            f"backbone.pretrained={tiny_llama}",
            f"paths.output_dir={out}",
            f"paths.shared_dir={shared_data}",
            f"data.sources.retrieval.files=[{train}]",
            "+data.sources.retrieval.task=find similar text",
        ]
    )
    OmegaConf.resolve(cfg)
    result = run(cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    for phase in ("before", "after"):
        assert {
            "stsb_icl/zero_shot/spearman",
            "stsb_icl/few_shot/spearman",
            "stsb_icl/prompteol/spearman",
        } <= set(metrics[phase])
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert all("lora_" in k for k in ckpt["state_dict"])
    assert result["export"] and os.path.isfile(os.path.join(result["export"], "model.safetensors"))
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(result["export"], device="cpu")
    assert st.encode(["the cat"]).shape == (1, 32)
