"""A DataLoader whose worker processes start at the first batch, not at ``iter()``.

Lightning calls ``iter()`` on the training loader while it sets up (to count batches), before a
checkpoint is restored and before ``set_epoch``. A plain DataLoader with workers then starts them at
once, and they pull the first batches' indices from the sampler with the wrong epoch and without the
mid-epoch skip, so a resumed run would retrain batches it had already seen. Deferring the real
iterator to the first ``next()`` makes resume exact with any number of workers.
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
        return next(self._it)

    def __len__(self) -> int:
        return len(self._loader)


class ResumableDataLoader(DataLoader):
    """``torch.utils.data.DataLoader`` with a lazily started iterator (see the module docstring)."""

    def _real_iter(self) -> Iterator[Any]:
        return super().__iter__()

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return _LazyIterator(self)
