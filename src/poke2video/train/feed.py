"""Training batches through a torch DataLoader: worker processes, pinned memory on CUDA, exact resume.

The batch sampler walks the same seeded per-epoch orders as `epoch_batches`, starting at the resumed
(epoch, batch) and running on without end, so one loader iterator serves a whole invocation and its
workers live as long as it (persistent). Every index carries its epoch: an item is a pure function of
(seed, epoch, clip), whichever process makes it, so prefetching and any number of workers give the same
batches, bit for bit, as loading in the training process (`--workers 0`).
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from poke2video.data.dataset import PokeDataset
from poke2video.train.distributed import DistContext, epoch_batches
from poke2video.train.batch import stack_items

MAX_DEFAULT_WORKERS = 4


def default_workers(device: torch.device) -> int:
    """0 on a CPU (a worker would take a core from training); on a GPU up to 4 per process, leaving a
    core of the process's share for itself (LOCAL_WORLD_SIZE processes per machine under torchrun)."""
    if device.type != "cuda":
        return 0
    share = (os.cpu_count() or 1) // max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    return max(0, min(MAX_DEFAULT_WORKERS, share - 1))


class _EpochItems(Dataset):
    """`dataset` items addressed by (epoch, position in `positions`)."""

    def __init__(self, dataset: PokeDataset, positions: np.ndarray):
        self.dataset, self.positions = dataset, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, key: tuple[int, int]):
        epoch, position = key
        self.dataset.set_epoch(epoch)
        return self.dataset[int(self.positions[position])]


class _BatchesFrom(Sampler):
    """Lists of (epoch, position): this rank's batches from (`epoch`, `batch`) on, epoch after epoch."""

    def __init__(self, count: int, batch_size: int, seed: int, ctx: DistContext, epoch: int, batch: int):
        self.count, self.batch_size, self.seed, self.ctx = count, batch_size, seed, ctx
        self.epoch, self.batch = epoch, batch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, first = self.epoch, self.batch
        while True:
            order = epoch_batches(self.count, self.batch_size, self.seed, epoch, self.ctx)
            for positions in order[first:]:
                yield [(epoch, int(p)) for p in positions]
            epoch, first = epoch + 1, 0


def batch_loader(dataset: PokeDataset, positions: np.ndarray, batch_size: int, seed: int, ctx: DistContext,
                 start: tuple[int, int], workers: int) -> DataLoader:
    """A loader of stacked batch columns from (epoch, batch in epoch) `start` on, forever."""
    sampler = _BatchesFrom(len(positions), batch_size, seed, ctx, *start)
    # Its own generator: a loader iterator draws a seed for its workers, which must not come from (and
    # move) the global torch RNG that the resume state restores.
    return DataLoader(_EpochItems(dataset, positions), batch_sampler=sampler, num_workers=workers,
                      collate_fn=stack_items, pin_memory=ctx.device.type == "cuda",
                      persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))
