"""FlowUNet: the poke and the image in, the forward flow of every frame out, the source carried along it.

    model = FlowUNet(cfg)                                        # cfg: a FlowModelConfig
    flows = model.forward_flows(source, poke)                    # [B, T, 2, H, W] px, source -> frame t
    prediction = model.predict(source, poke_map, steps=T, poke=poke)   # + the video, rendered

A UNet (`cfg.unet_channels`, one entry per scale, full resolution first, each scale half the one before)
reads the source frame and, at every scale, the poke drawn as channels (`poke_channels`): a Gaussian at the
poked pixel and at its target, the drag inside the first, coordinates relative to the poked pixel, and the
drag itself. Skips join every scale of the encoder to the decoder, so thin parts keep their shape.
The head gives, per pixel, `cfg.time_basis` flow vectors and a "moves" logit: the flow at frame t is
sigmoid(moves) * sum_k coefficient_k * basis[k, t], the basis being a learned [K, T] table of curves over
time (a clip's motion is nearly a combination of a few curves). Frames come from `render.render_video`, the
source pixels carried along the flow, so a pixel that does not move is the source's own.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from poke2video.flow_config import FlowModelConfig
from poke2video.model.prediction import Prediction
from poke2video.model.render import render_video

POKE_CHANNELS = 8
FLOW_SCALE = 4.0      # px per unit of the head's flow coefficients
DRAG_SCALE = 8.0      # px: drags are fed to the network divided by this
SIGMA_PX = 1.5        # width of the poke's Gaussians, in pixels of the scale they are drawn at


def poke_channels(poke: torch.Tensor, resolution: int, height: int, width: int) -> torch.Tensor:
    """poke [B, 4+] (x, y, dx, dy in pixels of the `resolution` px frame) -> [B, POKE_CHANNELS, height, width]
    on a grid of height x width over the same frame: Gaussians at source and target, the drag in the source's
    Gaussian, x and y relative to the poked pixel (in units of the frame's side), the drag everywhere."""
    x, y, dx, dy = (poke[:, i].view(-1, 1, 1) for i in range(4))
    step_y, step_x = resolution / height, resolution / width
    grid_y = (torch.arange(height, device=poke.device, dtype=poke.dtype) + 0.5) * step_y - 0.5
    grid_x = (torch.arange(width, device=poke.device, dtype=poke.dtype) + 0.5) * step_x - 0.5
    rel_x, rel_y = grid_x.view(1, 1, -1) - x, grid_y.view(1, -1, 1) - y                     # [B, h, w]
    sigma = SIGMA_PX * max(step_x, step_y)
    at_source = torch.exp(-(rel_x ** 2 + rel_y ** 2) / (2 * sigma ** 2))
    at_target = torch.exp(-((rel_x - dx) ** 2 + (rel_y - dy) ** 2) / (2 * sigma ** 2))
    ones = torch.ones_like(at_source)
    channels = [at_source, at_target, at_source * dx / DRAG_SCALE, at_source * dy / DRAG_SCALE,
                2 * rel_x / resolution * ones, 2 * rel_y / resolution * ones, ones * dx / DRAG_SCALE, ones * dy / DRAG_SCALE]
    return torch.stack(channels, dim=1)


def conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Two 3x3 convolutions with GroupNorm and SiLU; the first may halve the resolution."""
    groups = math.gcd(8, out_channels)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.GroupNorm(groups, out_channels),
                         nn.SiLU(), nn.Conv2d(out_channels, out_channels, 3, 1, 1),
                         nn.GroupNorm(groups, out_channels), nn.SiLU())


def initial_basis(curves: int, steps: int) -> torch.Tensor:
    """[K, T]: t/T, then half sine waves of rising frequency (the start of a learned basis)."""
    t = torch.arange(1, steps + 1, dtype=torch.float32) / steps
    rows = [t] + [torch.sin(math.pi * k * t) for k in range(1, curves)]
    return torch.stack(rows)


class FlowUNet(nn.Module):
    def __init__(self, cfg: FlowModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        widths = cfg.unet_channels
        self.down = nn.ModuleList(
            conv_block((3 if i == 0 else widths[i - 1]) + POKE_CHANNELS, width, stride=1 if i == 0 else 2)
            for i, width in enumerate(widths))
        self.up = nn.ModuleList(
            conv_block(widths[i + 1] + widths[i] + POKE_CHANNELS, widths[i]) for i in range(len(widths) - 1))
        self.head = nn.Conv2d(widths[0], 2 * cfg.time_basis + 1, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.basis = nn.Parameter(initial_basis(cfg.time_basis, cfg.frames))   # [K, T]

    def heads(self, source_frame: torch.Tensor, poke: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """source [B, 3, H, W] in [-1, 1], poke [B, 4+] -> (coefficients [B, K, 2, H, W] px, moves logit
        [B, 1, H, W])."""
        res = self.cfg.resolution
        features, skips = source_frame, []
        for block in self.down:     # the poke drawn at each block's input size
            features = block(torch.cat([features, poke_channels(poke, res, *features.shape[-2:])], dim=1))
            skips.append(features)
        for block, skip in zip(reversed(self.up), reversed(skips[:-1])):
            features = F.interpolate(features, size=skip.shape[-2:], mode="nearest")
            features = block(torch.cat([features, skip, poke_channels(poke, res, *skip.shape[-2:])], dim=1))
        out = self.head(features)
        coefficients = FLOW_SCALE * out[:, :-1].unflatten(1, (self.cfg.time_basis, 2))
        return coefficients, out[:, -1:]

    def time_basis(self, steps: int) -> torch.Tensor:
        """[K, steps]: the learned basis, resampled in time when `steps` differs from cfg.frames."""
        if steps == self.basis.shape[1]:
            return self.basis
        padded = torch.cat([self.basis.new_zeros(self.basis.shape[0], 1), self.basis], dim=1)[None]   # t = 0..T
        resampled = F.interpolate(padded, size=steps + 1, mode="linear", align_corners=True)[0]
        return resampled[:, 1:]

    def forward_flows(self, source_frame: torch.Tensor, poke: torch.Tensor, steps: int | None = None,
                      with_logit: bool = False):
        """source [B, 3, H, W], poke [B, 4+] -> forward flows [B, T, 2, H, W] px (and the moves logit)."""
        steps = self.cfg.frames if steps is None else steps
        coefficients, moves_logit = self.heads(source_frame, poke)
        flows = torch.einsum("bkchw,kt->btchw", coefficients, self.time_basis(steps))
        flows = flows * torch.sigmoid(moves_logit)[:, None]
        return (flows, moves_logit) if with_logit else flows

    def predict(self, source_frame: torch.Tensor, poke_map: torch.Tensor | None = None, steps: int | None = None,
                poke: torch.Tensor | None = None):
        """The common model interface (`PokeModel.predict`): needs `poke` [B, 4+]; the poke map is not read."""
        if poke is None:
            raise ValueError("FlowUNet.predict needs the poke (x, y, dx, dy)")
        flows = self.forward_flows(source_frame, poke, steps)
        video = render_video(source_frame, flows)
        return Prediction(video, [], forward_flow=flows)

    def forward(self, source_frame: torch.Tensor, poke_map: torch.Tensor | None = None, steps: int | None = None,
                poke: torch.Tensor | None = None):
        prediction = self.predict(source_frame, poke_map, steps, poke)
        return prediction.video, prediction.states
