"""Side-by-side: sentence-transformers' trainer vs embedlight on the same contrastive fine-tune.

Same model (the bundled all-MiniLM-L6-v2), same data (BBC News train pairs: query = title,
positive = body, in-batch negatives only), batch size, max length (both sides), steps, learning rate
(10% warm-up, linear decay, AdamW with weight decay 0.01, gradient clipping 1.0), temperature
(MultipleNegativesRankingLoss scale 20 == InfoNCE temperature 0.05) and seed. Runs alternate
(ST, EL[, EL variant ...], ST, EL, ...) and each runs in its own subprocess, so peak RSS is per run.

Per run: pairs/s and real (non-pad) tokens/s over the optimizer steps only (from the end of the
first step to the end of the last: model loading, the first step's warm-up and evaluation are
excluded), peak RSS (high-water mark at the end of training), MFU against a matmul peak measured at
start-up, nDCG@10 on the BBC test split (both models saved, reloaded through sentence-transformers
and scored by the same embedlight ``RetrievalEvaluator``), and encode throughput (texts/s embedding
the BBC test corpus: sentence-transformers' ``encode`` vs embedlight's ``Embedder.encode``).

Usage (from the repository root)::

    python benchmarks/bench_vs_st.py                         # ST vs embedlight defaults, 30 steps, x2
    python benchmarks/bench_vs_st.py --quick                 # smoke run (3 steps, small eval)
    python benchmarks/bench_vs_st.py --el "bf16=hardware=cpu_bf16" --el "grouped=+data.group_by_length=true"
    python benchmarks/bench_vs_st.py --st-variants default,bf16 --steps 40 --repeats 3 --out bench.json

``--el NAME=OVERRIDES`` adds an embedlight variant (Hydra overrides, space separated) next to the
default one (``el``: embedlight's configuration as shipped); ``--st-variants`` picks the
sentence-transformers runs (``default``: its defaults, fp32; ``bf16``: its ``bf16=True``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import lightning as L

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "all-MiniLM-L6-v2"


# --------------------------------------------------------------------------------------------------
# shared helpers (run inside the workers)
# --------------------------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _train_pairs(data_dir: str) -> tuple[list[str], list[str]]:
    queries, positives = [], []
    with open(os.path.join(data_dir, "bbc", "train.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            queries.append(row["query"])
            positives.append(row["pos"][0])
    return queries, positives


def _evaluate(spec: dict[str, Any], model_dir: str) -> dict[str, float]:
    """Score a saved model with embedlight's RetrievalEvaluator, loaded through sentence-transformers."""
    from embedlight.evaluation import RetrievalEvaluator
    from embedlight.models.sentence_transformer import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(model_dir, device=spec.get("device", "cpu"))
    encoder.model.max_seq_length = spec["max_len"]
    evaluator = RetrievalEvaluator(
        os.path.join(spec["data_dir"], "bbc", "test"),
        name="bbc",
        max_queries=spec.get("eval_max_queries"),
        max_corpus=spec.get("eval_max_corpus"),
        batch_size=64,
    )
    start = time.perf_counter()
    metrics = evaluator(encoder)
    metrics["eval_seconds"] = time.perf_counter() - start
    return metrics


def _corpus(spec: dict[str, Any]) -> list[str]:
    from embedlight.evaluation.retrieval import load_beir

    data = load_beir(os.path.join(spec["data_dir"], "bbc", "test"), "test")
    return data.doc_texts[: spec.get("encode_max_texts") or None]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _time_encode(encode, texts: list[str], device: str) -> float:
    encode(texts[:8])  # warm-up
    _sync(device)
    start = time.perf_counter()
    encode(texts)
    _sync(device)
    return len(texts) / (time.perf_counter() - start)


def _peak_gpu_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


# --------------------------------------------------------------------------------------------------
# sentence-transformers worker
# --------------------------------------------------------------------------------------------------


