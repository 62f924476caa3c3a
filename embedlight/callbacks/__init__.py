"""Lightning callbacks: throughput, before/after evaluation, validation, plots, exact resume, atomic
checkpoints, preemption, finite guard, hard-negative refresh."""

from embedlight.callbacks.checkpoint_io import AtomicCheckpointIO
from embedlight.callbacks.evaluation import EvaluationCallback
from embedlight.callbacks.finite import FiniteGuard, NonFiniteError
from embedlight.callbacks.plots import PlotCallback
from embedlight.callbacks.preemption import Preempted, Preemption
from embedlight.callbacks.refresh import RefreshNegatives
from embedlight.callbacks.resume import ExactResume
from embedlight.callbacks.throughput import TokenThroughput
from embedlight.callbacks.validation import BestCheckpoint, ValidationCallback, ValidationEarlyStopping
from embedlight.callbacks.wandb_tables import WandbEvalTables

__all__ = [
    "AtomicCheckpointIO",
    "BestCheckpoint",
    "EvaluationCallback",
    "ExactResume",
    "FiniteGuard",
    "NonFiniteError",
    "PlotCallback",
    "Preempted",
    "Preemption",
    "RefreshNegatives",
    "TokenThroughput",
    "ValidationCallback",
    "ValidationEarlyStopping",
    "WandbEvalTables",
]
