"""Preemption: on SIGTERM or SIGUSR1, finish the step, write ``last.ckpt`` and exit non-zero.

A scheduler sends SIGTERM before it kills a job (SLURM after ``scancel``, on preemption or at the time
limit; Kubernetes on eviction), and SLURM sends SIGUSR1 ``N`` seconds before the time limit when the
job asks for it (``#SBATCH --signal=USR1@120``). Lightning's own handler only stops the loop (exit code
0, no checkpoint), so this callback replaces it while training runs:

1. The signal handler only records the signal (safe at any point of a step).
2. At the next optimizer-step boundary (never inside a gradient-accumulation window) the ranks agree
   on it with one ``all_reduce`` (a scheduler may signal only one process), and every rank joins
   ``trainer.save_checkpoint`` of ``<checkpoint dir>/last.ckpt``, written atomically by
   :class:`~embedlight.callbacks.AtomicCheckpointIO`.
3. If something outside the trainer handled the signal before training started (submitit, which the
   Hydra submitit launcher runs jobs under, requeues on SIGUSR2), that handler is called now, after
   the checkpoint. Then every rank raises :class:`Preempted`, a ``SystemExit`` with code
   ``128 + signal``: 143 for SIGTERM, 138 for SIGUSR1, 140 for SIGUSR2. Training stops there: no
   "after" evaluation, no export.

``resume=auto`` then continues from ``last.ckpt`` exactly (:class:`~embedlight.callbacks.ExactResume`
skips the batches already trained on). Under SLURM, Lightning's ``auto_requeue`` handler (which saves an
``hpc_ckpt`` from inside the signal handler, mid-step) is replaced too; ``scripts/slurm/train.sbatch``
requeues the job itself when the run exits with 138.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)

SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


class Preempted(SystemExit):
    """Raised on every rank after the preemption checkpoint is written; exit code ``128 + signum``."""

    def __init__(self, signum: int, path: str) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.path = path


def last_checkpoint_path(trainer: L.Trainer) -> str:
    """``last.ckpt`` in the ModelCheckpoint's folder (``resume=auto`` reads it), or under the root dir."""
    for cb in trainer.callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.dirpath:
            return os.path.join(cb.dirpath, cb.CHECKPOINT_NAME_LAST + cb.FILE_EXTENSION)
    return os.path.join(trainer.default_root_dir, "checkpoints", "last.ckpt")


class Preemption(L.Callback):
    """Checkpoint and exit non-zero on a termination signal (see the module docstring).

    Args:
        signals: Signal names to handle (default SIGTERM, SIGUSR1 (``sbatch --signal``) and SIGUSR2
            (submitit's timeout signal)).
    """

    def __init__(self, signals: Sequence[str] = SIGNALS) -> None:
        self.signals = [getattr(signal, name) for name in signals]
        self._received = 0
        self._previous: dict[int, Any] = {}
        self._outer: dict[int, Any] = {}
        self._step_before = -1

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._received:
            self._received = signum

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # before Lightning installs its handlers: what the process had (SIG_DFL, or e.g. submitit's)
        self._outer = {s: signal.getsignal(s) for s in self.signals}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning installed its handlers just before this hook; ours replace them while training runs
        for signum in self.signals:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                log.warning("preemption: cannot handle signal %s outside the main thread", signum)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._step_before = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step == self._step_before:  # inside an accumulation window: not a boundary
            return
        signum = self._received
        if trainer.world_size > 1:  # a scheduler may signal one process only: all ranks agree
            flag = torch.tensor([signum], dtype=torch.int64, device=trainer.strategy.root_device)
            signum = int(trainer.strategy.reduce(flag, reduce_op="max").item())
        if not signum:
            return
        path = last_checkpoint_path(trainer)
        log.warning(
            "preemption: signal %d at step %d; writing %s and exiting with code %d",
            signum,
            trainer.global_step,
            path,
            128 + signum,
        )
        trainer.save_checkpoint(path)
        self._restore()
        outer = self._outer.get(signum)
        if callable(outer):  # e.g. submitit: requeue the job now that the checkpoint is written
            outer(signum, None)
        raise Preempted(signum, path)