def run_st(spec: dict[str, Any], workdir: str) -> dict[str, Any]:
    import datasets
    import torch
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    from embedlight.backbones.resolve import resolve_pretrained
    from embedlight.callbacks.throughput import TokenTally
    from embedlight.utils.flops import transformer_flops

    t_load = time.perf_counter()
    device = spec.get("device", "cpu")
    model = SentenceTransformer(resolve_pretrained(spec.get("model", MODEL)), device=device)
    model.max_seq_length = spec["max_len"]
    config = model[0].auto_model.config
    pooler = getattr(model[0].auto_model, "pooler", None)  # BERT's [CLS] head: not an embedding FLOP
    flops = transformer_flops(model[0].auto_model, config, [pooler] if pooler is not None else [])
    queries, positives = _train_pairs(spec["data_dir"])
    train = datasets.Dataset.from_dict({"anchor": queries, "positive": positives})
    loss = MultipleNegativesRankingLoss(model, scale=1.0 / spec["temperature"])
    load_seconds = time.perf_counter() - t_load

    tally = TokenTally()  # steps 2..N, counted on the device without a per-step sync
    times: list[float] = []

    class Trainer(SentenceTransformerTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if model.training and self.state.global_step >= 1:  # step 1 (warm-up) is not timed
                masks = {k: {"attention_mask": v} for k, v in inputs.items() if k.endswith("attention_mask")}
                first = next(iter(masks.values()), None)
                tally.add(masks, int(first["attention_mask"].size(0)) if first else 0)
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    class StepTimer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (1, state.max_steps):  # the timed span ends on finished GPU work
                _sync(device)
            times.append(time.perf_counter())

    args = SentenceTransformerTrainingArguments(
        output_dir=os.path.join(workdir, "st_out"),
        per_device_train_batch_size=spec["batch_size"],
        max_steps=spec["steps"],
        learning_rate=spec["lr"],
        warmup_steps=0.1,  # a float < 1 is a ratio: 10%, as embedlight's warmup_decay
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=spec["seed"],
        bf16=spec.get("bf16", False),
        use_cpu=device == "cpu",
        report_to="none",
        save_strategy="no",
        logging_steps=10,
        disable_tqdm=spec.get("quiet", False),
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, loss=loss, callbacks=[StepTimer()])
    t_train = time.perf_counter()
    trainer.train()
    train_wall = time.perf_counter() - t_train
    rss = _peak_rss_mb()
    secs = times[-1] - times[0] if len(times) > 1 else 0.0
    tokens, squared = tally.read()
    result = {
        "steps": len(times),
        "steps_timed": tally.steps,
        "seconds": secs,
        "pairs_per_sec": tally.samples / secs if secs else None,
        "tokens_per_sec": tokens / secs if secs else None,
        "tflops": flops.train_flops(tokens, squared) / secs / 1e12 if secs else None,
    }
    result.update(
        framework="sentence-transformers",
        precision="bf16-mixed" if spec.get("bf16") else "32-true",
        load_seconds=load_seconds,
        train_wall_seconds=train_wall,
        first_step_seconds=times[0] - t_train if times else None,
        peak_rss_mb=rss,
        peak_gpu_mb=_peak_gpu_mb(device),
        pad_fraction=1.0 - tokens / max(1, tally.slots),
    )
    model.eval()
    export = os.path.join(workdir, "st_model")
    model.save(export)
    if not spec.get("skip_encode"):
        texts = _corpus(spec)
        model.max_seq_length = spec["max_len"]
        with torch.inference_mode():
            result["encode_texts_per_sec"] = _time_encode(
                lambda t: model.encode(t, batch_size=64, convert_to_tensor=True), texts, device
            )
        result["encode_texts"] = len(texts)
    if not spec.get("skip_eval"):
        result["metrics"] = _evaluate(spec, export)
    return result


# --------------------------------------------------------------------------------------------------
# embedlight worker
# --------------------------------------------------------------------------------------------------


class CompileBackbone(L.Callback):
    """Bench-only callback: ``nn.Module.compile()`` the backbone in place (parameter names unchanged).

    ``--el "compiled=+callbacks.compile={_target_: bench_vs_st.CompileBackbone}"``
    """

    def __init__(self, **compile_kwargs: Any) -> None:
        self.compile_kwargs = compile_kwargs

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str | None = None) -> None:
        pl_module.embedder.backbone.model.compile(**self.compile_kwargs)


