"""A small coarse-to-fine optical flow network for the CPU (0.2 M parameters).

Both frames go through one feature pyramid (1/2 to 1/16 of the frame). At the coarsest level every feature of
the first frame is compared with the second frame's within 3 cells either way (a 7x7 cost volume), and a few
convolutions read the flow off it. Each finer level doubles that flow, warps the second frame's features by
it, compares again within 3 cells and adds a correction, so a part that moves 50 px is found at 1/16 and its
outline placed at 1/2. The flow at 1/2 is enlarged to the frame's size.

Flow follows the project's convention: float [B, 2, H, W], x then y, in pixels of the input frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RADIUS = 3                      # the cost volume compares displacements of -RADIUS..RADIUS cells each way
LEVELS = (16, 32, 48, 64)       # feature channels at 1/2, 1/4, 1/8 and 1/16 of the frame
STRIDE = 2 ** len(LEVELS)       # frame sides must be a multiple of this


def conv(channels_in: int, channels_out: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, stride, 1), nn.LeakyReLU(0.1))


def cost_volume(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] twice -> [B, (2R+1)^2, h, w]: the cosine similarity of each first feature vector with the
    second's at every displacement within RADIUS cells (1 where they match, whatever their scale)."""
    height, width = first.shape[2:]
    first = F.normalize(first, dim=1)
    padded = F.pad(F.normalize(second, dim=1), [RADIUS] * 4)
    costs = [(first * padded[:, :, dy:dy + height, dx:dx + width]).sum(1)
             for dy in range(2 * RADIUS + 1) for dx in range(2 * RADIUS + 1)]
    return torch.stack(costs, 1)


def warp(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `features` [B, C, h, w] at each cell plus `flow` [B, 2, h, w] (in cells); zero outside."""
    batch, _, height, width = features.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=flow.dtype, device=flow.device),
                            torch.arange(width, dtype=flow.dtype, device=flow.device), indexing="ij")
    x = (xs + flow[:, 0]) * (2 / max(width - 1, 1)) - 1
    y = (ys + flow[:, 1]) * (2 / max(height - 1, 1)) - 1
    return F.grid_sample(features, torch.stack([x, y], -1), align_corners=True, padding_mode="zeros")


class FlowNet(nn.Module):
    """Two uint8-range RGB frames [B, 3, H, W] -> flow [B, 2, H, W] (and, in training, one per level)."""

    def __init__(self):
        super().__init__()
        self.pyramid = nn.ModuleList()
        channels_in = 3
        for channels in LEVELS:
            self.pyramid.append(nn.Sequential(conv(channels_in, channels, 2), conv(channels, channels)))
            channels_in = channels
        costs = (2 * RADIUS + 1) ** 2
        self.decoders = nn.ModuleList(
            nn.Sequential(conv(costs + channels + (0 if top else 2), 64), conv(64, 48), conv(48, 32),
                          nn.Conv2d(32, 2, 3, 1, 1))
            for channels, top in zip(LEVELS, [False] * (len(LEVELS) - 1) + [True]))

    def features(self, frame: torch.Tensor) -> list[torch.Tensor]:
        levels, x = [], frame
        for block in self.pyramid:
            x = block(x)
            levels.append(x)
        return levels

    def forward(self, first: torch.Tensor, second: torch.Tensor, all_levels: bool = False):
        height, width = first.shape[2:]
        if height % STRIDE or width % STRIDE:
            raise ValueError(f"frame sides must be multiples of {STRIDE}, got {width}x{height}")
        # both frames scaled by the pair's own brightness and contrast, so faint textures count as strong ones
        both = torch.cat([first, second], 2)
        mean, std = both.mean((2, 3), keepdim=True), both.std((2, 3), keepdim=True).clamp(min=1.0)
        pyramid_a, pyramid_b = self.features((first - mean) / std), self.features((second - mean) / std)
        flow, flows = None, []
        for level in reversed(range(len(LEVELS))):
            scale = 2 ** (level + 1)                      # frame pixels per cell at this level
            feat_a, feat_b = pyramid_a[level], pyramid_b[level]
            if flow is None:
                inputs = [cost_volume(feat_a, feat_b), feat_a]
            else:
                flow = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=False)
                inputs = [cost_volume(feat_a, warp(feat_b, flow / scale)), feat_a, flow / scale]
            correction = self.decoders[level](torch.cat(inputs, 1)) * scale
            flow = correction if flow is None else flow + correction
            flows.append(flow)
        full = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False)
        return (full, flows) if all_levels else full
