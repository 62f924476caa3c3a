"""Exact mid-epoch resume: set every epoch's order, skip the batches already trained on, restore the RNG."""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint


def _epoch_aware(loader: Any) -> list[Any]:
    """The loader's batch sampler, sampler and dataset (deduplicated): whatever may have ``set_epoch``."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    found: dict[int, Any] = {}
    for obj in (
        batch_sampler,
        getattr(batch_sampler, "sampler", None),
        getattr(loader, "sampler", None),
        getattr(loader, "dataset", None),
    ):
        if obj is not None and callable(getattr(obj, "set_epoch", None)):
            found[id(obj)] = obj
    return list(found.values())


class ExactResume(L.Callback):
    """Makes a resumed run see the same batches and random masks as an uninterrupted one.

    * Every epoch, ``set_epoch(epoch)`` reaches the batch sampler, the sampler and the dataset.
      (Lightning itself only calls it on ``loader.sampler`` and ``loader.batch_sampler.sampler``, so a
      custom batch sampler or an iterable dataset would otherwise replay epoch 0's order forever.)
    * On a mid-epoch restart the batches the checkpoint had completed are skipped: by the batch
      sampler's ``skip_batches(n)`` (free: the order is a pure function of ``(seed, epoch)``) or else
      by the loader's ``skip_batches(n)`` (:class:`~embedlight.data.loader.ResumableDataLoader`
      replays and drops them: exact for streaming data, at the cost of reading them again). A loader
      that can do neither is refused with an error instead of silently retraining those batches.
    * torch's RNG is restored right before the first resumed batch (dropout, masks).
    * The final step is always in ``last.ckpt``. (``ModelCheckpoint`` writes ``last.ckpt`` at the end
      of training only if it wrote none before: after a save at step 200 of 250, or in a resumed run,
      ``last.ckpt`` would keep an older step, and ``resume=auto`` with a larger ``max_steps`` would
      silently drop the steps after it.)
    """

    def __init__(self) -> None:
        self._pending_rng: dict[str, Any] | None = None
        self._saved_step: int | None = None

    @staticmethod
    def _set_epoch(trainer: L.Trainer) -> None:
        # before the epoch's real iterator starts (ResumableDataLoader defers it to the first batch)
        for obj in _epoch_aware(trainer.train_dataloader):
            obj.set_epoch(trainer.fit_loop.epoch_progress.current.processed)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._set_epoch(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # runs after the checkpoint restored the loops and before the epoch's iterator is created;
        # Lightning skips on_train_epoch_start when it restarts mid-epoch, so the epoch is set here too
        self._set_epoch(trainer)
        loop = trainer.fit_loop.epoch_loop
        if not (trainer.fit_loop.restarting or loop.restarting):
            return
        # a checkpoint is written in on_train_batch_end: `processed` counts the batches already trained on
        done = loop.batch_progress.current.processed
        if done:
            dl = trainer.train_dataloader
            sampler = getattr(dl, "batch_sampler", None)
            if callable(getattr(sampler, "skip_batches", None)):
                sampler.skip_batches(done)
            elif callable(getattr(dl, "skip_batches", None)):
                dl.skip_batches(done)
            else:
                raise RuntimeError(
                    f"cannot resume exactly: the checkpoint is {done} batches into epoch "
                    f"{trainer.current_epoch}, and the training loader ({type(dl).__name__}, batch sampler "
                    f"{type(sampler).__name__}) cannot skip them, so they would be trained on twice. Give "
                    "the batch sampler a skip_batches(n) method or use "
                    "embedlight.data.loader.ResumableDataLoader."
                )
        self._restart_fetcher(trainer)

    @staticmethod
    def _restart_fetcher(trainer: L.Trainer) -> None:
        """Lightning prefetches a batch of a loader without a length (streaming) while it sets up, before
        the checkpoint's epoch and skip are known here; start that iterator again so that both apply."""
        fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
        if fetcher is not None and getattr(fetcher, "batches", None):
            iter(fetcher)  # drops the prefetched batch, creates a new iterator, prefetches again

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending_rng is not None:
            torch.set_rng_state(self._pending_rng["cpu"])
            if "cuda" in self._pending_rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(self._pending_rng["cuda"])
            self._pending_rng = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._saved_step = trainer.global_step

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for cb in trainer.checkpoint_callbacks:
            if isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath and trainer.global_step:
                if self._saved_step != trainer.global_step:  # every rank: saving may be collective
                    trainer.save_checkpoint(
                        os.path.join(cb.dirpath, cb.CHECKPOINT_NAME_LAST + cb.FILE_EXTENSION)
                    )
                return

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return {"rng": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_rng = state_dict.get("rng")
