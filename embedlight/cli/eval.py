"""``embedlight-eval``: evaluate any saved model (an embedlight export, a sentence-transformers folder,
a bundled short name or a hub id) on the configured evaluators.

Examples:
    embedlight-eval model=outputs/demo/export evaluation=bbc
    embedlight-eval model=all-MiniLM-L6-v2 evaluation=stsb output=stsb.json
    embedlight-eval mteb model=all-MiniLM-L6-v2 tasks=[STS12,SciFact]       # MTEB 2 (hub data)
    embedlight-eval mteb model=all-MiniLM-L6-v2 local_tasks=en              # MTEB 2 on local files
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from embedlight.evaluation import run_evaluators
from embedlight.models.sentence_transformer import SentenceTransformerEncoder
from embedlight.utils.io import write_json

log = logging.getLogger("embedlight.cli.eval")


def build_evaluators(specs: DictConfig) -> list[Any]:
    """Instantiate ``{name: evaluator config}`` (resolved first, so nested configs keep their interpolations)."""
    resolved = OmegaConf.to_container(specs, resolve=True)
    return [
        instantiate({**spec, "name": spec.get("name") or key})
        for key, spec in resolved.items()
        if spec is not None
    ]


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Load ``cfg.model`` and run every evaluator in ``cfg.evaluation``."""
    if not cfg.get("evaluation"):
        raise ValueError("nothing to evaluate: pick evaluators, e.g. evaluation=bbc or evaluation=stsb")
    encoder = SentenceTransformerEncoder(cfg.model, cfg.get("device"), cfg.get("trust_remote_code", False))
    evaluators = build_evaluators(cfg.evaluation)
    metrics = run_evaluators(evaluators, encoder)
    for key, value in sorted(metrics.items()):
        print(f"{key:<40} {value:.4f}")
    if cfg.get("output"):
        write_json(cfg.output, {"model": cfg.model, "metrics": metrics})
    return metrics


def evaluate_mteb(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """``embedlight-eval mteb``: run MTEB 2 tasks (``cfg.tasks`` by name, ``cfg.local_tasks`` from files)."""
    from embedlight.evaluation.mteb_bridge import MTEBEncoder, run_mteb

    encoder = SentenceTransformerEncoder(cfg.model, cfg.get("device"), cfg.get("trust_remote_code", False))
    wrapped = MTEBEncoder(
        encoder,
        name=str(cfg.get("name") or cfg.model).rstrip("/").split("/")[-1],
        prompts=OmegaConf.to_container(cfg.prompts) if cfg.get("prompts") else None,
    )
    local = OmegaConf.to_container(cfg.local_tasks, resolve=True) if cfg.get("local_tasks") else {}
    results = run_mteb(wrapped, list(cfg.get("tasks") or []), local, cfg.batch_size, cfg.get("output_folder"))
    for task, scores in results.items():
        print(f"{task:<40} main_score={scores['main_score']:.4f}")
    if cfg.get("output"):
        write_json(cfg.output, {"model": cfg.model, "mteb": results})
    return results


@hydra.main(config_path="../conf", config_name="eval", version_base="1.3")
def _main_eval(cfg: DictConfig) -> None:
    evaluate(cfg)


@hydra.main(config_path="../conf", config_name="eval_mteb", version_base="1.3")
def _main_mteb(cfg: DictConfig) -> None:
    evaluate_mteb(cfg)


def main() -> None:
    """Entry point: ``embedlight-eval [mteb] key=value ...`` (the ``mteb`` word picks the MTEB config)."""
    if len(sys.argv) > 1 and sys.argv[1] == "mteb":
        del sys.argv[1]
        _main_mteb()
    else:
        _main_eval()


if __name__ == "__main__":
    main()
