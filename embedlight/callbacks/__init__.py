"""Lightning callbacks: throughput, before/after evaluation, exact resume, atomic checkpoints, preemption."""

from embedlight.callbacks.checkpoint_io import AtomicCheckpointIO
from embedlight.callbacks.evaluation import EvaluationCallback
from embedlight.callbacks.preemption import Preempted, Preemption
from embedlight.callbacks.resume import ExactResume
from embedlight.callbacks.throughput import TokenThroughput

__all__ = [
    "AtomicCheckpointIO",
    "EvaluationCallback",
    "ExactResume",
    "Preempted",
    "Preemption",
    "TokenThroughput",
]
