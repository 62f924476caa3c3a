#!/usr/bin/env bash
# Run the C-MTEB-local and English evaluation presets on one model, with the reduced sizes used for the
# recorded tables (the 2-core machine was shared by 8 engineers; see README.md here). Usage, from the repo root:
#   experiments/eval/run_tables.sh MODEL TAG        e.g. all-MiniLM-L6-v2 before
# EN_DROP="MR CR" leaves those English evaluators out (same sizes for the rest); PARALLEL=1 runs the two
# presets at the same time; ONLY=english_local (or cmteb_local) runs one preset.
set -euo pipefail
MODEL=$1
TAG=$2
OUT=experiments/eval/raw
mkdir -p "$OUT"
PY=${PYTHON:-python}
CMTEB=()
for t in STSB-zh PAWSX ATEC BQ LCQMC AFQMC; do CMTEB+=("++evaluation.$t.max_pairs=300" "++evaluation.$t.seed=0"); done
EN=("++evaluation.STSB.max_pairs=300" "++evaluation.STSB.seed=0")
for t in STS12 STS13 STS14 STS15 STS16; do EN+=("++evaluation.$t.max_pairs=200"); done
for t in MR CR SUBJ MPQA; do EN+=("++evaluation.$t.max_train=300"); done
for t in SST2 TREC; do EN+=("++evaluation.$t.max_train=300" "++evaluation.$t.max_test=200"); done
EN+=(++evaluation.TREC-clustering.limit=300 ++evaluation.MRPC.limit=300 ++evaluation.SNLI-pairs.limit=300)
EN+=(++evaluation.MSMARCO-rerank.max_queries=8 ++evaluation.MSMARCO-rerank.n_negatives=10)
EN+=(++evaluation.msmarco_subset.max_queries=8 ++evaluation.msmarco_subset.max_corpus=800)
EN+=(++evaluation.dbpedia_subset.max_queries=10 ++evaluation.dbpedia_subset.max_corpus=500)
run() {
  local preset=$1
  shift
  /usr/bin/time -v "$PY" -m embedlight.cli.eval model="$MODEL" evaluation="$preset" "$@" \
    output="$OUT/${TAG}_${preset}.json" overwrite=true > "$OUT/${TAG}_${preset}.log" 2>&1
}
for name in ${EN_DROP:-}; do
  KEEP=()
  for o in "${EN[@]}"; do [[ $o == "++evaluation.$name."* ]] || KEEP+=("$o"); done
  EN=("${KEEP[@]}" "~evaluation.$name")
done
if [[ ${PARALLEL:-0} == 1 ]]; then
  run cmteb_local "${CMTEB[@]}" &
  run english_local "${EN[@]}"
  wait
else
  if [[ -z ${ONLY:-} || $ONLY == cmteb_local ]]; then run cmteb_local "${CMTEB[@]}"; fi
  if [[ -z ${ONLY:-} || $ONLY == english_local ]]; then run english_local "${EN[@]}"; fi
fi
