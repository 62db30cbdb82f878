"""Flow gate: a full-resolution look at which pixels of a warp model's frames take part in the motion.

The dynamics run at 8-32 px and the decoder has no full-resolution view of the source, so a warp model's
flow is a smooth blob around the poke: it moves the backdrop next to a plant as much as the plant, and
under a poke on the backdrop it moves a patch of backdrop. The gate (`model.flow_gate`) multiplies the
backward flow of every frame of a video by one map in [0, 1], made by a small convolutional network at
full resolution from three things per pixel of the last frame: the source frame there, the source pixel
the last frame's flow fetches (the source warped by it) and that flow. It can so learn, from the flow
loss and the frame losses, that fetching backdrop from a slightly different place is no motion at all,
while a pixel that fetches part of an object, or one that an object leaves, keeps its flow. One map per
video, not one per frame: per frame the gate made a cpu-64 video through `Poker`'s trace about 6.5 ms
slower (27.1-32.9 against 20.6-21.4 ms, one thread), per video the difference was within the machine's
noise; the frames between move along the way to the last, so its map covers them too. A new gate
starts near 1, so a fresh gated model moves what an ungated one would. cpu-64 leaves it off (README,
"Still backdrop").

Shapes: [N, C, H, W] for N videos, flows in pixels.
"""
from __future__ import annotations

import torch
from torch import nn

from poke2video.model.blocks import start_open
from poke2video.model.warping import warp

FLOW_UNIT = 4.0      # pixels of flow per unit of the gate's flow input (the decoder's flow scale)


class FlowGate(nn.Module):
    """(source [N, 3, H, W] in [-1, 1], last frame's backward flow [N, 2, H, W] px) -> gate [N, 1, H, W].

    Three 3x3 convolutions, the middle one dilated: each gate value sees 9 x 9 pixels of both images."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3 + 3 + 2, channels, 3, 1, 1), nn.ELU(),
            nn.Conv2d(channels, channels, 3, 1, 2, dilation=2), nn.ELU(),
            start_open(nn.Conv2d(channels, 1, 3, 1, 1)))

    def forward(self, source: torch.Tensor, backward_flow: torch.Tensor) -> torch.Tensor:
        fetched = warp(source, backward_flow)                                  # [N, 3, H, W]
        features = torch.cat([source, fetched, backward_flow / FLOW_UNIT], 1)   # [N, 8, H, W]
        return torch.sigmoid(self.net(features))
