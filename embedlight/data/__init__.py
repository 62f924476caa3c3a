"""Data: JSONL schemas, instruction templates, mixtures, samplers, collators and datamodules."""

from embedlight.data.datamodule import ContrastiveDataModule
from embedlight.data.jsonl import DataFormatError

__all__ = ["ContrastiveDataModule", "DataFormatError"]
