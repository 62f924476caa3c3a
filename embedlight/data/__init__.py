"""Data: JSONL schemas, instruction templates, mixtures, samplers, collators and datamodules."""

from embedlight.data.datamodule import ContrastiveDataModule
from embedlight.utils.io import DataFormatError

__all__ = ["ContrastiveDataModule", "DataFormatError"]
