"""Build a FlagEmbedding-schema file from the shared MS MARCO subset (TREC-DL-2019 queries, 5,000 passages):
one row per judged query, every passage judged relevant (score >= 1) as a positive.

Usage: python experiments/data/msmarco_train_rows.py SHARED_DATA_DIR OUT.jsonl
"""

import json
import sys
from collections import defaultdict

src, out = sys.argv[1], sys.argv[2]
folder = f"{src}/retrieval_msmarco_subset"
docs = {}
with open(f"{folder}/corpus.jsonl") as fh:
    for line in fh:
        d = json.loads(line)
        docs[d["_id"]] = f"{d.get('title') or ''} {d['text']}".strip()
queries = {}
with open(f"{folder}/queries.jsonl") as fh:
    for line in fh:
        q = json.loads(line)
        queries[q["_id"]] = q["text"]
pos = defaultdict(list)
with open(f"{folder}/qrels/test.tsv") as fh:
    for line in fh:
        qid, did, score = line.rstrip("\n").split("\t")
        if int(score) >= 1 and did in docs:
            pos[qid].append(docs[did])
with open(out, "w") as fh:
    for qid, texts in pos.items():
        fh.write(json.dumps({"query": queries[qid], "pos": texts}) + "\n")
print(f"{len(pos)} rows, {sum(map(len, pos.values()))} positives -> {out}")
