"""End to end on a tiny model: fit, metrics, export (transformers + sentence-transformers), exact resume."""

from __future__ import annotations

import glob
import json
import os

import pytest
import torch
from hydra import compose, initialize_config_module

from embedlight.training.run import build, run
from embedlight.utils.io import DataFormatError
from tests.helpers import compose_cfg, tiny_overrides


def test_fit_writes_metrics_checkpoint_and_export(tiny_bert, tmp_path):
    overrides = tiny_overrides(tiny_bert, str(tmp_path), extra=["callbacks.evaluation.every_n_steps=2"])
    result = run(compose_cfg(overrides))
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"before", "step_2", "step_4", "after"}
    assert 0.0 <= metrics["after"]["tiny/ndcg@10"] <= 1.0
    assert (out / "checkpoints" / "last.ckpt").exists()
    assert (out / "export" / "model.safetensors").exists()
    assert result["export"] == str(out / "export")
    logs = glob.glob(str(out / "logs" / "*" / "metrics.csv"))
    assert logs and "train/loss" in open(logs[0]).read()


EXPORT_TEXTS = [
    "the cat",
    "what is the news in sport and business today ?",
    "a big red dog is fast",
    "blue",
]  # different lengths: every batch is padded
INSTRUCTION = "represent this sentence for searching relevant passages : "


def _export_backbone(arch: str, path: str):
    from embedlight.backbones.hf_decoder import HFDecoder
    from embedlight.backbones.hf_encoder import HFEncoder

    torch.manual_seed(0)
    if arch == "bert":
        return HFEncoder(path)
    bb = HFDecoder(path, lora_r=4, lora_alpha=8, lora_dropout=0.0)  # pads on the left, as trained
    assert bb.padding_side == "left"
    return bb


