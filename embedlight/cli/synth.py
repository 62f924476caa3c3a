"""``embedlight-synth``: brainstorm tasks, then generate (query, positive, hard negative) examples.

Examples:
    embedlight-synth output_dir=synth_out                       # local SmolLM2-135M-Instruct
    OPENAI_API_KEY=... embedlight-synth synth_backend=openai backend.model=gpt-4o-mini \\
        output_dir=synth_out tasks_per_family=20 examples_per_task=10 requests_per_minute=60
    embedlight-train experiment=quickstart data=jsonl data.train_files=[synth_out/train.jsonl]

Rerunning the same command resumes: finished units are skipped and new rows appended.
"""

from __future__ import annotations

import logging

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from embedlight.engine.synth.pipeline import SynthPipeline

log = logging.getLogger("embedlight.engine.synth")


def synthesize(cfg: DictConfig) -> dict:
    """Build the backend and run the pipeline as configured; returns the summary."""
    backend = instantiate(cfg.backend)
    pipeline = SynthPipeline(
        backend,
        cfg.output_dir,
        families=list(cfg.families),
        languages=list(cfg.languages),
        tasks_per_family=cfg.tasks_per_family,
        examples_per_task=cfg.examples_per_task,
        lengths=OmegaConf.to_container(cfg.lengths),
        max_attempts=cfg.max_attempts,
        backoff_s=cfg.backoff_s,
        max_backoff_s=cfg.max_backoff_s,
        requests_per_minute=cfg.requests_per_minute,
        max_chars=cfg.max_chars,
        retry_failed=cfg.retry_failed,
        demonstration=cfg.demonstration,
        seed=cfg.seed,
    )
    summary = pipeline.run()
    log.info("synth: %s", summary)
    print(
        f"wrote {summary['totals']['rows']} rows to {pipeline.paths['train']}; this run: {summary['this_run']}"
    )
    return summary


@hydra.main(config_path="../conf", config_name="synth", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    synthesize(cfg)


if __name__ == "__main__":
    main()
