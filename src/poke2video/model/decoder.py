"""Skip decoder G(sigma^0 ... sigma^{K-1}) -> frame (docs/architecture.md, "Decoder")."""
from __future__ import annotations

import torch
from torch import nn

from poke2video.gru_config import GRUModelConfig
from poke2video.model.blocks import ResBlock, conv_norm_act, norm_layer, resample
from poke2video.model.encoders import level_geometry


class SkipStage(nn.Module):
    """Resample the coarser features onto one level; with a skip, fuse the level's state into them."""

    def __init__(self, in_channels: int, channels: int, scale: int, has_skip: bool, blocks: int):
        super().__init__()
        self.up = nn.Sequential(resample(in_channels, channels, scale), norm_layer("instance", channels), nn.ELU())
        self.fuse = conv_norm_act(2 * channels, channels) if has_skip else nn.Identity()
        self.blocks = nn.Sequential(*(ResBlock(channels) for _ in range(blocks if has_skip else 0)))

    def forward(self, features: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        features = self.up(features)
        if skip is not None:
            features = self.blocks(self.fuse(torch.cat([features, skip], 1)))
        return features


class Decoder(nn.Module):
    """ResNet blocks at the bottleneck, then one SkipStage per finer level and one to full resolution.

    Returns the raw RGB maps [B, 3, H, W]; `PokeModel` turns them into a frame (tanh).
    """

    def __init__(self, cfg: GRUModelConfig):
        super().__init__()
        geometry = level_geometry(cfg) + [(cfg.stem_channels, 1)]
        self.levels = cfg.levels
        self.bottleneck = nn.Sequential(*(ResBlock(cfg.bottleneck_channels) for _ in range(cfg.decoder_blocks)))
        self.stages = nn.ModuleList(
            SkipStage(above_ch, ch, above_down // down, has_skip=level < cfg.levels, blocks=cfg.skip_blocks)
            for level, ((above_ch, above_down), (ch, down)) in enumerate(zip(geometry, geometry[1:]), start=1))
        self.to_rgb = nn.Conv2d(cfg.stem_channels, 3, 3, 1, 1)

    def forward(self, object_state: list[torch.Tensor]) -> torch.Tensor:
        """object_state: K tensors coarse -> fine -> raw RGB maps [B, 3, H, W]."""
        if len(object_state) != self.levels:
            raise ValueError(f"decoder expects {self.levels} levels, got {len(object_state)}")
        features = self.bottleneck(object_state[0])
        for level, stage in enumerate(self.stages, start=1):
            features = stage(features, object_state[level] if level < self.levels else None)
        return self.to_rgb(features)
