"""MTEB 2 as a library call: ``run(cfg)`` runs mteb tasks by name and/or local files registered as mteb
tasks (``embedlight-mteb`` is a thin Hydra main over it; the settings are ``conf/mteb.yaml``'s).

This module imports mteb (an optional dependency: ``pip install embedlight[mteb]``) only when run.
``output_folder`` is mteb's own result cache (a task's result there is replaced by each run, as mteb
does); ``output`` is this command's summary and is guarded like every command's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from embedlight.evaluation.run import configured_encoder
from embedlight.utils.outputs import guard_output, plain, write_summary


def run(cfg: Mapping[str, Any], encoder: Any = None) -> dict[str, dict[str, float]]:
    """Run the configured mteb tasks (``cfg.tasks`` by name, ``cfg.local_tasks`` from files); returns
    ``{task: scores}`` (also printed, and written with the model name to ``cfg.output`` when set).

    Args:
        cfg: A composed ``mteb`` config (``model``, ``tasks``, ``local_tasks``, ``prompts``, ...).
        encoder: A ``TextEncoder`` to evaluate instead of loading ``cfg.model`` (tests inject one).
    """
    from embedlight.evaluation.mteb_bridge import MTEBEncoder, run_mteb

    if cfg.get("output"):
        guard_output(cfg["output"], bool(cfg.get("overwrite", False)))
    wrapped = MTEBEncoder(
        configured_encoder(cfg, encoder),
        name=str(cfg.get("name") or cfg["model"]).rstrip("/").split("/")[-1],
        prompts=plain(cfg["prompts"]) if cfg.get("prompts") else None,
    )
    local = plain(cfg["local_tasks"]) if cfg.get("local_tasks") else {}
    results = run_mteb(
        wrapped, list(cfg.get("tasks") or []), local, int(cfg["batch_size"]), cfg.get("output_folder")
    )
    lines = [f"{task:<40} main_score={scores['main_score']:.4f}" for task, scores in results.items()]
    write_summary(cfg.get("output"), {"model": cfg["model"], "mteb": results}, lines)
    return results
