"""Movable poke: does the poked point belong to something that moves at all?

A warp model's dynamics run at 8-32 px; they cannot tell a poke on a 2 px branch from a poke on the
backdrop beside it, so under a background poke they move a blob of backdrop as they would a branch. The
movable head (`model.movable_poke`) is four convolutions on the source frame at full resolution, dilated
so that each output pixel sees the 31 x 31 pixels around it, and a 1 x 1 convolution to a logit per pixel.
Its mean under the poke's footprint (the pixels where the poke map is non-zero) is the logit that the
poked point moves, and every frame's flow of that video is multiplied by its sigmoid. Training teaches it
with a cross-entropy against the dataset's own label of each poke (a background poke is one on a pixel
that does not move in the clip: `train.movable_weight`); the flow and frame losses reach it through the
product too. A new head passes 95% of every flow.

Only the footprint's logits are needed, so `forward` runs the network on a window around the footprint
(its reach on every side), not on the whole frame: a third of the work at 64 px. It gives the same
logits as `logit_map` on the whole frame: outside the image the window's input and every layer's output
are zero, as the whole frame's zero padding makes them, and the window's own edges are too far from the
footprint to reach it. A footprint wider than `span` pixels is read only where it fits the window.

Shapes: source [B, 3, H, W] in [-1, 1], poke map [B, 2, H, W]; out: logit [B].
"""
from __future__ import annotations

import torch
from torch import nn

from poke2video.model.blocks import start_open

DILATIONS = (1, 2, 4, 8)
REACH = sum(DILATIONS)   # an output pixel sees REACH pixels on each side (3x3 kernels)


class MovablePoke(nn.Module):
    def __init__(self, channels: int = 16, span: int = 9):
        super().__init__()
        layers: list[nn.Module] = []
        for index, dilation in enumerate(DILATIONS):
            layers += [nn.Conv2d(3 if index == 0 else channels, channels, 3, 1, dilation, dilation=dilation), nn.ELU()]
        self.net = nn.Sequential(*layers, start_open(nn.Conv2d(channels, 1, 1)))
        self.window = span + 2 * REACH

    def logit_map(self, source: torch.Tensor) -> torch.Tensor:
        """The head on the whole frame: [B, 3, H, W] -> logits [B, 1, H, W]."""
        return self.net(source)

    def forward(self, source: torch.Tensor, poke_map: torch.Tensor) -> torch.Tensor:
        """-> logit [B] that the poked point moves (its mean under the poke's footprint; 0 for an empty map)."""
        batch, _, height, width = source.shape
        footprint = (poke_map.abs().sum(1, keepdim=True) > 0).to(source.dtype)        # [B, 1, H, W]
        rows, cols = self._window_pixels(footprint)                                      # [B, S] each
        inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
        index = (rows.clamp(0, height - 1)[:, :, None] * width + cols.clamp(0, width - 1)[:, None, :]).flatten(1)
        inside = inside.to(source.dtype).unsqueeze(1)                                      # [B, 1, S, S]

        def crop(image: torch.Tensor) -> torch.Tensor:                                     # [B, C, H, W] -> [B, C, S, S]
            flat = image.flatten(2).gather(2, index[:, None].expand(-1, image.shape[1], -1))
            return flat.view(batch, image.shape[1], self.window, self.window) * inside

        features = crop(source)
        for layer in self.net:
            features = layer(features)
            if isinstance(layer, nn.ELU):
                features = features * inside      # outside the image a layer's output is zero padding
        window_footprint = crop(footprint)
        return (features * window_footprint).sum((1, 2, 3)) / window_footprint.sum((1, 2, 3)).clamp(min=1.0)

    def _window_pixels(self, footprint: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows and columns [B, S] of each video's window: its footprint's top-left pixel minus REACH onwards
        (argmax finds the first row and column that hold the footprint; an empty footprint reads nothing)."""
        steps = torch.arange(self.window, device=footprint.device)
        first_row = footprint.amax(3).squeeze(1).argmax(1)                                 # [B]
        first_col = footprint.amax(2).squeeze(1).argmax(1)
        return first_row[:, None] - REACH + steps, first_col[:, None] - REACH + steps
