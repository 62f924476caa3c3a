"""English ICL training triplets from the shared data (SNLI dev, STS-B train, FlagEmbedding examples).

Each source becomes a FlagEmbedding-schema JSONL with a ``prompt`` (the task description for the
``<instruct>`` line), so that dynamic ICL examples are drawn within a task:

* ``snli.jsonl``: SNLI 1.0 dev premises; entailed hypotheses are positives, contradictions hard
  negatives (as SimCSE/E5-mistral's NLI data). SNLI *dev* is used because the train split is absent.
* ``stsb.jsonl``: STS Benchmark **train** pairs with a gold score >= ``min_score`` (no mined negatives:
  other rows' positives are used). The STS-B *test* split stays held out for evaluation.
* ``retrieval.jsonl``: FlagEmbedding's 20 msmarco/nq example rows (with their prompts and negatives).

Build it with ``embedlight-prepare dataset=icl_english`` (``conf/dataset/icl_english.yaml``), or let
training do it (``experiment=icl_smollm2`` calls :func:`prepare_icl_english` as its data's ``prepare``).
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
from collections import OrderedDict

from embedlight.utils.io import iter_records, write_jsonl

log = logging.getLogger(__name__)

OUTPUTS = ("snli.jsonl", "stsb.jsonl", "retrieval.jsonl")
NLI_TASK = "Given a premise, retrieve a hypothesis that is entailed by the premise."
STS_TASK = "Retrieve semantically similar text."


def _lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n").strip() for line in fh]


def prepare_icl_english(
    out_dir: str, shared_dir: str, min_score: float = 4.0, rebuild: bool = False
) -> dict[str, int]:
    """Write ``snli.jsonl``, ``stsb.jsonl`` and ``retrieval.jsonl`` under ``out_dir`` (once).

    Args:
        out_dir: Output folder.
        shared_dir: The shared data root (``../shared/data``).
        min_score: STS-B train pairs scoring at least this become query/positive pairs.
        rebuild: Build even when the three files exist (``embedlight-prepare ... overwrite=true``).

    Returns:
        Rows written per file (empty when the files existed and were kept).
    """
    os.makedirs(out_dir, exist_ok=True)
    if not rebuild and all(os.path.isfile(os.path.join(out_dir, n)) for n in OUTPUTS):
        return {}
    counts: dict[str, int] = {}

    snli = os.path.join(shared_dir, "snli_en")
    groups: OrderedDict[str, dict[str, list[str]]] = OrderedDict()
    for s1, s2, label in zip(
        _lines(f"{snli}/s1.dev"), _lines(f"{snli}/s2.dev"), _lines(f"{snli}/labels.dev")
    ):
        g = groups.setdefault(s1, {"pos": [], "neg": []})
        if label == "entailment":
            g["pos"].append(s2)
        elif label == "contradiction":
            g["neg"].append(s2)
    rows = [
        {"query": q, "pos": g["pos"], "neg": g["neg"], "prompt": NLI_TASK}
        for q, g in groups.items()
        if g["pos"]
    ]
    write_jsonl(os.path.join(out_dir, "snli.jsonl"), rows)
    counts["snli.jsonl"] = len(rows)

    rows = []
    with gzip.open(os.path.join(shared_dir, "stsb_en", "stsbenchmark.tsv.gz"), "rt", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if rec["split"] == "train" and float(rec["score"]) >= min_score:
                rows.append(
                    {"query": rec["sentence1"], "pos": [rec["sentence2"]], "neg": [], "prompt": STS_TASK}
                )
    write_jsonl(os.path.join(out_dir, "stsb.jsonl"), rows)
    counts["stsb.jsonl"] = len(rows)

    rows = []
    base = os.path.join(shared_dir, "flagembedding_examples", "example_data", "retrieval")
    for name in ("msmarco.jsonl", "nq.jsonl"):
        for _, r in iter_records(os.path.join(base, name), "FlagEmbedding example file"):
            rows.append({k: r[k] for k in ("query", "pos", "neg", "prompt") if k in r})
    write_jsonl(os.path.join(out_dir, "retrieval.jsonl"), rows)
    counts["retrieval.jsonl"] = len(rows)
    log.info("prepared ICL English data in %s: %s", out_dir, counts)
    return counts
