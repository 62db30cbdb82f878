"""Data-parallel training: two CPU processes (gloo) end with identical weights; only rank 0 writes."""
import json
import os
import socket
import time

import numpy as np
import torch
import torch.multiprocessing as mp

from poke2video.train.distributed import DistContext, epoch_batches
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
