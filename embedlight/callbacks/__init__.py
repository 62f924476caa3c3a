"""Lightning callbacks: throughput, before/after evaluation, exact resume, atomic checkpoints, preemption,
finite guard, hard-negative refresh."""

from embedlight.callbacks.checkpoint_io import AtomicCheckpointIO
from embedlight.callbacks.evaluation import EvaluationCallback
from embedlight.callbacks.finite import FiniteGuard, NonFiniteError
from embedlight.callbacks.preemption import Preempted, Preemption
from embedlight.callbacks.refresh import RefreshNegatives
from embedlight.callbacks.resume import ExactResume
from embedlight.callbacks.throughput import TokenThroughput

__all__ = [
    "AtomicCheckpointIO",
    "EvaluationCallback",
    "ExactResume",
    "FiniteGuard",
    "NonFiniteError",
    "Preempted",
    "Preemption",
    "RefreshNegatives",
    "TokenThroughput",
]
