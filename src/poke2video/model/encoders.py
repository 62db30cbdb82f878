"""UNet-style encoders: the object encoder on frames, the poke encoder on poke maps (docs/architecture.md)."""
from __future__ import annotations

import torch
from torch import nn

from poke2video.gru_config import GRUModelConfig
from poke2video.model.blocks import ResBlock, conv_norm_act


class Encoder(nn.Module):
    """Stem, stride-2 stages, stride-1 bottleneck, ResNet blocks; returns every level, coarse -> fine.

    Output of `forward(x [B, C_in, H, W])`: [bottleneck [B, C_b, H/2^S, W/2^S], stage S, ..., stage 1],
    stage s having `cfg.channels[s-1]` channels at H/2^s.

    `norm` is a `norm_layer` kind: the object encoder uses `instance`, the poke encoder `none`, because
    normalising each map of a sparse poke divides out the poke's magnitude.
    """

    def __init__(self, in_channels: int, cfg: GRUModelConfig, norm: str):
        super().__init__()
        self.stem = conv_norm_act(in_channels, cfg.stem_channels, norm=norm)
        widths = [cfg.stem_channels, *cfg.channels]
        self.stages = nn.ModuleList(conv_norm_act(a, b, stride=2, norm=norm) for a, b in zip(widths, widths[1:]))
        self.bottleneck = nn.Sequential(
            conv_norm_act(widths[-1], cfg.bottleneck_channels, norm=norm),
            *(ResBlock(cfg.bottleneck_channels, norm=norm) for _ in range(cfg.encoder_blocks)),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        features.append(self.bottleneck(x))
        return features[::-1]


def level_geometry(cfg: GRUModelConfig) -> list[tuple[int, int]]:
    """(channels, downsampling factor) of every encoder level, coarse -> fine (level 0 = bottleneck)."""
    stages = len(cfg.channels)
    geometry = [(cfg.bottleneck_channels, 2 ** stages)]
    geometry += [(cfg.channels[s - 1], 2 ** s) for s in range(stages, 0, -1)]
    return geometry
