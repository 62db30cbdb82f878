"""The training batch loader: the same batches whatever the number of workers, from any resume point;
pinned memory on CUDA; resume with loader workers stays bit for bit."""
import numpy as np
import pytest
import torch
from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter

from poke2video.config import PokeConfig
from poke2video.data.dataset import PokeDataset
from poke2video.train.distributed import DistContext, epoch_batches
from poke2video.train.feed import batch_loader, default_workers
from poke2video.train.loop import train_run
from train_support import assert_same_weights, make_tiny_store, weights_of, write_preset

SEED = 5


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    store = make_tiny_store(tmp_path_factory.mktemp("feed") / "store")
    return PokeDataset(store, "train", poke=PokeConfig(poke_size=3, seed=SEED))


def expected_batches(dataset, positions, start, count):
    """What the loader must give: epoch_batches' orders, items drawn in their epoch, stacked."""
    epoch, first, batches = start[0], start[1], []
    while len(batches) < count:
        for rows in epoch_batches(len(positions), 4, SEED, epoch, DistContext())[first:]:
            dataset.set_epoch(epoch)
            items = [dataset[int(positions[p])] for p in rows]
            batches.append(tuple(torch.stack(column) for column in zip(*items)))
        epoch, first = epoch + 1, 0
    return batches[:count]


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_from_a_resume_point_across_epochs(dataset, workers):
    positions = np.arange(1, len(dataset))  # one clip held back, as validation may do
    start = (1, 2)  # epoch 1, its third batch: the next epoch begins one batch later
    batches = iter(batch_loader(dataset, positions, 4, SEED, DistContext(), start, workers))
    assert isinstance(batches, _MultiProcessingDataLoaderIter) == (workers > 0)
    got = [next(batches) for _ in range(4)]
    for mine, theirs in zip(got, expected_batches(dataset, positions, start, 4), strict=True):
        assert all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True))


def test_global_rng_untouched_and_pinned_memory_on_cuda(dataset):
    before = torch.get_rng_state()
    next(iter(batch_loader(dataset, np.arange(len(dataset)), 4, SEED, DistContext(), (0, 0), 0)))
    assert torch.equal(before, torch.get_rng_state())
    cuda = DistContext(device=torch.device("cuda", 0))
    assert batch_loader(dataset, np.arange(len(dataset)), 4, SEED, cuda, (0, 0), 2).pin_memory
    assert not batch_loader(dataset, np.arange(len(dataset)), 4, SEED, DistContext(), (0, 0), 2).pin_memory


def test_default_workers(monkeypatch):
    assert default_workers(torch.device("cpu")) == 0
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert default_workers(torch.device("cuda", 0)) == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")  # 2 cores per process: one loads, one trains
    assert default_workers(torch.device("cuda", 0)) == 1


def test_resume_with_two_workers_equals_a_run_without_workers(tmp_path):
    store = make_tiny_store(tmp_path / "store")
    preset = write_preset(tmp_path / "p.yaml", lr_decay_epochs=[1])
    straight = train_run(str(store), str(tmp_path / "straight"), str(preset), steps=5, workers=0)
    first = train_run(str(store), str(tmp_path / "run"), str(preset), steps=2, workers=2)
    assert first.workers == 2
    resumed = train_run(str(store), str(tmp_path / "run"), "ignored", steps=5, resume=True, workers=2)
    assert_same_weights(weights_of(resumed.model), weights_of(straight.model))
    for name, optimizer in resumed.runner.optimizers.items():
        mine, theirs = optimizer.state_dict()["state"], straight.runner.optimizers[name].state_dict()["state"]
        assert all(torch.equal(mine[i][k], theirs[i][k]) for i in theirs for k in theirs[i])
