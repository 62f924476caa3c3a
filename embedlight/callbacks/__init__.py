"""Lightning callbacks: throughput, before/after evaluation, exact resume, atomic checkpoints."""

from embedlight.callbacks.checkpoint_io import AtomicCheckpointIO
from embedlight.callbacks.evaluation import EvaluationCallback
from embedlight.callbacks.resume import ExactResume
from embedlight.callbacks.throughput import TokenThroughput

__all__ = ["AtomicCheckpointIO", "EvaluationCallback", "ExactResume", "TokenThroughput"]
