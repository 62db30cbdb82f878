"""Tiny inputs shared by the evaluation tests: a 32 px PokeSim store and an untrained 32 px model."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from poke2video.gru_config import GRUModelConfig
from poke2video.data.store import Store
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

