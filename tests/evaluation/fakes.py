"""Fake encoders for evaluator tests: fixed vectors looked up by text."""

from __future__ import annotations

import torch


class TableEncoder:
    """Returns ``table[text]`` (a fixed vector per text) and records each call's (kind, instruction)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.calls: list[tuple[str, str | None]] = []

    def encode(self, texts, *, kind="query", instruction=None, batch_size=64, show_progress=False):
        self.calls.append((kind, instruction))
        return torch.tensor([self.table[t] for t in texts], dtype=torch.float32)  # (N, D)
