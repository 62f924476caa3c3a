"""Evaluators for text-embedding models (retrieval on BEIR folders, STS correlation)."""

from embedlight.evaluation.base import Evaluator, TextEncoder, run_evaluators
from embedlight.evaluation.retrieval import RetrievalEvaluator
from embedlight.evaluation.sts import STSEvaluator

__all__ = ["Evaluator", "RetrievalEvaluator", "STSEvaluator", "TextEncoder", "run_evaluators"]
