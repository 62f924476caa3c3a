"""Evaluation during training keeps data-parallel ranks at the same barriers (gradient accumulation)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from embedlight.callbacks import EvaluationCallback


class _Const:
    name = "const"

    def __call__(self, encoder):
        return {"score": 1.0}


def _micro_batch_steps(n_batches: int, accumulate: int) -> list[int]:
    """``trainer.global_step`` as seen in ``on_train_batch_end`` of each micro-batch."""
    return [(i + 1) // accumulate for i in range(n_batches)]


def _barriers(is_zero: bool, steps: list[int], every: int) -> list[tuple[int, str]]:
    calls: list[tuple[int, str]] = []
    state = {"step": 0}
    strategy = SimpleNamespace(barrier=lambda name: calls.append((state["step"], name)))
    trainer = SimpleNamespace(is_global_zero=is_zero, strategy=strategy, loggers=[], global_step=0)
    module = SimpleNamespace(embedder=None)
    cb = EvaluationCallback([_Const()], before=True, after=True, every_n_steps=every)
    cb.on_fit_start(trainer, module)
    for i, step in enumerate(steps):
        trainer.global_step = state["step"] = step
        cb.on_train_batch_end(trainer, module, None, None, i)
    cb.on_train_end(trainer, module)
    return calls, cb


@pytest.mark.parametrize("accumulate", [1, 2, 3])
def test_every_rank_meets_the_same_barriers(accumulate):
    steps = _micro_batch_steps(12, accumulate)
    zero, cb = _barriers(True, steps, every=2)
    other, _ = _barriers(False, steps, every=2)
    assert zero == other  # same barriers, at the same steps, on rank 0 and on the others
    expected = sorted({s for s in steps if s > 0 and s % 2 == 0})
    assert [s for s, _ in zero[1:-1]] == expected  # once per evaluated step, never at step 0
    assert set(cb.results) == {"before", "after", *(f"step_{s}" for s in expected)}


def test_resumed_callback_does_not_repeat_phases():
    _, cb = _barriers(True, _micro_batch_steps(4, 2), every=1)
    fresh = EvaluationCallback([_Const()], every_n_steps=1)
    fresh.load_state_dict(cb.state_dict())
    assert fresh._done == {"before", "after", "step_1", "step_2"}
