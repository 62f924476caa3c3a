"""Preemption callback: the signal is only recorded; checkpoint + exit happen at a step boundary."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from embedlight.callbacks import Preempted, Preemption


def _trainer(tmp_path, saved):
    trainer = SimpleNamespace(global_step=0, world_size=1, callbacks=[], default_root_dir=str(tmp_path))
    trainer.save_checkpoint = lambda path: saved.append((path, trainer.global_step))
    return trainer


def test_signal_waits_for_the_optimizer_step_then_saves_and_exits(tmp_path):
    saved: list = []
    trainer = _trainer(tmp_path, saved)
    outer_calls: list = []
    before = signal.signal(signal.SIGUSR1, lambda s, f: outer_calls.append(s))  # e.g. submitit's
    try:
        cb = Preemption()
        cb.setup(trainer, None, "fit")
        cb.on_train_start(trainer, None)
        assert signal.getsignal(signal.SIGUSR1) == cb._handle
        cb.on_train_batch_start(trainer, None, None, 0)
        os.kill(os.getpid(), signal.SIGUSR1)
        cb.on_train_batch_end(trainer, None, None, None, 0)  # accumulating: global_step unchanged
        assert saved == [] and outer_calls == []
        cb.on_train_batch_start(trainer, None, None, 1)
        trainer.global_step = 1  # the optimizer stepped
        with pytest.raises(Preempted) as err:
            cb.on_train_batch_end(trainer, None, None, None, 1)
        assert err.value.code == 128 + signal.SIGUSR1
        assert saved == [(os.path.join(str(tmp_path), "checkpoints", "last.ckpt"), 1)]
        assert outer_calls == [signal.SIGUSR1]  # handed on after the checkpoint
        assert signal.getsignal(signal.SIGUSR1) is not cb._handle  # restored
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_no_signal_no_checkpoint(tmp_path):
    saved: list = []
    trainer = _trainer(tmp_path, saved)
    cb = Preemption(signals=["SIGTERM"])
    cb.setup(trainer, None, "fit")
    cb.on_train_start(trainer, None)
    try:
        for step in range(3):
            cb.on_train_batch_start(trainer, None, None, step)
            trainer.global_step = step + 1
            cb.on_train_batch_end(trainer, None, None, None, step)
        assert saved == []
    finally:
        cb.on_train_end(trainer, None)
    assert signal.getsignal(signal.SIGTERM) is not cb._handle
