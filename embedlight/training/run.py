"""Training as a library call: ``run(cfg)`` builds the module and data from a composed config, trains,
evaluates before/after and exports (``embedlight-train`` is a thin Hydra main over it).

Examples:
    embedlight-train experiment=quickstart
    embedlight-train experiment=quickstart data.train_files=[my.jsonl] paths.output_dir=runs/mine
    embedlight-train experiment=quickstart paths.output_dir=runs/mine resume=auto
    embedlight-train experiment=quickstart validation=bbc_val        # best checkpoint by val nDCG@10
    embedlight-train -m experiment=quickstart validation=bbc_val hparams_search=lr_temperature
    embedlight-train experiment=quickstart paths.output_dir=runs/mine overwrite=true
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

import lightning as L
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from embedlight.backbones.base import Backbone
from embedlight.callbacks import AtomicCheckpointIO, ExactResume, FiniteGuard, ValidationCallback
from embedlight.callbacks.finite import check_finite_weights
from embedlight.callbacks.validation import load_best_weights
from embedlight.evaluation import run_evaluators
from embedlight.models.build import build_backbone, build_embedder
from embedlight.registry import _load_all
from embedlight.strategies import build_strategy
from embedlight.training.loggers import finish as finish_loggers
from embedlight.training.loggers import log_config
from embedlight.training.run_dir import guard_output_dir

log = logging.getLogger("embedlight.train")
_load_all()  # registered components must be in the ConfigStore before Hydra composes


# config keys holding parts that build() injects into the module when they are set -> how to unset
# one on the command line (a preset writes `<key>: null`)
INJECTED = {"loss": "~loss", "pair_loss": "~loss@pair_loss"}


def _unset_hint(key: str, flag: str) -> str:
    return f"remove it ({flag} on the command line, `{key}: null` in a preset)"


def _init_params(target: str) -> tuple[set[str], bool]:
    """The ``__init__`` parameter names of ``target`` and whether it takes ``**kwargs``."""
    params = inspect.signature(get_class(target).__init__).parameters.values()
    return {p.name for p in params}, any(p.kind is p.VAR_KEYWORD for p in params)


def check_parts(cfg: DictConfig) -> None:
    """Refuse, before anything is built, a configured part the module's ``__init__`` does not take.

    A module takes either an ``embedder`` (``backbone`` + ``pooler`` + ``embedder`` settings) or a bare
    ``backbone``, and may take the parts in :data:`INJECTED`; one that takes ``**kwargs`` takes all. A part that is set but not taken would
    be dropped silently; it is an error naming the key instead.

    Raises:
        ValueError: Naming the config key and how to unset it.
    """
    target = cfg.module._target_
    takes, any_kwarg = _init_params(target)
    if any_kwarg:
        return
    if "embedder" in takes:
        if cfg.get("pooler") is None:
            raise ValueError(f"pooler is null, but module {target} takes an embedder: set pooler=<name>")
    elif "backbone" in takes:
        if cfg.get("pooler") is not None:
            raise ValueError(
                f"pooler: module {target} takes a bare backbone, no pooler, so the configured pooler "
                f"({cfg.pooler.get('_target_')}) would be ignored; {_unset_hint('pooler', '~pooler')}"
            )
    else:
        raise ValueError(f"module {target} takes neither an embedder nor a backbone")
    for key, flag in INJECTED.items():
        if cfg.get(key) is not None and key not in takes:
            raise ValueError(
                f"{key}: module {target} takes no {key}, so the configured {key} "
                f"({cfg[key].get('_target_')}) would be ignored; {_unset_hint(key, flag)}"
            )


def _data_kwargs(cfg: DictConfig, backbone: Backbone) -> dict[str, Any]:
    """What the datamodule takes from the backbone: its ``tokenizer`` and ``append_eos``, where declared.

    A backbone that appends [EOS] needs a datamodule that does too: one without ``append_eos`` is
    refused (its batches would lack the token the pooler reads).
    """
    target = cfg.data._target_
    takes, any_kwarg = _init_params(target)
    kwargs: dict[str, Any] = {}
    if any_kwarg or "tokenizer" in takes:
        kwargs["tokenizer"] = backbone.tokenizer
    if any_kwarg or "append_eos" in takes:
        kwargs["append_eos"] = backbone.append_eos
    elif backbone.append_eos:
        raise ValueError(
            f"data: {target} takes no append_eos, but backbone {type(backbone).__name__} appends [EOS] "
            "to every input (its pooler reads it); use a datamodule that appends it, or another backbone"
        )
    return kwargs


def resolve_resume(resume: str | None, output_dir: str) -> str | None:
    """``resume=auto`` -> ``<output_dir>/checkpoints/last.ckpt`` if it exists; a path -> that path."""
    if resume in (None, "", False):
        return None
    if resume in ("auto", True, "last"):
        last = os.path.join(output_dir, "checkpoints", "last.ckpt")
        if os.path.exists(last):
            log.info("resuming from %s", last)
            return last
        if resume == "last":
            raise FileNotFoundError(f"resume=last but {last} does not exist")
        return None
    if not os.path.exists(str(resume)):
        raise FileNotFoundError(f"resume={resume}: no such checkpoint")
    return str(resume)


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule]:
    """Instantiate the module (with its injected embedder or backbone, and loss) and the datamodule.

    The embedder comes from :func:`embedlight.models.build.build_embedder`, the one builder that
    loading a run's checkpoint uses too. Parts are checked against the module first
    (:func:`check_parts`): a configured part it does not take stops the run here.
    """
    check_parts(cfg)
    takes, any_kwarg = _init_params(cfg.module._target_)
    parts: dict[str, Any] = {}
    if any_kwarg or "embedder" in takes:
        parts["embedder"] = build_embedder(cfg)
        backbone = parts["embedder"].backbone
    else:
        backbone = parts["backbone"] = build_backbone(cfg)
    data_kwargs = _data_kwargs(cfg, backbone)  # checked before the module is built
    for key in INJECTED:
        if cfg.get(key) is not None:
            parts[key] = instantiate(cfg[key])
    module = instantiate(cfg.module, **parts)
    datamodule = instantiate(cfg.data, **data_kwargs)
    return module, datamodule


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train as configured; returns ``{"output_dir", "metrics", "export", "objective"}`` (objective: the
    monitored validation value of the exported weights, None without validation)."""
    export_from = cfg.get("export_from", "last")
    if export_from not in ("best", "last"):
        raise ValueError(f"export_from must be 'best' or 'last', got {export_from!r}")
    L.seed_everything(cfg.seed, workers=True)
    out = os.path.abspath(cfg.paths.output_dir)
    guard_output_dir(out, cfg.get("resume"), cfg.get("overwrite", False), include_config=False)
    os.makedirs(out, exist_ok=True)
    module, datamodule = build(cfg)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    callbacks += [ExactResume(), FiniteGuard()]  # every recipe: exact resume, stop on NaN/Inf
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=logger,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,
        strategy=build_strategy(cfg.trainer.get("strategy", "auto"), module),  # FSDP: from the backbone
    )
    log_config(trainer.loggers, cfg)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resolve_resume(cfg.get("resume"), out))
    result: dict[str, Any] = {"output_dir": out, "metrics": {}, "export": None, "objective": None}
    evals = [c for c in callbacks if hasattr(c, "results") and not isinstance(c, ValidationCallback)]
    if evals:
        result["metrics"] = evals[0].results
    vals = [c for c in callbacks if isinstance(c, ValidationCallback)]
    if vals:  # the monitored value of the exported weights: what a sweep optimises
        result["objective"] = vals[0].objective(export_from)
    if trainer.state.status != "finished":  # a fit that returned without finishing: keep any export
        log.warning("training did not finish (%s): no export written", trainer.state.status)
        finish_loggers(trainer.loggers)
        return result
    if trainer.is_global_zero and cfg.get("export", True) and hasattr(module, "export"):
        if export_from == "best":  # and score the exported weights on the evaluation tasks too
            load_best_weights(module, trainer.callbacks)
            if evals and evals[0].evaluators:
                evals[0].results["best"] = run_evaluators(evals[0].evaluators, module.embedder)
                evals[0].write()
        check_finite_weights(module, "export")
        result["export"] = module.export(os.path.join(out, "export"))
        log.info("exported to %s", result["export"])
    if trainer.is_global_zero and result["metrics"]:
        print(format_metrics(result["metrics"]))
    finish_loggers(trainer.loggers, result["export"])
    return result


def format_metrics(metrics: dict[str, dict[str, float]]) -> str:
    """A before/after table of every metric."""
    before, after = metrics.get("before", {}), metrics.get("after", {})
    keys = sorted(set(before) | set(after))
    if not keys:
        return ""
    width = max(len(k) for k in keys)
    lines = [f"{'metric':<{width}}  {'before':>8}  {'after':>8}  {'delta':>8}"]
    for k in keys:
        b, a = before.get(k), after.get(k)
        fmt = lambda v: f"{v:8.4f}" if v is not None else f"{'-':>8}"  # noqa: E731
        delta = f"{a - b:+8.4f}" if a is not None and b is not None else f"{'-':>8}"
        lines.append(f"{k:<{width}}  {fmt(b)}  {fmt(a)}  {delta}")
    return "\n".join(lines)
