"""Tiny inputs shared by the evaluation tests: a 32 px PokeSim store, an untrained 32 px model, and a store of real
footage's kind (no ground truth) whose block moves by a known shift."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from poke2video.data.store import Store, StoreWriter
from poke2video.gru_config import GRUModelConfig
from poke2video.model import PokeModel, save_model
from poke2video.sim.generate import simulate_dataset

SIM_RES, SIM_FRAMES = 32, 10
TINY_EVAL_MODEL = GRUModelConfig(resolution=SIM_RES, stem_channels=4, channels=[4, 4], bottleneck_channels=4,
                                 levels=2, frames=SIM_FRAMES)


def make_tiny_pokesim(path: Path, clips: int = 30) -> Path:
    """30 clips at 32 px: 24 train, 3 test and 3 test_unseen (clip 0 of each split a background poke)."""
    simulate_dataset(path, clips=clips, resolution=SIM_RES, seed=0, chunk_clips=15)
    return path


def make_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    save_model(path, PokeModel(TINY_EVAL_MODEL), {"step": 0})
    return path


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A tiny PokeSim store, opened (import this fixture into a test module to use it)."""
    return Store.open(make_tiny_pokesim(tmp_path_factory.mktemp("sim") / "pokesim"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny untrained model's weights file."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors")



BLOCK_SIZE, BLOCK_SIDE, BLOCK_T, BLOCK_FRAMES = 64, 32, 5, 11   # a block store's frame side, block side, T, frames
BLOCK_TOP, BLOCK_LEFT = (BLOCK_SIZE - BLOCK_SIDE) // 2, BLOCK_SIZE // 4    # where the block is in frame 0


def make_block_store(path: Path, speed=(1, 0)) -> Path:
    """A store as `prepare` writes it, without ground truth: one video of BLOCK_FRAMES frames in which a textured
    BLOCK_SIDE px block moves `speed` px per frame over a still textured background (`moving_square_frames`),
    all of it the test split; its flow F(s -> s+T) is the block's true shift, so the test pokes land on it."""
    from conftest import moving_square_frames

    frames = moving_square_frames(count=BLOCK_FRAMES, size=BLOCK_SIZE, square=BLOCK_SIDE, speed=speed, seed=3)
    starts = np.arange(BLOCK_FRAMES - BLOCK_T, dtype=np.int32)
    flow = np.zeros((len(starts), 2, BLOCK_SIZE, BLOCK_SIZE), np.float16)
    for k, start in enumerate(starts):
        top, left = BLOCK_TOP + start * speed[1], BLOCK_LEFT + start * speed[0]
        flow[k, :, top:top + BLOCK_SIDE, left:left + BLOCK_SIDE] = np.multiply(speed, BLOCK_T)[:, None, None]
    writer = StoreWriter(path, {"resolution": BLOCK_SIZE, "clip_length": BLOCK_T, "flow_method": "dis-fine"})
    arrays = {"frames": frames, "starts": starts, "flow": flow,
              "motion": np.full(BLOCK_FRAMES - 1, np.hypot(*speed), np.float32)}
    record = writer.add_video(0, arrays, {"name": "block.mp4"})
    return writer.finalize([record], {"train": [], "test": [[0, 0, BLOCK_FRAMES]]})


def block_mask(shift=(0, 0)) -> np.ndarray:
    """bool [BLOCK_SIZE, BLOCK_SIZE]: the block's pixels in frame 0, moved by `shift` (x, y) px."""
    mask = np.zeros((BLOCK_SIZE, BLOCK_SIZE), bool)
    top, left = BLOCK_TOP + shift[1], BLOCK_LEFT + shift[0]
    mask[top:top + BLOCK_SIDE, left:left + BLOCK_SIDE] = True
    return mask
