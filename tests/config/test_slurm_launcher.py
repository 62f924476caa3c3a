"""The SLURM sweep launcher preset composes onto submitit's and the sbatch script is valid bash."""

from __future__ import annotations

import os
import subprocess

from hydra import compose, initialize_config_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_slurm_launcher_preset_composes():
    with initialize_config_module(config_module="embedlight.conf", version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm_8gpu"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node) == (8, 8)  # one task per GPU
    assert launcher.max_num_timeout > 0 and launcher.signal_delay_s > 0  # requeue on timeout
    assert "preemption" in cfg.callbacks  # what checkpoints before submitit requeues


def test_sbatch_script_is_valid_bash_and_requeues_on_sigusr1():
    path = os.path.join(ROOT, "scripts", "slurm", "train.sbatch")
    assert subprocess.run(["bash", "-n", path]).returncode == 0
    text = open(path).read()
    assert "#SBATCH --signal=USR1@" in text and "#SBATCH --requeue" in text
    assert "resume=auto" in text and '"$rc" -eq 138' in text and "scontrol requeue" in text
