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
``overwrite=true``.
"""

from __future__ import annotations

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from embedlight.engine.scoring import score_file


@hydra.main(config_path="../conf", config_name="score", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    teacher = instantiate(cfg.teacher)
    n = score_file(teacher, cfg.input, cfg.output, cfg.chunk_rows, cfg.overwrite)
    print(f"wrote {n} scored rows to {cfg.output}")


if __name__ == "__main__":
    main()
