"""Tiny inputs shared by the evaluation tests: a 32 px PokeSim store and an untrained 32 px model."""
from __future__ import annotations

from pathlib import Path

import torch

from poke2video.config import ModelConfig
from poke2video.model import PokeModel, save_model
from poke2video.sim.generate import simulate_dataset

SIM_RES, SIM_FRAMES = 32, 10
TINY_EVAL_MODEL = ModelConfig(resolution=SIM_RES, stem_channels=4, channels=[4, 4], bottleneck_channels=4,
                              levels=2, frames=SIM_FRAMES)


def make_tiny_pokesim(path: Path, clips: int = 30) -> Path:
    """30 clips at 32 px: 24 train, 3 test and 3 test_unseen (clip 0 of each split a background poke)."""
    simulate_dataset(path, clips=clips, resolution=SIM_RES, seed=0, chunk_clips=15)
    return path


def make_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    save_model(path, PokeModel(TINY_EVAL_MODEL), {"step": 0})
    return path
