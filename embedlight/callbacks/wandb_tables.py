"""Evaluation and validation scores as ``wandb.Table`` objects (no-op without a wandb logger)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L

log = logging.getLogger(__name__)

PHASE_ORDER = ("before", "after", "best")


def score_rows(results: dict[str, dict[str, float]]) -> tuple[list[str], list[list[Any]]]:
    """``{phase: {"task/metric": v}}`` -> columns ``task, metric, <phases...>[, delta]`` and one row per
    task metric; ``delta`` = after - before when both phases exist. Step phases (``step_N``) are left
    out: they are curves, not table columns."""
    phases = [p for p in PHASE_ORDER if p in results]
    keys = sorted({k for p in phases for k in results[p]})
    delta = "before" in phases and "after" in phases
    columns = ["task", "metric", *phases, *(["delta"] if delta else [])]
    rows = []
    for key in keys:
        task, _, metric = key.rpartition("/")
        values = [results[p].get(key) for p in phases]
        row = [task, metric, *values]
        if delta:
            b, a = results["before"].get(key), results["after"].get(key)
            row.append(a - b if a is not None and b is not None else None)
        rows.append(row)
    return columns, rows


def validation_rows(results: dict[str, dict[str, float]]) -> tuple[list[str], list[list[Any]]]:
    """``{"step_N": {"task/metric": v}}`` -> columns ``step, task, metric, value``, in step order."""
    rows = []
    for phase, metrics in sorted(results.items(), key=lambda kv: int(kv[0].removeprefix("step_"))):
        for key, value in sorted(metrics.items()):
            task, _, metric = key.rpartition("/")
            rows.append([int(phase.removeprefix("step_")), task, metric, value])
    return ["step", "task", "metric", "value"], rows


class WandbEvalTables(L.Callback):
    """At fit end, logs ``eval/scores`` (per task metric: before, after, delta) and ``val/scores`` (every
    validation) as ``wandb.Table`` objects, and the final scores into the run summary.

    Runs on global rank 0 and only when a ``WandbLogger`` is attached. The ``best`` phase (the test
    scores of the best checkpoint, with export_from=best) is computed after fit and is in metrics.json.
    """

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.log_tables(trainer)

    def log_tables(self, trainer: L.Trainer) -> None:
        """Log the tables of every evaluation/validation callback to every wandb logger."""
        from lightning.pytorch.loggers import WandbLogger

        wandbs = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not trainer.is_global_zero or not wandbs:
            return
        from embedlight.callbacks.evaluation import EvaluationCallback
        from embedlight.callbacks.validation import ValidationCallback

        tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
        summary: dict[str, float] = {}
        for cb in trainer.callbacks:
            if isinstance(cb, ValidationCallback) and cb.results:
                tables["val/scores"] = validation_rows(cb.results)
            elif isinstance(cb, EvaluationCallback) and cb.results:
                tables["eval/scores"] = score_rows(cb.results)
                for phase in PHASE_ORDER:
                    summary.update({f"eval_{phase}/{k}": v for k, v in cb.results.get(phase, {}).items()})
        for logger in wandbs:
            for key, (columns, rows) in tables.items():
                logger.log_table(key=key, columns=columns, data=rows)
            logger.experiment.summary.update(summary)