@pytest.mark.parametrize("exclude_instruction", [False, True], ids=["with-prompt", "without-prompt"])
@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_export_matches_in_sentence_transformers_and_automodel(
    arch, exclude_instruction, tiny_bert, tiny_llama, tmp_path
):
    """Every registered pooler x both backbones x include_prompt on/off: the export reproduces
    ``Embedder.encode`` in sentence-transformers (padded batches, left-padded decoder)."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    from embedlight.models.embedder import Embedder
    from embedlight.registry import get, registered

    path = {"bert": tiny_bert, "llama": tiny_llama}[arch]
    names = sorted(registered("pooler"))
    assert {"cls", "mean", "weighted_mean", "last_token"} <= set(names)
    for i, name in enumerate(names):
        projection = (None, "linear", "mlp")[i % 3]
        pooler = get("pooler", name)(exclude_instruction=exclude_instruction, projection=projection)
        emb = Embedder(
            _export_backbone(arch, path),
            pooler,
            normalize=i % 2 == 0,
            query_instruction=INSTRUCTION,
            doc_instruction="passage : ",
            max_length=32,
        )
        with torch.no_grad():  # perturb the head so that an identity-like head would not pass by luck
            for p in emb.pooler.head.parameters():
                p.add_(0.1 * torch.randn_like(p))
        export = emb.export(str(tmp_path / f"{arch}-{name}"))
        assert AutoTokenizer.from_pretrained(export).padding_side == "right"
        meta = json.loads(open(os.path.join(export, "embedlight.json")).read())
        assert meta["training_padding_side"] == emb.backbone.padding_side
        st = SentenceTransformer(export, device="cpu")
        for kind in ("query", "document"):
            ours = emb.encode(EXPORT_TEXTS, kind=kind, batch_size=4)
            theirs = st.encode(EXPORT_TEXTS, prompt_name=kind, convert_to_tensor=True, batch_size=4).cpu()
            torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5, msg=f"{name} {kind}")
    if arch == "bert":  # the backbone alone, through plain transformers
        hf = AutoModel.from_pretrained(export).eval()
        batch = emb.tokenizer(EXPORT_TEXTS, padding=True, return_tensors="pt")
        with torch.no_grad():
            emb.eval()
            ref = emb.backbone(batch["input_ids"], batch["attention_mask"])
            torch.testing.assert_close(hf(**batch).last_hidden_state, ref)


def test_export_through_hydra_build(tiny_bert, tmp_path):
    """The trainer's own export path (``build`` from config) with an INSTRUCTOR-style pooler."""
    from sentence_transformers import SentenceTransformer

    extra = [
        "pooler=mean",
        "pooler.exclude_instruction=true",
        "embedder.query_instruction=e5",
        "embedder.doc_instruction=e5",
    ]
    module, _ = build(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), extra=extra)))
    emb = module.embedder
    st = SentenceTransformer(emb.export(str(tmp_path / "export")), device="cpu")
    for kind in ("query", "document"):
        ours = emb.encode(EXPORT_TEXTS, kind=kind)
        theirs = st.encode(EXPORT_TEXTS, prompt_name=kind, convert_to_tensor=True).cpu()
        torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_exact(tiny_bert, tmp_path, workers):
    """4 steps straight == 2 steps, crash, resume, 2 more (same weights, dropout on), with and without
    DataLoader workers (which start before the checkpoint is restored unless deferred)."""
    every = [
        f"data.num_workers={workers}",
        "callbacks.checkpoint.every_n_train_steps=2",
        "callbacks.checkpoint.save_top_k=-1",
        "callbacks.evaluation=null",
    ]
    a = tmp_path / "a"
    run(compose_cfg(tiny_overrides(tiny_bert, str(a), steps=4, extra=every)))
    step2 = glob.glob(str(a / "out" / "checkpoints" / "*step=2.ckpt"))
    assert step2, os.listdir(a / "out" / "checkpoints")
    b = tmp_path / "b"
    os.makedirs(b / "out" / "checkpoints")
    import shutil

    shutil.copy(step2[0], b / "out" / "checkpoints" / "last.ckpt")
    run(compose_cfg(tiny_overrides(tiny_bert, str(b), steps=4, extra=[*every, "resume=auto"])))
    sa = torch.load(a / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    sb = torch.load(b / "out" / "checkpoints" / "last.ckpt", weights_only=True)
    assert sa["global_step"] == sb["global_step"] == 4
    assert sa["state_dict"].keys() == sb["state_dict"].keys()
    for k, v in sa["state_dict"].items():  # fp32 on the CPU: bit-identical, not merely close
        assert torch.equal(sb["state_dict"][k], v), f"{k} differs after resume"


def test_malformed_training_file_names_line_and_field(tiny_bert, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a", "pos": ["b"]}\n{"query": "a", "pos": "b"}\n')
    overrides = tiny_overrides(tiny_bert, str(tmp_path))
    overrides = [o for o in overrides if not o.startswith("data.train_files")] + [f"data.train_files=[{bad}]"]
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: field 'pos'"):
        run(compose_cfg(overrides))


def test_embedlight_eval_on_an_export(tiny_bert, tmp_path):
    """`embedlight-eval` loads an export through sentence-transformers and scores it like training did."""
    from embedlight.evaluation.run import run as evaluate

    overrides = tiny_overrides(tiny_bert, str(tmp_path), steps=2, extra=["logger=none"])
    result = run(compose_cfg(overrides))
    beir = str(tmp_path / "beir")
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose(
            config_name="eval",
            overrides=[
                f"model={result['export']}",
                f"+evaluation.tiny={{_target_: embedlight.evaluation.RetrievalEvaluator, path: '{beir}'}}",
                f"output={tmp_path}/eval.json",
            ],
        )
    metrics = evaluate(cfg)
    assert metrics["tiny/ndcg@10"] == pytest.approx(result["metrics"]["after"]["tiny/ndcg@10"], abs=1e-4)
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"] == metrics


def test_bf16_autocast_on_cpu_and_scored_pairs(tiny_bert, tmp_path):
    """`hardware=cpu_bf16` trains; a scored-pair source goes through the pair loss (CoSENT)."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"text1": f"the cat {i}", "text2": "a dog", "score": i % 5}) + "\n" for i in range(16)
        )
    )
    extra = ["hardware=cpu_bf16", f"+data.sources.sts={{files: ['{pairs}']}}", "callbacks.evaluation=null"]
    result = run(compose_cfg(tiny_overrides(tiny_bert, str(tmp_path), steps=8, extra=extra)))
    assert result["export"] is not None
    header = open(glob.glob(str(tmp_path / "out" / "logs" / "*" / "metrics.csv"))[0]).readline()
    assert "train/pair_loss" in header and "train/contrastive_loss" in header
