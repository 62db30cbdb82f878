"""Data-parallel training: two CPU processes (gloo) end with identical weights; only rank 0 writes."""
import json
import os
import socket
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from poke2video.errors import UserError
from poke2video.train import distributed
from poke2video.train.distributed import DistContext, epoch_batches, init_distributed, launch_env, shutdown
from train_support import assert_same_weights, make_tiny_store, weights_of, write_preset

WORLD = 2


def test_each_rank_gets_its_own_equal_share_of_every_global_batch():
    shards = [epoch_batches(21, 4, seed=3, epoch=1, ctx=DistContext(rank=r, world_size=WORLD)) for r in range(WORLD)]
    assert all(s.shape == (2, 4) for s in shards)  # 21 // 8 = 2 steps; the 5 left over are dropped
    for step in range(2):
        together = np.concatenate([s[step] for s in shards])
        assert len(set(together.tolist())) == 8
    again = epoch_batches(21, 4, seed=3, epoch=1, ctx=DistContext(rank=1, world_size=WORLD))
    other_epoch = epoch_batches(21, 4, seed=3, epoch=2, ctx=DistContext(rank=1, world_size=WORLD))
    assert np.array_equal(again, shards[1]) and not np.array_equal(other_epoch, shards[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, store: str, preset: str, out: str, weights_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    from poke2video.train.loop import train_run

    trainer = train_run(store, out, preset, steps=2)
    first_batch = epoch_batches(len(trainer.train_positions), 4, trainer.seed, 0,
                                DistContext(rank=rank, world_size=WORLD))[0]
    torch.save({"weights": weights_of(trainer.model), "first_batch": torch.from_numpy(first_batch)},
               os.path.join(weights_dir, f"rank{rank}.pt"))


def test_two_processes_end_with_identical_weights(tmp_path):
    store = make_tiny_store(tmp_path / "store")
    preset = write_preset(tmp_path / "p.yaml", gan={"start_step": 1, "patch_frames": 4})
    # fork: the children inherit the imported modules instead of importing torch again (seconds each)
    context = mp.start_processes(_worker, args=(_free_port(), str(store), str(preset), str(tmp_path / "run"),
                                                str(tmp_path)), nprocs=WORLD, join=False, start_method="fork")
    deadline = time.monotonic() + 300
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError("the two training processes did not finish within 300 s")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert_same_weights(ranks[0]["weights"], ranks[1]["weights"])
    assert not set(ranks[0]["first_batch"].tolist()) & set(ranks[1]["first_batch"].tolist())
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss/total" in r] == [1, 2]  # one writer
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "config.json", "metrics.jsonl", "model.safetensors", "resume.pt", "tb"]


def test_launch_environment_of_a_multi_node_run(monkeypatch):
    # torchrun --nnodes 2 --nproc-per-node 8: the 12th process overall is the 4th on the second machine
    assert launch_env({"RANK": "11", "LOCAL_RANK": "3", "WORLD_SIZE": "16"}) == (11, 3, 16)
    assert launch_env({}) == (0, 0, 1)
    for bad in ({"WORLD_SIZE": "16"}, {"RANK": "16", "WORLD_SIZE": "16"}, {"RANK": "x", "WORLD_SIZE": "2"}):
        with pytest.raises(UserError, match="torchrun environment"):
            launch_env(bad)
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert distributed._local_device(3) == torch.device("cuda", 3) and chosen == [3]  # LOCAL_RANK picks the GPU


NODES, PER_NODE = 2, 2


def _node_process(rank: int, port: int, out: str) -> None:
    """One process of a simulated 2-machine x 2-process torchrun launch (gloo, on this CPU)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(NODES * PER_NODE),
                      LOCAL_RANK=str(rank % PER_NODE), LOCAL_WORLD_SIZE=str(PER_NODE), GROUP_RANK=str(rank // PER_NODE))
    ctx = init_distributed()
    ranks = torch.tensor([float(ctx.rank)])
    dist.all_reduce(ranks)
    shard = epoch_batches(40, 3, seed=1, epoch=0, ctx=ctx)
    torch.save({"rank": ctx.rank, "world": ctx.world_size, "sum": ranks, "shard": torch.from_numpy(shard)},
               os.path.join(out, f"node{rank}.pt"))
    shutdown(ctx)


def test_ranks_of_a_two_machine_launch_join_one_group_and_split_the_data(tmp_path):
    world = NODES * PER_NODE
    context = mp.start_processes(_node_process, args=(_free_port(), str(tmp_path)), nprocs=world, join=False,
                                 start_method="fork")
    deadline = time.monotonic() + 120
    while not context.join(timeout=2):
        assert time.monotonic() < deadline, "the processes did not finish within 120 s"
    results = [torch.load(tmp_path / f"node{r}.pt", weights_only=True) for r in range(world)]
    assert [(r["rank"], r["world"]) for r in results] == [(r, world) for r in range(world)]
    assert all(r["sum"].item() == sum(range(world)) for r in results)  # all four in one process group
    shards = np.concatenate([r["shard"].numpy().reshape(-1) for r in results])
    assert len(set(shards.tolist())) == len(shards) == 3 * 3 * world  # 40 // 12 = 3 steps, disjoint shards
