"""``embedlight-mteb``: run MTEB 2 tasks (by name, data from the hub) and/or local files registered as
mteb tasks, on any saved model.

Examples:
    embedlight-mteb model=all-MiniLM-L6-v2 tasks=[STS12,SciFact] output_folder=mteb_results   # hub data
    embedlight-mteb model=all-MiniLM-L6-v2 local_tasks=en output=mteb_local.json               # offline
    embedlight-mteb model=outputs/demo/export '+local_tasks.MySTS={type: sts, path: my.jsonl}'
    embedlight-mteb model=... tasks=[SciFact] '+prompts={SciFact-query: "Given a claim, find evidence: "}'

Needs ``pip install embedlight[mteb]``. An existing ``output`` is refused unless ``overwrite=true``;
``output_folder`` is mteb's own result cache. The library call is :func:`embedlight.evaluation.mteb_run.run`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from embedlight.evaluation.mteb_run import run


@hydra.main(config_path="../conf", config_name="mteb", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point over :func:`embedlight.evaluation.mteb_run.run`."""
    run(cfg)


if __name__ == "__main__":
    main()
