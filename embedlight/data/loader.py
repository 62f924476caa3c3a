"""A DataLoader whose worker processes start at the first batch, not at ``iter()``.

Lightning calls ``iter()`` on the training loader while it sets up (to count batches), before a
checkpoint is restored and before ``set_epoch``. A plain DataLoader with workers then starts them at
once, and they pull the first batches' indices from the sampler with the wrong epoch and without the
mid-epoch skip, so a resumed run would retrain batches it had already seen. Deferring the real
iterator to the first ``next()`` makes resume exact with any number of workers.

``skip_batches(n)`` drops the next iteration's first ``n`` batches by reading and discarding them:
the mid-epoch resume of loaders whose sampler cannot skip (streaming ``IterableDataset`` corpora).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader


class _LazyIterator:
    def __init__(self, loader: ResumableDataLoader) -> None:
        self._loader = loader
        self._it: Iterator[Any] | None = None

    def __iter__(self) -> _LazyIterator:
        return self

    def __next__(self) -> Any:
        if self._it is None:
            self._it = self._loader._real_iter()
            skip, self._loader._skip = self._loader._skip, 0
            for _ in range(skip):  # replay: the same batches, read and dropped
                next(self._it)
        return next(self._it)

    def __len__(self) -> int:
        return len(self._loader)


class ResumableDataLoader(DataLoader):
    """``torch.utils.data.DataLoader`` with a lazily started iterator (see the module docstring)."""

    _skip = 0

    def skip_batches(self, n: int) -> None:
        """Drop the first ``n`` batches of the next iteration by replaying them (mid-epoch resume)."""
        self._skip = int(n)

    def _real_iter(self) -> Iterator[Any]:
        return super().__iter__()

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return _LazyIterator(self)
