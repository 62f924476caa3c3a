"""``embedlight-synth``: brainstorm tasks, then generate (query, positive, hard negative) examples.

Examples:
    embedlight-synth output_dir=synth_out                       # local SmolLM2-135M-Instruct
    OPENAI_API_KEY=... embedlight-synth synth_backend=openai backend.model=gpt-4o-mini \\
        output_dir=synth_out tasks_per_family=20 examples_per_task=10 requests_per_minute=60
    embedlight-synth output_dir=synth_out resume=true           # continue: finished units are skipped
    embedlight-train experiment=quickstart data=jsonl data.train_files=[synth_out/train.jsonl]

An output folder that holds a synth run is refused unless ``resume=true`` (finished units are skipped
and new rows appended) or ``overwrite=true`` (its files are removed first). The library call is
:func:`embedlight.engine.synth.run.run`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.engine.synth.run import run


@hydra.main(config_path="../conf", config_name="synth", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point over :func:`embedlight.engine.synth.run.run`."""
    run(cfg)


if __name__ == "__main__":
    main()
