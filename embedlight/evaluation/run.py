"""Evaluation as a library call: ``run(cfg)`` loads any saved model and runs the configured evaluators
(``embedlight-eval`` is a thin Hydra main over it; the settings are ``conf/eval.yaml``'s).

The model is loaded by :func:`embedlight.models.load.load_model`: an embedlight export, a
sentence-transformers folder, a run checkpoint (``.ckpt``), a bundled short name or a hub id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate

from embedlight.evaluation.base import run_evaluators
from embedlight.models.load import load_model
from embedlight.utils.outputs import guard_output, plain, write_summary


def build_evaluators(specs: Any) -> list[Any]:
    """Instantiate ``{name: evaluator config}`` (resolved first, so nested configs keep their interpolations)."""
    resolved = dict(plain(specs))
    return [
        instantiate({**spec, "name": spec.get("name") or key})
        for key, spec in resolved.items()
        if spec is not None
    ]


def configured_encoder(cfg: Mapping[str, Any], encoder: Any = None) -> Any:
    """``encoder`` if given (tests inject one), else the encoder of ``cfg.model`` loaded by
    :func:`~embedlight.models.load.load_model` (with ``cfg.device`` and ``cfg.trust_remote_code``)."""
    if encoder is not None:
        return encoder
    return load_model(cfg["model"], cfg.get("device"), bool(cfg.get("trust_remote_code", False))).encoder


def run(cfg: Mapping[str, Any], encoder: Any = None) -> dict[str, float]:
    """Load ``cfg.model`` and run every evaluator in ``cfg.evaluation``; returns ``{metric: value}`` (also
    printed, and written with the model name to ``cfg.output`` when set).

    Args:
        cfg: A composed ``eval`` config (``model``, ``evaluation``, ``output``, ``overwrite``, ...).
        encoder: A ``TextEncoder`` to evaluate instead of loading ``cfg.model`` (tests inject one).
    """
    if not cfg.get("evaluation"):
        raise ValueError("nothing to evaluate: pick evaluators, e.g. evaluation=bbc or evaluation=stsb")
    if cfg.get("output"):
        guard_output(cfg["output"], bool(cfg.get("overwrite", False)))
    metrics = run_evaluators(build_evaluators(cfg["evaluation"]), configured_encoder(cfg, encoder))
    lines = [f"{key:<40} {value:.4f}" for key, value in sorted(metrics.items())]
    write_summary(cfg.get("output"), {"model": cfg["model"], "metrics": metrics}, lines)
    return metrics
