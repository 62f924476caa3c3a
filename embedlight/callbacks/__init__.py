"""Lightning callbacks: throughput, before/after evaluation, exact resume, atomic checkpoints."""

from embedlight.callbacks.checkpoint_io import AtomicCheckpointIO
from embedlight.callbacks.evaluation import EvaluationCallback
from embedlight.callbacks.refresh import RefreshNegatives
from embedlight.callbacks.resume import ExactResume
from embedlight.callbacks.throughput import ThroughputMonitor

__all__ = ["AtomicCheckpointIO", "EvaluationCallback", "ExactResume", "RefreshNegatives", "ThroughputMonitor"]