class ProfileSteps(L.Callback):
    """Bench-only callback: ``torch.profiler`` over steps ``start`` .. ``start + steps``; writes the
    op table sorted by self CPU time and by device time to ``out``.

    ``--el "prof=+callbacks.profile._target_=bench_vs_st.ProfileSteps +callbacks.profile.out=/tmp/prof.txt"``
    """

    def __init__(self, out: str, start: int = 10, steps: int = 10, rows: int = 25) -> None:
        self.out, self.start, self.steps, self.rows = out, start, steps, rows
        self.prof: Any = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int
    ) -> None:
        import torch

        if trainer.global_step == self.start and self.prof is None:
            acts = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                acts.append(torch.profiler.ProfilerActivity.CUDA)
            self.prof = torch.profiler.profile(activities=acts)
            self.prof.__enter__()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.prof is not None and trainer.global_step == self.start + self.steps:
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.prof.__exit__(None, None, None)
            table = self.prof.key_averages()
            with open(self.out, "w", encoding="utf-8") as fh:
                fh.write(f"{self.steps} steps from step {self.start}\n")
                fh.write(table.table(sort_by="self_cpu_time_total", row_limit=self.rows) + "\n\n")
                if torch.cuda.is_available():
                    fh.write(table.table(sort_by="self_device_time_total", row_limit=self.rows) + "\n")
            self.prof = False  # done


def el_overrides(spec: dict[str, Any], workdir: str) -> list[str]:
    """The Hydra overrides that make embedlight's quickstart the benchmarked run."""
    peak = spec.get("peak_tflops") or {}
    base = [
        "experiment=quickstart",
        f"backbone.pretrained={spec.get('model', MODEL)}",
        f"paths.output_dir={workdir}/el_out",
        f"paths.data_dir={spec['data_dir']}",
        "data.group_size=1",  # query + positive; in-batch negatives only (as MNRL on pairs)
        f"data.batch_size={spec['batch_size']}",
        f"data.query_max_len={spec['max_len']}",
        f"data.passage_max_len={spec['max_len']}",
        f"embedder.max_length={spec['max_len']}",
        f"module.optimizer.lr={spec['lr']}",
        f"loss.temperature={spec['temperature']}",
        f"seed={spec['seed']}",
        f"trainer.max_steps={spec['steps']}",
        "trainer.max_epochs=-1",
        "trainer.enable_checkpointing=false",
        "callbacks.checkpoint=null",
        "evaluation=none",
        "callbacks.evaluation=null",  # evaluated below, the same way as the ST model
        f"+callbacks.throughput.summary_path={workdir}/throughput.json",
    ]
    if peak:
        base.append(
            "+callbacks.throughput.peak_tflops={" + ", ".join(f"{k}: {v}" for k, v in peak.items()) + "}"
        )
    if spec.get("quiet"):  # no progress bar on either side (ST: disable_tqdm)
        base += ["callbacks.progress=null", "+trainer.enable_progress_bar=false"]
    return base + list(spec.get("overrides") or [])


def run_el(spec: dict[str, Any], workdir: str) -> dict[str, Any]:
    import torch
    from hydra import compose, initialize_config_module

    from embedlight.training.run import build, run

    overrides = el_overrides(spec, workdir)
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    t0 = time.perf_counter()
    out = run(cfg)
    run_wall = time.perf_counter() - t0
    rss = _peak_rss_mb()
    device = spec.get("device", "cpu")
    with open(os.path.join(workdir, "throughput.json"), encoding="utf-8") as fh:
        summary = json.load(fh)  # written by TokenThroughput(summary_path=...)
    result = {
        "framework": "embedlight",
        "overrides": list(spec.get("overrides") or []),
        "steps": summary["steps_timed"] + 1,
        "steps_timed": summary["steps_timed"],
        "seconds": summary["seconds"],
        "pairs_per_sec": summary["samples_per_sec"],
        "tokens_per_sec": summary["tokens_per_sec"],
        "tflops": summary["tflops"],
        "pad_fraction": summary["pad_fraction"],
        "precision": summary["precision"],
        "first_step_seconds": summary["first_step_seconds"],
        "run_wall_seconds": run_wall,  # model load + fit + export
        "peak_rss_mb": rss,
        "peak_gpu_mb": _peak_gpu_mb(device),
    }
    if not spec.get("skip_encode"):
        module, _ = build(cfg)  # encode speed does not depend on the weights
        embedder = module.embedder.eval().to(device)
        texts = _corpus(spec)
        with torch.inference_mode():
            result["encode_texts_per_sec"] = _time_encode(
                lambda t: embedder.encode(t, kind="document", batch_size=64), texts, device
            )
        result["encode_texts"] = len(texts)
    if not spec.get("skip_eval"):
        result["metrics"] = _evaluate(spec, out["export"])
    return result


