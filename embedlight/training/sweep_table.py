"""The trial table of a Hydra sweep (``hydra.callbacks.sweep_table``, see ``conf/hparams_search``).

Each job writes ``<trial dir>/trial.json`` (its number, the swept parameters, the returned objective
and its status) when it ends, in the job's own process, so this works with any launcher (local,
submitit/SLURM). When the sweep ends, the main process gathers them into ``<sweep dir>/trials.csv``
and ``trials.md`` (sorted by objective, best first) and prints the Markdown table.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from embedlight.utils.io import write_json, write_text

log = logging.getLogger(__name__)

TRIAL_FILE = "trial.json"


def read_trials(sweep_dir: str) -> list[dict[str, Any]]:
    """Every ``trial.json`` one level under ``sweep_dir``, in trial-number order."""
    trials = []
    for path in glob.glob(os.path.join(sweep_dir, "*", TRIAL_FILE)):
        with open(path, encoding="utf-8") as fh:
            trials.append(json.load(fh))
    return sorted(trials, key=lambda t: t["trial"])


def trial_table(
    trials: list[dict[str, Any]], direction: str = "maximize"
) -> tuple[list[str], list[list[Any]]]:
    """Columns ``rank, trial, <params...>, objective, status`` and rows sorted best first (failed last)."""
    params = sorted({k for t in trials for k in t["params"]})
    sign = -1.0 if direction == "maximize" else 1.0
    done = sorted((t for t in trials if t["objective"] is not None), key=lambda t: sign * t["objective"])
    failed = [t for t in trials if t["objective"] is None]
    rows = [
        [
            rank if t["objective"] is not None else "-",
            t["trial"],
            *(t["params"].get(p) for p in params),
            t["objective"],
            t["status"],
        ]
        for rank, t in enumerate(done + failed, start=1)
    ]
    return ["rank", "trial", *params, "objective", "status"], rows


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else ("" if value is None else str(value))


def to_markdown(columns: list[str], rows: list[list[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_table(sweep_dir: str, direction: str = "maximize", objective_name: str | None = None) -> str:
    """Write ``trials.csv`` and ``trials.md`` into ``sweep_dir``; returns the Markdown table."""
    columns, rows = trial_table(read_trials(sweep_dir), direction)
    if objective_name:
        columns = [objective_name if c == "objective" else c for c in columns]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    write_text(os.path.join(sweep_dir, "trials.csv"), buf.getvalue())
    table = to_markdown(columns, rows)
    write_text(os.path.join(sweep_dir, "trials.md"), table + "\n")
    return table


class SweepTable(Callback):
    """Hydra callback: one ``trial.json`` per job, then ``trials.{csv,md}`` for the sweep (printed)."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return
        swept = set(hc.sweeper.get("params") or {})
        params = {}
        for override in hc.overrides.task:
            key, _, value = override.partition("=")
            if not swept or key in swept:
                params[key] = _number(value)
        ok = job_return.status == JobStatus.COMPLETED
        write_json(
            os.path.join(hc.runtime.output_dir, TRIAL_FILE),
            {
                "trial": hc.job.num,
                "params": params,
                "objective": float(job_return.return_value)
                if ok and job_return.return_value is not None
                else None,
                "status": "completed" if ok else "failed",
            },
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = config.hydra.sweep.dir
        direction = str(config.hydra.sweeper.get("direction", "maximize"))
        table = write_table(sweep_dir, direction, config.get("monitor"))
        print(f"\nSweep trials ({sweep_dir}/trials.csv):\n{table}")


def _number(text: str) -> Any:
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return text
