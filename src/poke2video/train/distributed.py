"""Data-parallel training through `torchrun` (gloo on CPU, nccl on GPU) and each rank's share of the data.

Gradients are averaged by hand after each backward instead of wrapping the model in DDP: one iteration
steps two optimizers over overlapping parameter sets (stage 1: object encoder + decoder, stage 2: poke
encoder + dynamics + decoder) through calls to sub-modules, which DDP's forward hook does not see.
Averaging one flat buffer per optimizer step keeps every rank's weights identical, bit for bit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
import torch.distributed as dist

from poke2video.errors import UserError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def launch_env(environ=os.environ) -> tuple[int, int, int]:
    """(rank, local rank, world size) that torchrun sets for each process: RANK counts processes over
    all machines (it picks the data shard), LOCAL_RANK within this machine (it picks the GPU),
    WORLD_SIZE all of them. A plain run is (0, 0, 1)."""
    try:
        world_size = int(environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return 0, 0, 1
        rank, local_rank = int(environ["RANK"]), int(environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError) as exc:
        raise UserError(f"bad torchrun environment (WORLD_SIZE, RANK, LOCAL_RANK): {exc!r}") from None
    if not (world_size > 1 and 0 <= rank < world_size and local_rank >= 0):
        raise UserError(f"bad torchrun environment: RANK {rank}, LOCAL_RANK {local_rank}, WORLD_SIZE {world_size}")
    return rank, local_rank, world_size


def init_distributed() -> DistContext:
    """Join the process group that torchrun describes in the environment; a plain run is rank 0 of 1."""
    rank, local_rank, world_size = launch_env()
    if world_size == 1:
        return DistContext(device=_local_device(0))
    device = _local_device(local_rank)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistContext(rank=rank, world_size=world_size, device=device)


def _local_device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def shutdown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def epoch_batches(num_items: int, batch_size: int, seed: int, epoch: int, ctx: DistContext) -> np.ndarray:
    """int64 [steps, batch_size]: this rank's item positions for `epoch`, in order.

    One seeded permutation per epoch, cut into global batches of batch_size x world_size; rank r takes
    the r-th slice of each. The tail that does not fill a global batch is dropped, so every rank runs
    the same number of steps.
    """
    global_batch = batch_size * ctx.world_size
    steps = num_items // global_batch
    if steps == 0:
        raise UserError(f"the training split has {num_items} clips, fewer than one batch of {global_batch} "
                        f"(train.batch_size {batch_size} x {ctx.world_size} processes)")
    order = np.random.default_rng([seed, epoch]).permutation(num_items)[: steps * global_batch]
    return order.reshape(steps, ctx.world_size, batch_size)[:, ctx.rank]


def average_gradients(parameters: Iterable[torch.nn.Parameter], ctx: DistContext) -> None:
    """All-reduce (mean) the gradients of `parameters` across ranks, through one flat buffer."""
    if not ctx.active:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_state(module: torch.nn.Module, ctx: DistContext) -> None:
    """Copy rank 0's parameters and buffers to every rank (at the start and after a resume)."""
    if not ctx.active:
        return
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when `flag` is true on at least one (to stop all ranks together)."""
    if not ctx.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