# --------------------------------------------------------------------------------------------------
# orchestration
# --------------------------------------------------------------------------------------------------


def worker(kind: str, spec_path: str, result_path: str) -> None:
    with open(spec_path, encoding="utf-8") as fh:
        spec = json.load(fh)
    workdir = os.path.dirname(os.path.abspath(result_path))
    result = run_st(spec, workdir) if kind == "st" else run_el(spec, workdir)
    result["name"] = spec["name"]
    with open(result_path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)


def _run_worker(kind: str, spec: dict[str, Any], workdir: str, log_dir: str, tag: str) -> dict[str, Any]:
    os.makedirs(workdir, exist_ok=True)
    spec_path = os.path.join(workdir, "spec.json")
    result_path = os.path.join(workdir, "result.json")
    with open(spec_path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "disabled"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, spec_path, result_path]
    log_path = os.path.join(log_dir, f"{tag}.log")
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not os.path.exists(result_path):
        with open(log_path, encoding="utf-8") as fh:
            tail = fh.read()[-3000:]
        raise RuntimeError(f"{tag} failed (exit {proc.returncode}); log {log_path}:\n{tail}")
    with open(result_path, encoding="utf-8") as fh:
        result = json.load(fh)
    result["process_wall_seconds"] = wall
    result["log"] = log_path
    return result


