"""Test helpers: compose configs and write tiny datasets."""

from __future__ import annotations

import json
import os

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

WORDS = "the cat dog bird fish red blue green big small news sport music film game team market bank".split()


def compose_cfg(overrides: list[str]) -> DictConfig:
    """Compose ``train.yaml`` with overrides, as the command line would."""
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def write_triplets(path: str, n: int = 24, seed: int = 0) -> str:
    """A tiny retrieval set in FlagEmbedding's schema, built from the tiny tokenizer's words."""
    import random

    rng = random.Random(seed)
    with open(path, "w") as fh:
        for _ in range(n):
            q = " ".join(rng.choice(WORDS) for _ in range(4))
            pos = q + " " + " ".join(rng.choice(WORDS) for _ in range(6))
            negs = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(3)]
            fh.write(json.dumps({"query": q, "pos": [pos], "neg": negs}) + "\n")
    return path


def write_beir(folder: str, n: int = 12, seed: int = 1) -> str:
    """A tiny BEIR folder (one relevant document per query)."""
    import random

    rng = random.Random(seed)
    os.makedirs(os.path.join(folder, "qrels"), exist_ok=True)
    with (
        open(os.path.join(folder, "corpus.jsonl"), "w") as c,
        open(os.path.join(folder, "queries.jsonl"), "w") as q,
        open(os.path.join(folder, "qrels", "test.tsv"), "w") as r,
    ):
        r.write("query-id\tcorpus-id\tscore\n")
        for i in range(n):
            words = [rng.choice(WORDS) for _ in range(8)]
            c.write(json.dumps({"_id": f"d{i}", "title": "", "text": " ".join(words)}) + "\n")
            q.write(json.dumps({"_id": f"q{i}", "text": " ".join(words[:3])}) + "\n")
            r.write(f"q{i}\td{i}\t1\n")
    return folder


def tiny_overrides(tiny_dir: str, tmp: str, steps: int = 4, extra: list[str] | None = None) -> list[str]:
    """Overrides that turn the quickstart experiment into a seconds-long run on a tiny model.

    The precision is pinned to fp32 on the CPU (``hardware=cpu``) unless ``extra`` picks a hardware
    preset itself: ``hardware=auto`` would pick bf16 on CPUs with AVX512-BF16/AMX and fp32 elsewhere,
    and a test must not depend on which kind of machine runs it.
    """
    os.makedirs(tmp, exist_ok=True)
    extra = list(extra or [])
    hardware = [] if any(o.startswith("hardware=") for o in extra) else ["hardware=cpu"]
    train = write_triplets(os.path.join(tmp, "train.jsonl"))
    beir = write_beir(os.path.join(tmp, "beir"))
    return [
        "experiment=quickstart",
        f"backbone.pretrained={tiny_dir}",
        f"data.train_files=[{train}]",
        "data.prepare=null",
        "data.batch_size=4",
        "data.group_size=2",
        "evaluation=none",
        f"+evaluation.tiny={{_target_: embedlight.evaluation.RetrievalEvaluator, path: '{beir}'}}",
        f"paths.output_dir={tmp}/out",
        f"trainer.max_steps={steps}",
        "trainer.log_every_n_steps=1",
        "callbacks.progress=null",
        "embedder.max_length=32",
        *hardware,
        *extra,
    ]
