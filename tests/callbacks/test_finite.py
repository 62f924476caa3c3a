"""FiniteGuard stops at the first NaN/Inf loss, gradient or weight, before that step is checkpointed."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from embedlight.callbacks import FiniteGuard, NonFiniteError


class _Toy(L.LightningModule):
    """A linear regression whose step ``bad_step`` (1-based) goes wrong in the chosen way."""

    def __init__(self, bad_step: int, how: str) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.bad_step, self.how = bad_step, how

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)
        if self.global_step + 1 == self.bad_step:
            if self.how == "loss":
                loss = loss * float("nan")
            elif self.how == "grad":  # finite loss (0), NaN gradient: d sqrt(u)/du at u=0 times 0
                loss = loss + torch.sqrt(self.layer.weight * 0.0).sum()
            elif self.how == "weights":  # finite loss and gradient, an update beyond float32's range
                self.trainer.optimizers[0].param_groups[0]["lr"] = 3.0e38
                loss = loss * 1e6
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tmp_path, how: str, bad_step: int = 3):
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(32, 4), torch.randn(32))
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0, every_n_train_steps=1)
    trainer = L.Trainer(
        max_steps=6,
        callbacks=[FiniteGuard(), ckpt],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        precision="32-true",
    )
    trainer.fit(_Toy(bad_step, how), DataLoader(data, batch_size=4))


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("loss", r"optimizer step 3 .*the loss is nan"),
        ("grad", r"optimizer step 3 .*non-finite gradients in \['layer.weight'\]"),
        ("weights", r"after optimizer step 3: non-finite weights .*layer.weight"),
    ],
)
def test_stops_at_the_step_and_keeps_the_last_good_checkpoint(tmp_path, how, says):
    with pytest.raises(NonFiniteError, match=says):
        _fit(tmp_path, how)
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["global_step"] == 2  # the checkpoint of step 2, not of the bad step 3
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


def test_a_healthy_run_is_not_stopped(tmp_path):
    _fit(tmp_path, "none")
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 6
