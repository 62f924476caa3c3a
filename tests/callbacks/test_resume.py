"""ExactResume: every epoch's order reaches the samplers; a loader that cannot skip is refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from torch.utils.data import DataLoader

from embedlight.callbacks import ExactResume
from embedlight.data.loader import ResumableDataLoader
from embedlight.data.pretrain import ShuffledBatchSampler


def _trainer(loader, epoch: int = 0, done: int = 0, restarting: bool = False):
    progress = SimpleNamespace(current=SimpleNamespace(processed=done))
    epoch_loop = SimpleNamespace(restarting=restarting, batch_progress=progress)
    fit_loop = SimpleNamespace(
        restarting=restarting,
        epoch_loop=epoch_loop,
        epoch_progress=SimpleNamespace(current=SimpleNamespace(processed=epoch)),
        _data_fetcher=None,
    )
    return SimpleNamespace(fit_loop=fit_loop, train_dataloader=loader, current_epoch=epoch)


def test_epoch_reaches_a_batch_sampler_lightning_does_not_see():
    """Lightning calls set_epoch only on loader.sampler and loader.batch_sampler.sampler."""
    sampler = ShuffledBatchSampler(16, 4, seed=0)
    loader = ResumableDataLoader(list(range(16)), batch_sampler=sampler)
    first = [b.tolist() for b in loader]
    ExactResume().on_train_epoch_start(_trainer(loader, epoch=1), None)
    assert sampler.epoch == 1
    second = [b.tolist() for b in loader]
    assert first != second and sorted(sum(first, [])) == sorted(sum(second, [])) == list(range(16))


def test_mid_epoch_restart_skips_through_the_sampler():
    sampler = ShuffledBatchSampler(16, 4, seed=0)
    loader = ResumableDataLoader(list(range(16)), batch_sampler=sampler)
    sampler.set_epoch(2)
    full = [b.tolist() for b in loader]
    ExactResume().on_train_start(_trainer(loader, epoch=2, done=3, restarting=True), None)
    assert [b.tolist() for b in loader] == full[3:]


def test_replay_skip_for_loaders_without_a_skipping_sampler():
    loader = ResumableDataLoader(list(range(12)), batch_size=3)
    ExactResume().on_train_start(_trainer(loader, done=2, restarting=True), None)
    assert [b.tolist() for b in loader] == [[6, 7, 8], [9, 10, 11]]


def test_a_loader_that_cannot_skip_is_refused():
    loader = DataLoader(list(range(12)), batch_size=3)
    with pytest.raises(
        RuntimeError, match=r"cannot resume exactly: the checkpoint is 2 batches into epoch 0"
    ):
        ExactResume().on_train_start(_trainer(loader, done=2, restarting=True), None)


def test_shuffled_batch_sampler_shards_ranks_without_overlap():
    ranks = [list(ShuffledBatchSampler(20, 3, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 3  # 20 // (3 * 2)
    seen = [i for batches in ranks for b in batches for i in b]
    assert len(seen) == len(set(seen)) == 18
