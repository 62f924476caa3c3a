"""ResumableDataLoader: nothing is drawn from the sampler before the first batch is asked for."""

from __future__ import annotations

import pytest

from embedlight.data.loader import ResumableDataLoader


class CountingBatchSampler:
    def __init__(self, n: int = 6) -> None:
        self.n, self.drawn, self.skip = n, 0, 0

    def __iter__(self):
        for i in range(self.skip, self.n):
            self.drawn += 1
            yield [i]

    def __len__(self) -> int:
        return self.n


@pytest.mark.parametrize("workers", [0, 2])
def test_iterator_starts_at_first_batch(workers):
    sampler = CountingBatchSampler()
    loader = ResumableDataLoader(list(range(6)), batch_sampler=sampler, num_workers=workers)
    it = iter(loader)
    assert sampler.drawn == 0 and len(it) == 6  # a plain DataLoader with workers has drawn 4 here
    sampler.skip = 2  # e.g. a resume that lands after iter() was called
    assert [int(b) for b in it] == [2, 3, 4, 5]
