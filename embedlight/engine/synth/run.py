"""Synthetic data as a library call: ``run(cfg)`` builds the chat backend and runs the two-step pipeline
(``embedlight-synth`` is a thin Hydra main over it; the settings are ``conf/synth.yaml``'s).

An output folder that already holds a synth run is refused unless ``resume=true`` (finished units are
skipped, new rows appended) or ``overwrite=true`` (its files are removed and the run starts over).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate

from embedlight.engine.synth.pipeline import OUTPUTS, SynthPipeline
from embedlight.utils.outputs import guard_output, plain, write_summary

log = logging.getLogger(__name__)

SUMMARY = "summary.json"


def run(cfg: Mapping[str, Any], backend: Any = None) -> dict[str, Any]:
    """Generate as ``cfg`` says; returns the summary (also written to ``<output_dir>/summary.json``).

    Args:
        cfg: A composed ``synth`` config (``backend``, ``output_dir``, ``families``, ...).
        backend: A chat backend to use instead of building ``cfg.backend`` (tests inject one).
    """
    out = cfg["output_dir"]
    files = [f"{name}.jsonl" for name in OUTPUTS] + [SUMMARY]
    if not cfg.get("resume", False):
        guard_output(
            out,
            bool(cfg.get("overwrite", False)),
            key="output_dir",
            found=[f for f in files if os.path.exists(os.path.join(out, f))],
            remove=[f for f in files if os.path.exists(os.path.join(out, f))],
            what="a synth run",
            alternatives="continue it with resume=true",
        )
    backend = backend if backend is not None else instantiate(cfg["backend"])
    pipeline = SynthPipeline(
        backend,
        out,
        families=list(cfg["families"]),
        languages=list(cfg["languages"]),
        tasks_per_family=cfg["tasks_per_family"],
        examples_per_task=cfg["examples_per_task"],
        lengths=plain(cfg["lengths"]),
        max_attempts=cfg["max_attempts"],
        backoff_s=cfg["backoff_s"],
        max_backoff_s=cfg["max_backoff_s"],
        requests_per_minute=cfg["requests_per_minute"],
        max_chars=cfg["max_chars"],
        retry_failed=cfg["retry_failed"],
        demonstration=cfg["demonstration"],
        seed=cfg["seed"],
    )
    summary = pipeline.run()
    log.info("synth: %s", summary)
    line = f"wrote {summary['totals']['rows']} rows to {pipeline.paths['train']}; this run: {summary['this_run']}"
    return write_summary(os.path.join(out, SUMMARY), summary, line)
