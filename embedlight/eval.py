"""``embedlight-eval``: evaluate any saved model (an embedlight export, a sentence-transformers folder,
a bundled short name or a hub id) on the configured evaluators.

Examples:
    embedlight-eval model=outputs/demo/export evaluation=bbc
    embedlight-eval model=all-MiniLM-L6-v2 evaluation=stsb output=stsb.json
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from embedlight.backbones.loading import capture_loading_reports, check_loading_info
from embedlight.backbones.resolve import resolve_pretrained
from embedlight.evaluation import run_evaluators
from embedlight.utils import write_json

log = logging.getLogger("embedlight.eval")


class SentenceTransformerEncoder:
    """Adapts a ``SentenceTransformer`` to the evaluators' ``TextEncoder`` protocol.

    ``instruction=None`` uses the model's saved prompt for ``kind`` (``query``/``document``) if it has
    one; a string is used as the prompt verbatim. A checkpoint with missing tensors is refused
    (:mod:`embedlight.backbones.loading`) instead of evaluated with random-init layers.
    """

    def __init__(self, model_name: str, device: str | None = None, trust_remote_code: bool = False) -> None:
        from sentence_transformers import SentenceTransformer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        source = resolve_pretrained(model_name)
        with capture_loading_reports() as reports:
            self.model = SentenceTransformer(source, device=device, trust_remote_code=trust_remote_code)
        for where, info in reports:
            if info is not None:
                check_loading_info(where or source, info.missing_keys, info.mismatched_keys)

    def encode(
        self,
        texts: list[str],
        *,
        kind: str = "query",
        instruction: str | None = None,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {}
        if instruction is not None:
            kwargs["prompt"] = instruction
        elif kind in (self.model.prompts or {}):
            kwargs["prompt_name"] = kind
        emb = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_tensor=True,
            **kwargs,
        )
        return emb.float().cpu()


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Load ``cfg.model`` and run every evaluator in ``cfg.evaluation``."""
    if not cfg.get("evaluation"):
        raise ValueError("nothing to evaluate: pick evaluators, e.g. evaluation=bbc or evaluation=stsb")
    encoder = SentenceTransformerEncoder(cfg.model, cfg.get("device"), cfg.get("trust_remote_code", False))
    evaluators = [
        instantiate({**spec, "name": spec.get("name") or key})
        for key, spec in cfg.evaluation.items()
        if spec is not None
    ]
    metrics = run_evaluators(evaluators, encoder)
    for key, value in sorted(metrics.items()):
        print(f"{key:<40} {value:.4f}")
    if cfg.get("output"):
        write_json(cfg.output, {"model": cfg.model, "metrics": metrics})
    return metrics


@hydra.main(config_path="conf", config_name="eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    evaluate(cfg)


if __name__ == "__main__":
    main()
