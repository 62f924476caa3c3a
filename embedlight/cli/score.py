"""``embedlight-score``: add teacher scores (``pos_scores``, ``neg_scores``) to a triplet JSONL.

The output is FlagEmbedding's distillation schema; train on it with ``loss=distill_kl`` or
``loss=infonce_distill`` (see README, "Distillation").

Examples:
    embedlight-score input=train.jsonl output=train.scored.jsonl                    # bi-encoder teacher
    embedlight-score teacher=cross_encoder teacher.model=/models/bge-reranker-base \\
        input=train.jsonl output=train.scored.jsonl

Rows are read, validated (errors name file, line and field), scored and written ``chunk_rows`` at a
time, so the file may be larger than RAM; every other field of a row is kept as it was. The output
appears atomically when complete, and an existing output is never overwritten unless
``overwrite=true``. The library call is :func:`embedlight.engine.scoring.run`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.engine.scoring import run


@hydra.main(config_path="../conf", config_name="score", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point over :func:`embedlight.engine.scoring.run`."""
    run(cfg)


if __name__ == "__main__":
    main()
