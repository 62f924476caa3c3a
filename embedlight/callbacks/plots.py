"""PNG curves of a run (loss, learning rate, evaluation/validation metrics, throughput).

:class:`PlotCallback` adds an in-memory :class:`MetricRecorder` to the trainer's loggers, so it sees
every metric any logger sees (``self.log`` values and what callbacks log themselves) whichever logger
is configured (CSV, wandb or none). The record is part of the callback's checkpoint state, so a
resumed run plots its whole history. At fit end, global rank 0 writes the PNGs (matplotlib's Agg
backend, each written to a temporary file and renamed). :func:`records_from_csv` reads a
``CSVLogger`` ``metrics.csv`` instead, to plot an old run.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections import defaultdict
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger

log = logging.getLogger(__name__)

Series = dict[str, list[tuple[int, float]]]  # metric -> [(step, value)]


class MetricRecorder(Logger):
    """A logger that keeps every ``(step, value)`` it is given, in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.series: Series = defaultdict(list)

    @property
    def name(self) -> str:
        return "recorder"

    @property
    def version(self) -> int:
        return 0

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            try:
                value = float(value)
            except (TypeError, ValueError):  # a table, an image...
                continue
            if key not in ("epoch", "step") and math.isfinite(value):
                self.series[key].append((int(step or 0), value))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass


def records_from_csv(path: str) -> Series:
    """Series from a Lightning ``CSVLogger`` ``metrics.csv`` (one row per logging call, blank cells)."""
    series: Series = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            step = int(float(row.get("step") or 0))
            for key, cell in row.items():
                if key not in ("epoch", "step") and cell not in (None, ""):
                    series[key].append((step, float(cell)))
    return series


def panels(series: Series) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Group series into figures: ``loss``, ``lr``, ``evaluation`` (one curve per metric, phases joined
    in step order: ``eval_before/x`` at step 0, ``eval_step_N/x``, ``eval_after/x``), ``validation``
    and ``throughput``."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for key, points in series.items():
        if key.startswith("val/"):
            out["validation"][key.removeprefix("val/")] += points
        elif key.startswith("eval_"):
            out["evaluation"][key.split("/", 1)[1] if "/" in key else key] += points
        elif key.startswith("throughput/"):
            out["throughput"][key.removeprefix("throughput/")] += points
        elif "loss" in key:
            out["loss"][key] += points
        elif key.endswith("lr") or "lr-" in key:
            out["lr"][key] += points
    return {fig: {k: sorted(v) for k, v in curves.items()} for fig, curves in out.items()}


def plot_series(series: Series, out_dir: str, max_curves: int = 12) -> list[str]:
    """Write one PNG per panel (see :func:`panels`) into ``out_dir``; returns the paths written.

    Each metric gets its own subplot (scales differ: a loss and an MFU, nDCG and recall); at most
    ``max_curves`` subplots per figure, in name order.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, curves in sorted(panels(series).items()):
        keys = sorted(curves)[:max_curves]
        if not keys:
            continue
        cols = min(3, len(keys))
        rows = math.ceil(len(keys) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
        for ax, key in zip(axes.flat, keys, strict=False):
            steps, values = zip(*curves[key], strict=True)
            # dashed when only a few points: the line between them is not a measurement
            style = "--" if len(steps) < 4 else "-"
            ax.plot(
                steps, values, style, marker="o" if len(steps) <= 30 else None, markersize=3, linewidth=1.2
            )
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(keys) :]:
            ax.set_visible(False)
        fig.suptitle(name, fontsize=11)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{name}.png")
        tmp = f"{path}.tmp"
        fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        os.replace(tmp, path)
        written.append(path)
    return written


class PlotCallback(L.Callback):
    """Records every logged metric and writes PNG curves into ``output_dir`` when fitting ends.

    Args:
        output_dir: Folder of the PNGs (``loss.png``, ``lr.png``, ``evaluation.png``, ``validation.png``,
            ``throughput.png``: those with data).
    """

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir
        self.recorder = MetricRecorder()
        self.written: list[str] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not any(lg is self.recorder for lg in trainer.loggers):
            trainer.loggers = [*trainer.loggers, self.recorder]

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after on_train_end: the final evaluation has been logged
        if trainer.is_global_zero:
            self.written = plot_series(self.recorder.series, self.output_dir)
            log.info("plots: %s", ", ".join(self.written) or "(nothing logged)")

    def state_dict(self) -> dict[str, Any]:
        return {"series": {k: [list(p) for p in v] for k, v in self.recorder.series.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.recorder.series = defaultdict(
            list, {k: [tuple(p) for p in v] for k, v in state_dict["series"].items()}
        )
