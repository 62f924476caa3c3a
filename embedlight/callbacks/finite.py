"""Stop a run at the first non-finite loss, gradient or weight, before anything of that step is saved.

A NaN or Inf loss (a temperature of 1e-45, a diverging learning rate) would otherwise train on: the
optimizer turns every weight into NaN, ``ModelCheckpoint`` overwrites ``last.ckpt`` with them and the
export follows. :class:`FiniteGuard` checks

* the loss of every micro-batch (recorded in ``on_before_backward``, without a host sync) and every
  gradient, right before the optimizer step (``on_before_optimizer_step``: one host sync per optimizer
  step); the step is not taken, so the weights stay those of the last good step;
* every tensor of a checkpoint before it is written (``on_save_checkpoint``), which catches weights
  that a finite gradient pushed to Inf (an absurd learning rate);

and raises :class:`NonFiniteError` naming the step. ``last.ckpt`` therefore stays the last good one,
and ``embedlight-train`` skips the export of a run that did not finish.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import lightning as L
import torch


class NonFiniteError(RuntimeError):
    """A loss, gradient or weight became NaN or Inf; the message names the step and what to try."""


_ADVICE = (
    "Training stopped; the last checkpoint written before this step is untouched and no export was "
    "written. Lower module.optimizer.lr, raise loss.temperature, or use hardware=cpu/gpu (fp32) to "
    "find the cause; resume=auto continues from the last good checkpoint."
)


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t  # FSDP2 DTensor -> this rank's shard


def nonfinite_tensors(named: Iterable[tuple[str, torch.Tensor]], limit: int = 5) -> list[str]:
    """Names of (at most ``limit``) floating-point tensors that hold a NaN or Inf."""
    bad = []
    for name, t in named:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(_local(t)).all():
            bad.append(name)
            if len(bad) >= limit:
                break
    return bad


def check_finite_weights(module: torch.nn.Module, what: str) -> None:
    """Raise :class:`NonFiniteError` if any parameter of ``module`` is NaN/Inf (``what``: for the message)."""
    bad = nonfinite_tensors(module.named_parameters())
    if bad:
        raise NonFiniteError(f"{what}: non-finite weights (NaN/Inf) in {bad}. {_ADVICE}")


class FiniteGuard(L.Callback):
    """Raise :class:`NonFiniteError` at the first non-finite loss, gradient or checkpointed weight.

    Args:
        check_grads: Also check the gradients before each optimizer step (skipped under fp16 loss
            scaling, where an Inf gradient is expected and the scaler skips that step itself).
    """

    def __init__(self, check_grads: bool = True) -> None:
        self.check_grads = check_grads
        self._loss_ok: torch.Tensor | None = None  # all micro-batch losses of this step finite (device)
        self._loss: torch.Tensor | None = None

    @staticmethod
    def _where(trainer: L.Trainer) -> str:
        loop = trainer.fit_loop
        batch = loop.epoch_loop.batch_progress.current.ready
        return f"optimizer step {trainer.global_step + 1} (epoch {loop.epoch_progress.current.processed}, batch {batch})"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._loss_ok, self._loss = None, None

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        ok = torch.isfinite(loss.detach()).all()  # stays on the device: no sync here
        self._loss_ok = ok if self._loss_ok is None else self._loss_ok & ok
        self._loss = loss.detach()

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        flags = [] if self._loss_ok is None else [self._loss_ok]
        grads = []
        if self.check_grads and getattr(trainer.precision_plugin, "scaler", None) is None:
            grads = [(n, p.grad) for n, p in pl_module.named_parameters() if p.grad is not None]
            if grads:
                norms = torch._foreach_norm([_local(g) for _, g in grads])
                device = flags[0].device if flags else norms[0].device
                flags.append(torch.isfinite(torch.stack([n.to(device) for n in norms])).all())
        if not flags or bool(torch.stack(flags).all()):  # one host sync per optimizer step
            self._loss_ok = None
            return
        if self._loss_ok is not None and not bool(self._loss_ok):
            what = f"the loss is {self._loss.float().item() if self._loss.numel() == 1 else 'non-finite'}"
        else:
            what = f"non-finite gradients in {nonfinite_tensors(grads)}"
        raise NonFiniteError(f"{self._where(trainer)}: {what}. {_ADVICE}")

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        state: Mapping[str, Any] = checkpoint.get("state_dict") or {}
        bad = nonfinite_tensors(state.items())
        if bad:
            raise NonFiniteError(
                f"after optimizer step {trainer.global_step}: non-finite weights (NaN/Inf) in {bad}; "
                f"the checkpoint was not written. {_ADVICE}"
            )
