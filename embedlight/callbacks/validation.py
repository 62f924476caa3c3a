"""Validation on a held-out split during training: best checkpoint and early stopping.

Why callbacks and not a ``LightningModule.validation_step`` loop: the metrics that matter for an
embedding model (nDCG@10 over a whole corpus, a Spearman correlation over a whole set) are not means of
per-batch values, so a batched validation loop would have to gather every embedding and score them at
the end anyway; the evaluators already do that for any module that has an ``embedder``, without each
module (contrastive, RetroMAE, ICL) growing a validation step.

:class:`ValidationCallback` runs the evaluators every N optimizer steps and at the last step, and puts
their metrics into ``trainer.callback_metrics`` as ``val/<evaluator>/<metric>`` plus ``val/step`` (the
step they were measured at), the place where Lightning's checkpoint and early-stopping logic reads
metrics. :class:`BestCheckpoint` and :class:`ValidationEarlyStopping` act in ``on_train_batch_end``
right after a validation (``val/step == global_step``). Lightning runs every ``ModelCheckpoint`` after
all other callbacks; the early stopper checks at setup that it comes after the validation callback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from embedlight.callbacks.evaluation import EvaluationCallback
from embedlight.evaluation import run_evaluators

log = logging.getLogger(__name__)

STEP_KEY = "val/step"


def validated_now(trainer: L.Trainer) -> bool:
    """Whether a validation ran at the current optimizer step."""
    step = trainer.callback_metrics.get(STEP_KEY)
    return step is not None and int(step) == trainer.global_step


class ValidationCallback(EvaluationCallback):
    """Runs evaluators on a held-out split every ``every_n_steps`` optimizer steps and at the last step.

    Metrics are logged (``val/<name>/<metric>``) to every logger, written to ``output_path`` as
    ``{"step_<N>": {...}}`` and published in ``trainer.callback_metrics``. Evaluation runs on global
    rank 0; its results are broadcast so that every rank sees the same monitored value (the checkpoint
    and early-stopping decisions are collective under DDP).

    Args:
        evaluators: As for :class:`EvaluationCallback` (configs are built at fit start).
        output_path: JSON file of every validation's metrics.
        every_n_steps: Validate every N optimizer steps (and always at the last one); 0 = last only.
        monitor: The metric the best checkpoint, early stopping and sweeps use, e.g.
            ``val/bbc_val/ndcg@10``; checked against the first validation's keys.
        mode: ``max`` or ``min``: which direction is better.
    """

    def __init__(
        self,
        evaluators: Sequence[Any] | Mapping[str, Any] | None = None,
        output_path: str | None = None,
        every_n_steps: int = 50,
        monitor: str | None = None,
        mode: str = "max",
    ) -> None:
        super().__init__(evaluators, output_path, before=False, after=False, every_n_steps=every_n_steps)
        if mode not in ("max", "min"):
            raise ValueError(f"validation mode must be 'max' or 'min', got {mode!r}")
        self.monitor = monitor
        self.mode = mode
        self._seen_step = -1

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._specs and self.monitor is None:
            log.warning("validation is configured but `monitor` is not: no best checkpoint or objective")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step == self._seen_step or step == 0:  # a gradient-accumulation micro-batch
            return
        self._seen_step = step
        due = bool(self.every_n_steps) and step % self.every_n_steps == 0
        if self._specs and (due or step >= trainer.estimated_stepping_batches):
            self.validate(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # the last step was validated in on_train_batch_end

    def validate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """Evaluate now, publish ``val/...`` metrics, and return them (un-prefixed keys)."""
        step = trainer.global_step
        metrics = None
        if trainer.is_global_zero:
            log.info("validation at step %d", step)
            metrics = run_evaluators(self.evaluators, pl_module.embedder)
        metrics = trainer.strategy.broadcast(metrics, src=0)
        self.results[f"step_{step}"] = metrics
        published = {f"val/{k}": v for k, v in metrics.items()}
        if self.monitor is not None and self.monitor not in published:
            raise KeyError(
                f"monitor={self.monitor!r} is not a validation metric; they are {sorted(published)}"
            )
        for key, value in {**published, STEP_KEY: step}.items():
            trainer.callback_metrics[key] = torch.tensor(float(value))
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(published, step=step)
            self.write()
        return metrics

    def objective(self, which: str = "best") -> float | None:
        """The monitored value: the best over all validations, or the last one (``which="last"``)."""
        if self.monitor is None or not self.results:
            return None
        key = self.monitor.removeprefix("val/")
        series = sorted((int(p.removeprefix("step_")), m[key]) for p, m in self.results.items())
        if which == "last":
            return series[-1][1]
        pick = max if self.mode == "max" else min
        return pick(v for _, v in series)


class BestCheckpoint(ModelCheckpoint):
    """Keeps the ``save_top_k`` best checkpoints by ``monitor``, checked right after each validation.

    A ``ModelCheckpoint`` that saves on no schedule of its own (no step, epoch or time trigger): it is
    triggered by :class:`ValidationCallback`. Inert when ``monitor`` is None. Weights only by default
    (the export needs no optimizer state).
    """

    def __init__(
        self,
        dirpath: str | None = None,
        monitor: str | None = None,
        mode: str = "max",
        filename: str = "best",
        save_top_k: int = 1,
        save_weights_only: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            dirpath=dirpath,
            monitor=monitor,
            mode=mode,
            filename=filename,
            save_top_k=save_top_k,
            save_weights_only=save_weights_only,
            save_last=False,
            every_n_epochs=0,
            save_on_train_epoch_end=False,
            enable_version_counter=False,
            **kwargs,
        )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.monitor is None or not validated_now(trainer) or self._should_skip_saving_checkpoint(trainer):
            return
        self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # no Lightning validation loop: see on_train_batch_end


class ValidationEarlyStopping(EarlyStopping):
    """Stops training after ``patience`` validations without improvement of ``monitor``.

    Lightning's ``EarlyStopping`` checked right after each :class:`ValidationCallback` run instead of at
    validation-loop or epoch ends. Inert when ``patience`` or ``monitor`` is None.
    """

    def __init__(
        self, monitor: str | None = None, patience: int | None = None, mode: str = "max", **kwargs: Any
    ):
        super().__init__(monitor=monitor or "", patience=patience or 0, mode=mode, **kwargs)
        self.enabled = monitor is not None and patience is not None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if not self.enabled:
            return
        order = [type(c) for c in trainer.callbacks]
        if ValidationCallback not in order or order.index(ValidationCallback) > trainer.callbacks.index(self):
            raise ValueError(
                "ValidationEarlyStopping needs a ValidationCallback before it in the callback list "
                "(callbacks.validation before callbacks.early_stopping)"
            )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.enabled and validated_now(trainer) and not self._should_skip_check(trainer):
            self._run_early_stopping_check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass


def load_best_weights(module: L.LightningModule, callbacks: Sequence[L.Callback]) -> str:
    """Load the best checkpoint's weights (``weights_only=True``) into ``module``; returns its path.

    Raises:
        FileNotFoundError: If no :class:`BestCheckpoint` saved anything (no validation or no monitor).
    """
    paths = [c.best_model_path for c in callbacks if isinstance(c, BestCheckpoint) and c.best_model_path]
    if not paths:
        raise FileNotFoundError(
            "export_from=best but there is no best checkpoint: configure validation (e.g. validation=bbc_val) "
            "and monitor, or use export_from=last"
        )
    state = torch.load(paths[0], map_location="cpu", weights_only=True)
    module.load_state_dict(state["state_dict"])
    log.info("loaded the best checkpoint %s for export", paths[0])
    return paths[0]
