"""A small configuration of the paper's GRU model (family gru) for tests that exercise its parts."""
from __future__ import annotations

import dataclasses

from poke2video.gru_config import DiscriminatorConfig, GRUModelConfig


def small_gru_config(**changes) -> GRUModelConfig:
    """64 px, narrow, a GRU at every level (K = 4): fast enough for unit tests."""
    cfg = GRUModelConfig(resolution=64, stem_channels=8, channels=[8, 16, 32], bottleneck_channels=32,
                      encoder_blocks=1, decoder_blocks=1, skip_blocks=0, levels=4, frames=10,
                      discriminator=DiscriminatorConfig(patch_channels=32, temporal_channels=16))
    return dataclasses.replace(cfg, **changes)
