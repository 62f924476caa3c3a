"""Exact mid-epoch resume: set every epoch's order, skip the batches already trained on, restore the RNG."""

from __future__ import annotations

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
    * The final step is always in ``last.ckpt``, in a state that ``resume=auto`` with a larger
      ``trainer.max_steps`` continues exactly. (``ModelCheckpoint`` writes ``last.ckpt`` at the end of
      training only if it wrote none before, so after a save at step 200 of 250 it kept step 200; and
      a save at the end of a ``max_steps`` run marks the epoch as finished, so a resumed run would
      skip the rest of it.)
    """

    def __init__(self) -> None:
        self._pending_rng: dict[str, Any] | None = None

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

    @staticmethod
    def _save_last(trainer: L.Trainer, at_batch_end: bool) -> None:
        """Write ``last.ckpt`` now unless it already holds this step (through ``ModelCheckpoint`` itself,
        so that it does not write an older state over it at the end of training)."""
        for cb in trainer.checkpoint_callbacks:
            if not isinstance(cb, ModelCheckpoint) or not cb.save_last or not trainer.global_step:
                continue
            if getattr(cb, "_last_global_step_saved", None) == trainer.global_step:
                continue
            every = getattr(cb, "_every_n_train_steps", 0)
            if at_batch_end and every and trainer.global_step % every == 0:
                continue  # it saves this step itself, right after this hook
            cb._save_last_checkpoint(
                trainer, cb._monitor_candidates(trainer)
            )  # every rank: may be collective

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # the last step of a max_steps run: save the mid-epoch state (a save at the end of training
        # would mark the epoch as finished, and resume=auto with more steps would skip its rest)
        if 0 < trainer.max_steps <= trainer.global_step:
            self._save_last(trainer, at_batch_end=True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save_last(trainer, at_batch_end=False)  # a run that ended with its last epoch

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return {"rng": state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_rng = state_dict.get("rng")
