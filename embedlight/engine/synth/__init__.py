"""Synthetic training data with LLMs (E5-mistral's two-step recipe): ``embedlight-synth``."""

from embedlight.engine.synth.pipeline import SynthPipeline

__all__ = ["SynthPipeline"]
