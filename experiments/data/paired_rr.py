"""Per-query reciprocal rank of two exports on a BEIR folder, and a paired bootstrap of the MRR difference.

Usage: python experiments/data/paired_rr.py BEIR_DIR EXPORT_A EXPORT_B OUT.json
"""

import json
import sys

import numpy as np
from sentence_transformers import SentenceTransformer

folder, a, b, out = sys.argv[1:5]
docs = [json.loads(line) for line in open(f"{folder}/corpus.jsonl")]
queries = [json.loads(line) for line in open(f"{folder}/queries.jsonl")]
qrels = {}
for line in list(open(f"{folder}/qrels/test.tsv"))[1:]:
    q, d, _ = line.split("\t")
    qrels[q] = d
doc_ids = [d["_id"] for d in docs]
rr = {}
for name, path in (("a", a), ("b", b)):
    model = SentenceTransformer(path, device="cpu")
    D = model.encode(
        [d["text"] for d in docs], batch_size=32, convert_to_numpy=True, normalize_embeddings=True
    )
    Q = model.encode(
        [q["text"] for q in queries], batch_size=64, convert_to_numpy=True, normalize_embeddings=True
    )
    S = Q @ D.T  # (Q, N)
    ranks = []
    for i, q in enumerate(queries):
        gold = doc_ids.index(qrels[q["_id"]])
        ranks.append(1 + int((S[i] > S[i, gold]).sum()))
    rr[name] = 1.0 / np.array(ranks)
diff = rr["b"] - rr["a"]
rng = np.random.default_rng(0)
boot = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(10000)])
res = {
    "mrr_a": float(rr["a"].mean()),
    "mrr_b": float(rr["b"].mean()),
    "mrr_diff": float(diff.mean()),
    "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
    "queries_b_better": int((diff > 0).sum()),
    "queries_a_better": int((diff < 0).sum()),
    "ties": int((diff == 0).sum()),
}
json.dump(res, open(out, "w"), indent=2)
print(res)
