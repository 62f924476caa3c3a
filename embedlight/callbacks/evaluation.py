"""Evaluate before training (baseline) and after, and write ``metrics.json``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from embedlight.evaluation import Evaluator, run_evaluators
from embedlight.utils.io import write_json

log = logging.getLogger(__name__)


class EvaluationCallback(L.Callback):
    """Runs evaluators on the module's ``embedder`` on global rank 0.

    Args:
        evaluators: Retrieval / STS / ... evaluators, as objects or as Hydra configs (a list or a
            ``{name: config}`` mapping). Configs are instantiated at fit start, after the datamodule's
            ``prepare_data`` has built any data they read.
        output_path: Where ``{"before": ..., "after": ...}`` is written (atomically).
        before: Evaluate at fit start (skipped when resuming: the baseline is in the checkpoint).
        after: Evaluate when training ends.
        every_n_steps: Also evaluate every N optimizer steps (results under ``step_<N>``); 0 = never.
    """

    def __init__(
        self,
        evaluators: Sequence[Any] | Mapping[str, Any] | None = None,
        output_path: str | None = None,
        before: bool = True,
        after: bool = True,
        every_n_steps: int = 0,
    ) -> None:
        if isinstance(
            evaluators, Mapping
        ):  # {name: config}: the key names the evaluator unless it has a name
            evaluators = [_named(k, v) for k, v in evaluators.items() if v is not None]
        self._specs = list(evaluators or [])
        self._evaluators: list[Evaluator] | None = None
        self.output_path = output_path
        self.before = before
        self.after = after
        self.every_n_steps = every_n_steps
        self.results: dict[str, dict[str, float]] = {}
        self._done: set[str] = set()  # phases evaluated (on every rank; results live on rank 0)

    @property
    def evaluators(self) -> list[Evaluator]:
        """The evaluator objects (configs are instantiated on first access)."""
        if self._evaluators is None:
            self._evaluators = [
                instantiate(s) if isinstance(s, (Mapping, DictConfig)) else s for s in self._specs
            ]
        return self._evaluators

    def _run(self, trainer: L.Trainer, pl_module: L.LightningModule, phase: str) -> None:
        # every rank records the phase, so that the decisions below are the same on all ranks (only
        # rank 0 fills `results`); a rank that skipped a barrier the others entered would hang the run
        self._done.add(phase)
        if trainer.is_global_zero and self._specs:
            log.info("evaluation (%s training)", phase)
            self.results[phase] = evaluate_dims(self.evaluators, pl_module.embedder)
            for logger in trainer.loggers:
                logger.log_metrics(
                    {f"eval_{phase}/{k}": v for k, v in self.results[phase].items()}, step=trainer.global_step
                )
            self.write()
        trainer.strategy.barrier("evaluation")

    def write(self) -> None:
        """Write the results gathered so far to ``output_path``."""
        if not self.output_path:
            return
        write_json(self.output_path, self.results)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.before and "before" not in self._done:
            self._run(trainer, pl_module, "before")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # called once per micro-batch: with accumulate_grad_batches > 1 the same global_step recurs,
        # and before the first optimizer step it is 0; decide on values equal on every rank
        step = trainer.global_step
        if (
            self.every_n_steps
            and step > 0
            and step % self.every_n_steps == 0
            and f"step_{step}" not in self._done
        ):
            self._run(trainer, pl_module, f"step_{step}")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.after:
            self._run(trainer, pl_module, "after")

    def state_dict(self) -> dict[str, Any]:
        return {"results": self.results, "done": sorted(self._done)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.results = dict(state_dict.get("results", {}))
        self._done = set(state_dict.get("done", self.results))


def evaluate_dims(evaluators: Sequence[Evaluator], embedder: Any) -> dict[str, float]:
    """Run the evaluators on the full embedding and on each trained Matryoshka prefix.

    Prefix results are keyed ``<evaluator>/dim<d>/<metric>`` (e.g. ``bbc/dim128/ndcg@10``); the full
    vector keeps the plain ``<evaluator>/<metric>`` keys.
    """
    results = run_evaluators(evaluators, embedder)
    for dim in getattr(embedder, "eval_dims", list)():
        for key, value in run_evaluators(evaluators, embedder.truncated(dim)).items():
            name, _, metric = key.partition("/")
            results[f"{name}/dim{dim}/{metric}"] = value
    return results


def _named(key: str, spec: Any) -> Any:
    if isinstance(spec, (Mapping, DictConfig)) and spec.get("name") is None:
        spec = {**dict(spec), "name": key}
    return spec
