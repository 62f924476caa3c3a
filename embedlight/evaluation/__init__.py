"""Evaluators for text-embedding models: retrieval, reranking, STS, pair classification, classification,
clustering, instruction robustness, passkey retrieval, ICL modes (MTEB bridge:
:mod:`embedlight.evaluation.mteb_bridge`).

Each evaluator is one file whose class is registered with ``@register("evaluator", name)``; the
registry discovers it by scanning this package. The names below are shorthands for the ``_target_``
paths of the ``conf/evaluation`` presets, not a list a new evaluator must join."""

from embedlight.evaluation.base import Evaluator, TextEncoder, run_evaluators
from embedlight.evaluation.classification import ClassificationEvaluator
from embedlight.evaluation.clustering import ClusteringEvaluator
from embedlight.evaluation.pair_classification import PairClassificationEvaluator
from embedlight.evaluation.passkey import PasskeyEvaluator
from embedlight.evaluation.reranking import RerankingEvaluator
from embedlight.evaluation.retrieval import RetrievalEvaluator
from embedlight.evaluation.robustness import InstructionRobustnessEvaluator
from embedlight.evaluation.sts import STSEvaluator

__all__ = [
    "ClassificationEvaluator",
    "ClusteringEvaluator",
    "Evaluator",
    "InstructionRobustnessEvaluator",
    "PairClassificationEvaluator",
    "PasskeyEvaluator",
    "RerankingEvaluator",
    "RetrievalEvaluator",
    "STSEvaluator",
    "TextEncoder",
    "run_evaluators",
]
