"""Config-time checks of token limits (``data.query_max_len``, ``embedder.max_length``, ...) and of
batch sizes (``data.batch_size``).

A limit of 0 or 1 does not fail by itself: the tokenizer treats it as "no truncation" (or cannot fit
its own special tokens) and the run crashes much later with a shape error. These checks reject it
when the object is built, naming the config key. Every sampler checks its batch size, and every
datamodule its epoch's batch count, here.
"""

from __future__ import annotations

from typing import Any


def check_max_len(key: str, value: Any, tokenizer: Any = None, reserved: int = 0) -> int:
    """Return ``value`` if it leaves room for at least one text token, else raise naming ``key``.

    Args:
        key: The config key, for the message (``data.query_max_len``).
        value: The configured limit in tokens.
        tokenizer: When given, its special tokens (``[CLS]``/``[SEP]``, ``<s>``) count against the limit.
        reserved: Further tokens the caller appends (an [EOS]).

    Raises:
        ValueError: ``value`` is not an integer, or leaves no room for a text token.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer number of tokens, got {value!r}")
    special = 1  # without a tokenizer: assume at least one special token
    if tokenizer is not None and hasattr(tokenizer, "num_special_tokens_to_add"):
        special = int(tokenizer.num_special_tokens_to_add(pair=False))
    needed = special + reserved + 1
    if value < needed:
        raise ValueError(
            f"{key}={value} leaves no room for text: it must be at least {needed} "
            f"({special} special token(s) + {reserved} reserved + 1 text token)"
        )
    return value


def check_batch_size(value: int, key: str = "data.batch_size") -> int:
    """Return ``value`` if it is at least 1, else raise naming ``key``."""
    if value < 1:
        raise ValueError(f"{key} must be >= 1, got {value}")
    return value


def check_full_batch(batches: int, rows: int, unit: str, batch_size: int, world_size: int) -> None:
    """Fail when an epoch has no full batch (incomplete batches are dropped, so it would train nothing).

    Args:
        batches: Full batches per epoch and rank.
        rows: Rows the epoch draws from (for the message).
        unit: What a row is (``rows``, ``chunks``).
        batch_size: Rows per batch per rank.
        world_size: Data-parallel ranks.
    """
    if batches == 0:
        raise ValueError(
            f"no full batch: {rows} {unit} for batch_size={batch_size} x {world_size} device(s); "
            "lower data.batch_size"
        )