def _median(values: list[Any]) -> float | None:
    values = [v for v in values if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def summarise(runs: list[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Median over repeats per variant, with ratios to ``baseline`` (a variant name)."""
    names = list(dict.fromkeys(r["name"] for r in runs))
    rows = []
    for name in names:
        mine = [r for r in runs if r["name"] == name]
        rows.append(
            {
                "name": name,
                "framework": mine[0]["framework"],
                "precision": mine[0].get("precision"),
                "runs": len(mine),
                "pairs_per_sec": _median([r.get("pairs_per_sec") for r in mine]),
                "pairs_per_sec_all": [r.get("pairs_per_sec") for r in mine],
                "tokens_per_sec": _median([r.get("tokens_per_sec") for r in mine]),
                "tflops": _median([r.get("tflops") for r in mine]),
                "pad_fraction": _median([r.get("pad_fraction") for r in mine]),
                "peak_rss_mb": _median([r.get("peak_rss_mb") for r in mine]),
                "peak_gpu_mb": _median([r.get("peak_gpu_mb") for r in mine]),
                "ndcg@10": _median([(r.get("metrics") or {}).get("bbc/ndcg@10") for r in mine]),
                "ndcg@10_all": [(r.get("metrics") or {}).get("bbc/ndcg@10") for r in mine],
                "encode_texts_per_sec": _median([r.get("encode_texts_per_sec") for r in mine]),
                "first_step_seconds": _median([r.get("first_step_seconds") for r in mine]),
            }
        )
    base = next((r for r in rows if r["name"] == baseline), None)
    for row in rows:
        for key in ("pairs_per_sec", "tokens_per_sec", "encode_texts_per_sec", "peak_rss_mb"):
            if base and row[key] and base[key]:
                row[f"{key}_ratio"] = row[key] / base[key]
    return rows


def _fmt(v: Any, spec: str) -> str:
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def _mem(row: dict[str, Any]) -> float | None:
    """Peak GPU memory on a GPU run, else peak RSS (MB)."""
    return row.get("peak_gpu_mb") or row.get("peak_rss_mb")


def table(rows: list[dict[str, Any]], peak: dict[str, float] | None, baseline: str) -> str:
    head = (
        f"{'variant':<16} {'precision':<10} {'n':>2} {'pairs/s':>8} {'x' + baseline[:6]:>9} {'tok/s':>8} "
        f"{'pad':>5} {'MFU':>6} {'mem MB':>7} {'nDCG@10':>8} {'enc/s':>7} {'x enc':>6}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        p = (peak or {}).get("bf16" if "bf16" in str(r["precision"]) else "fp32")
        mfu = r["tflops"] / p if r.get("tflops") and p else None
        lines.append(
            f"{r['name']:<16} {str(r['precision']):<10} {r['runs']:>2} {_fmt(r['pairs_per_sec'], '8.2f')} "
            f"{_fmt(r.get('pairs_per_sec_ratio'), '8.2f')}x {_fmt(r['tokens_per_sec'], '8.0f')} "
            f"{_fmt(r.get('pad_fraction'), '5.1%')} {_fmt(mfu, '6.1%')} {_fmt(_mem(r), '7.0f')} {_fmt(r['ndcg@10'], '8.4f')} "
            f"{_fmt(r['encode_texts_per_sec'], '7.1f')} {_fmt(r.get('encode_texts_per_sec_ratio'), '5.2f')}x"
        )
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]], peak: dict[str, float] | None, baseline: str) -> str:
    """The summary as a Markdown table (for experiments/performance/README.md)."""
    lines = [
        f"| variant | precision | runs | pairs/s (each run) | x {baseline} | real tok/s | pad | MFU | peak mem MB "
        "| nDCG@10 (each run) | encode texts/s | x encode |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = (peak or {}).get("bf16" if "bf16" in str(r["precision"]) else "fp32")
        mfu = r["tflops"] / p if r.get("tflops") and p else None
        each = ", ".join(_fmt(v, ".2f") for v in r["pairs_per_sec_all"])
        ndcg = ", ".join(_fmt(v, ".4f") for v in r["ndcg@10_all"])
        lines.append(
            f"| {r['name']} | {r['precision']} | {r['runs']} | {_fmt(r['pairs_per_sec'], '.2f')} ({each}) "
            f"| {_fmt(r.get('pairs_per_sec_ratio'), '.2f')} | {_fmt(r['tokens_per_sec'], '.0f')} "
            f"| {_fmt(r.get('pad_fraction'), '.1%')} | {_fmt(mfu, '.1%')} | {_fmt(_mem(r), '.0f')} "
            f"| {_fmt(r['ndcg@10'], '.4f')} ({ndcg}) | {_fmt(r['encode_texts_per_sec'], '.1f')} "
            f"| {_fmt(r.get('encode_texts_per_sec_ratio'), '.2f')} |"
        )
    return "\n".join(lines)


def report(path: str) -> None:
    """Re-print a saved result: the text table and the Markdown table."""
    with open(path, encoding="utf-8") as fh:
        saved = json.load(fh)
    rows, peak = saved["summary"], saved.get("peak_tflops")
    baseline = rows[0]["name"] if rows else "st"
    print(json.dumps(saved["settings"]), "\n")
    print(table(rows, peak, baseline), "\n")
    print(markdown(rows, peak, baseline))


def parse_el(values: list[str]) -> list[tuple[str, list[str]]]:
    out = []
    for value in values:
        name, _, rest = value.partition("=")
        if not name or not _:
            raise SystemExit(f"--el wants NAME=OVERRIDES, got {value!r}")
        out.append((name, shlex.split(rest)))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run (default 30)")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=128, help="token limit, queries and documents")
    parser.add_argument("--lr", type=float, default=5e-5, help="the quickstart's learning rate")
    parser.add_argument("--temperature", type=float, default=0.05, help="= 1 / MNRL scale (20)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (both trainers; default cpu)")
    parser.add_argument("--model", default=MODEL, help="model for both sides: bundled name, folder or hub id")
    parser.add_argument("--data-dir", default=os.path.join(REPO, "data"), help="holds bbc/ (built if absent)")
    parser.add_argument("--st-variants", default="default", help="comma list of default, bf16")
    parser.add_argument("--el", action="append", default=[], metavar="NAME=OVERRIDES", help="extra variant")
    parser.add_argument("--no-el-default", action="store_true", help="skip the plain embedlight variant")
    parser.add_argument("--skip-eval", action="store_true", help="no nDCG@10 (throughput only)")
    parser.add_argument("--skip-encode", action="store_true", help="no encode throughput")
    parser.add_argument("--peak", default="measure", help="'measure', 'none' or fp32,bf16 TFLOP/s")
    parser.add_argument("--out", default=None, help="JSON results (default outputs/bench/bench_vs_st.json)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 steps, 1 round, small eval")
    parser.add_argument("--report", default=None, metavar="JSON", help="re-print a saved result and exit")
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "SPEC", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return {}
    if args.report:
        report(args.report)
        return {}

    quick = args.quick
    steps = 3 if quick else args.steps
    repeats = 1 if quick else args.repeats
    out_path = os.path.abspath(args.out or os.path.join(REPO, "outputs", "bench", "bench_vs_st.json"))
    data_dir = os.path.abspath(args.data_dir)
    if not os.path.exists(os.path.join(data_dir, "bbc", "train.jsonl")):
        from embedlight.data.builders.bbc import prepare_bbc

        prepare_bbc(os.path.join(data_dir, "bbc"))

    if args.peak == "measure":
        from embedlight.utils.matmul_peak import measure

        n = 512 if quick else (8192 if args.device.startswith("cuda") else 2048)
        m = measure(n=n, seconds=0.2 if quick else 1.0, trials=1 if quick else 3, device=args.device)
        peak = m["tflops"]
        print(
            f"matmul peak on {m['device']} ({m['threads']} threads): "
            + ", ".join(f"{k} {v:.3f} TFLOP/s" for k, v in peak.items()),
            flush=True,
        )
    elif args.peak == "none":
        peak = None
    else:
        fp32, bf16 = (float(x) for x in args.peak.split(","))
        peak = {"fp32": fp32, "bf16": bf16}

    common = {
        "steps": steps,
        "batch_size": args.batch_size,
        "max_len": args.max_len,
        "lr": args.lr,
        "temperature": args.temperature,
        "seed": args.seed,
        "data_dir": data_dir,
        "skip_eval": args.skip_eval,
        "skip_encode": args.skip_encode,
        "peak_tflops": peak,
        "device": args.device,
        "model": args.model,
        "quiet": True,
    }
    if quick:
        common.update(eval_max_queries=32, eval_max_corpus=64, encode_max_texts=64)
    variants: list[tuple[str, str, dict[str, Any]]] = []
    for st in [s.strip() for s in args.st_variants.split(",") if s.strip()]:
        if st not in ("default", "bf16"):
            raise SystemExit(f"--st-variants: unknown {st!r} (default, bf16)")
        name = "st" if st == "default" else f"st_{st}"
        variants.append(("st", name, {**common, "name": name, "bf16": st == "bf16"}))
    el = [] if args.no_el_default else [("el", [])]
    for name, overrides in el + parse_el(args.el):
        variants.append(("el", name, {**common, "name": name, "overrides": overrides}))

    root = tempfile.mkdtemp(prefix="bench_vs_st_")
    log_dir = os.path.splitext(out_path)[0] + "_logs"
    os.makedirs(log_dir, exist_ok=True)
    runs: list[dict[str, Any]] = []
    for rnd in range(repeats):
        for kind, name, spec in variants:
            tag = f"r{rnd}_{name}"
            print(f"[{time.strftime('%H:%M:%S')}] round {rnd + 1}/{repeats}: {name} ...", flush=True)
            result = _run_worker(kind, spec, os.path.join(root, tag), log_dir, tag)
            result["round"] = rnd
            runs.append(result)
            print(
                f"    {result.get('pairs_per_sec') or 0:.2f} pairs/s, {result.get('tokens_per_sec') or 0:.0f} tok/s, "
                f"peak RSS {result['peak_rss_mb']:.0f} MB, nDCG@10 "
                f"{(result.get('metrics') or {}).get('bbc/ndcg@10', float('nan')):.4f}, "
                f"{result['process_wall_seconds']:.0f} s wall",
                flush=True,
            )
            _write(out_path, args, common, peak, runs, summarise(runs, variants[0][1]))
    baseline = variants[0][1]
    rows = summarise(runs, baseline)
    print()
    print(
        f"{steps} steps x batch {args.batch_size}, max_len {args.max_len}, lr {args.lr}, "
        f"T {args.temperature}, seed {args.seed}; medians over {repeats} round(s); ratios vs {baseline}"
    )
    print(table(rows, peak, baseline))
    _write(out_path, args, common, peak, runs, rows)
    print(f"\nwrote {out_path}")
    return {"rows": rows, "runs": runs, "out": out_path}


def _write(path: str, args: Any, common: dict, peak: Any, runs: list, rows: list) -> None:
    import platform

    import torch

    payload = {
        "settings": {k: v for k, v in common.items() if k != "quiet"},
        "argv": sys.argv[1:],
        "machine": {
            "cpu": _cpu_name(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sentence_transformers": _version("sentence-transformers"),
            "transformers": _version("transformers"),
            "lightning": _version("lightning"),
        },
        "peak_tflops": peak,
        "summary": rows,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)


def _version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    from embedlight.utils.matmul_peak import _cpu_name as name

    return name()


if __name__ == "__main__":
    main()
