"""FlowUNet: the poke and the image in, the forward flow of every frame out, the source carried along it.

    model = FlowUNet(cfg)                                        # cfg: a FlowModelConfig
    flows = model.forward_flows(source, poke)                    # [B, T, 2, H, W] px, source -> frame t
    prediction = model.predict(source, poke_map, steps=T, poke=poke)   # + the video, rendered

A UNet (`cfg.unet_channels`, one entry per scale, full resolution first, each scale half the one before)
reads the source frame and, at every scale, the poke drawn as channels (`poke_channels`): a Gaussian at the
poked pixel and at its target, the drag inside the first, coordinates relative to the poked pixel, and the
drag itself. Several pokes at once: the Gaussian channels are summed over the pokes, and the relative
coordinates and the drag are those of the poke whose source is nearest to each pixel (one poke gives
exactly the channels above). A model with `cfg.pin_input` reads one more channel, a Gaussian at every pin
(`pin_channel`); a model without it has no such weights and leaves pins to the renderer (`pins.py`). Skips join every scale of the encoder to the decoder, so thin parts keep their shape.
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


def as_poke_list(poke: torch.Tensor) -> torch.Tensor:
    """One poke per item [B, 4+] (x, y, dx, dy, ...) or several [B, N, 5] (x, y, dx, dy, present: 1 a poke,
    0 padding) -> [B, N, 5]."""
    if poke.dim() == 3:
        return poke[..., :5]
    return torch.cat([poke[:, None, :4], torch.ones_like(poke[:, None, :1])], dim=2)


def _grid(resolution: int, height: int, width: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(x [w], y [h] of a height x width grid's pixel centres in the `resolution` px frame, Gaussian sigma)."""
    step_y, step_x = resolution / height, resolution / width
    grid_y = (torch.arange(height, device=like.device, dtype=like.dtype) + 0.5) * step_y - 0.5
    grid_x = (torch.arange(width, device=like.device, dtype=like.dtype) + 0.5) * step_x - 0.5
    return grid_x, grid_y, SIGMA_PX * max(step_x, step_y)


def poke_channels(poke: torch.Tensor, resolution: int, height: int, width: int) -> torch.Tensor:
    """poke [B, 4+] or pokes [B, N, 5] (`as_poke_list`; x, y, dx, dy in pixels of the `resolution` px frame)
    -> [B, POKE_CHANNELS, height, width] on a grid of height x width over the same frame: Gaussians at the
    sources and targets, each drag in its source's Gaussian (summed over the pokes), x and y relative to the
    nearest poked pixel (in units of the frame's side) and that poke's drag everywhere."""
    pokes = as_poke_list(poke)
    x, y, dx, dy, present = (pokes[..., i, None, None] for i in range(5))                  # [B, N, 1, 1]
    grid_x, grid_y, sigma = _grid(resolution, height, width, poke)
    rel_x, rel_y = grid_x.view(1, 1, 1, -1) - x, grid_y.view(1, 1, -1, 1) - y              # [B, N, 1, w], [B, N, h, 1]
    distance2 = rel_x ** 2 + rel_y ** 2                                                    # [B, N, h, w]
    at_source = torch.exp(-distance2 / (2 * sigma ** 2)) * present
    at_target = torch.exp(-((rel_x - dx) ** 2 + (rel_y - dy) ** 2) / (2 * sigma ** 2)) * present
    nearest = (distance2 + (1 - present) * 1e12).argmin(dim=1, keepdim=True)              # [B, 1, h, w]
    full = distance2.shape

    def at_nearest(value: torch.Tensor) -> torch.Tensor:
        return value.expand(full).gather(1, nearest)[:, 0]                                 # [B, h, w]

    near_dx, near_dy = at_nearest(dx), at_nearest(dy)
    channels = [at_source.sum(1), at_target.sum(1), (at_source * dx).sum(1) / DRAG_SCALE,
                (at_source * dy).sum(1) / DRAG_SCALE, 2 * at_nearest(rel_x) / resolution,
                2 * at_nearest(rel_y) / resolution, near_dx / DRAG_SCALE, near_dy / DRAG_SCALE]
    return torch.stack(channels, dim=1)


def pin_channel(pins: torch.Tensor | None, batch: int, resolution: int, height: int, width: int,
                like: torch.Tensor) -> torch.Tensor:
    """pins [B, M, 3] (x, y in pixels of the `resolution` px frame, present: 1 a pin, 0 padding) or None ->
    [B, 1, height, width]: the sum of a Gaussian at every pin (zeros without pins)."""
    if pins is None or pins.shape[1] == 0:
        return like.new_zeros(batch, 1, height, width)
    grid_x, grid_y, sigma = _grid(resolution, height, width, like)
    x, y, present = (pins[..., i, None, None] for i in range(3))                            # [B, M, 1, 1]
    distance2 = (grid_x.view(1, 1, 1, -1) - x) ** 2 + (grid_y.view(1, 1, -1, 1) - y) ** 2
    return (torch.exp(-distance2 / (2 * sigma ** 2)) * present).sum(1, keepdim=True)


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
        drawn = POKE_CHANNELS + (1 if cfg.pin_input else 0)        # channels drawn at every scale
        self.down = nn.ModuleList(
            conv_block((3 if i == 0 else widths[i - 1]) + drawn, width, stride=1 if i == 0 else 2)
            for i, width in enumerate(widths))
        self.up = nn.ModuleList(
            conv_block(widths[i + 1] + widths[i] + drawn, widths[i]) for i in range(len(widths) - 1))
        self.head = nn.Conv2d(widths[0], 2 * cfg.time_basis + 1, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.basis = nn.Parameter(initial_basis(cfg.time_basis, cfg.frames))   # [K, T]

    def drawn(self, poke: torch.Tensor, pins: torch.Tensor | None, height: int, width: int) -> torch.Tensor:
        """The poke (and, with cfg.pin_input, the pins) drawn as channels on a height x width grid."""
        channels = poke_channels(poke, self.cfg.resolution, height, width)
        if not self.cfg.pin_input:
            return channels
        pinned = pin_channel(pins, len(poke), self.cfg.resolution, height, width, channels)
        return torch.cat([channels, pinned], dim=1)

    def heads(self, source_frame: torch.Tensor, poke: torch.Tensor,
              pins: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """source [B, 3, H, W] in [-1, 1], poke [B, 4+] or pokes [B, N, 5], pins [B, M, 3] or None (read only
        with cfg.pin_input) -> (coefficients [B, K, 2, H, W] px, moves logit [B, 1, H, W])."""
        features, skips = source_frame, []
        for block in self.down:     # the poke drawn at each block's input size
            features = block(torch.cat([features, self.drawn(poke, pins, *features.shape[-2:])], dim=1))
            skips.append(features)
        for block, skip in zip(reversed(self.up), reversed(skips[:-1])):
            features = F.interpolate(features, size=skip.shape[-2:], mode="nearest")
            features = block(torch.cat([features, skip, self.drawn(poke, pins, *skip.shape[-2:])], dim=1))
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
                      with_logit: bool = False, pins: torch.Tensor | None = None):
        """source [B, 3, H, W], poke [B, 4+] or pokes [B, N, 5], pins [B, M, 3] or None -> forward flows
        [B, T, 2, H, W] px (and the moves logit)."""
        steps = self.cfg.frames if steps is None else steps
        coefficients, moves_logit = self.heads(source_frame, poke, pins)
        flows = torch.einsum("bkchw,kt->btchw", coefficients, self.time_basis(steps))
        flows = flows * torch.sigmoid(moves_logit)[:, None]
        return (flows, moves_logit) if with_logit else flows

    def predict(self, source_frame: torch.Tensor, poke_map: torch.Tensor | None = None, steps: int | None = None,
                poke: torch.Tensor | None = None, pins: torch.Tensor | None = None):
        """The common model interface (`PokeModel.predict`): needs `poke` [B, 4+] or [B, N, 5]; the poke map
        is not read; `pins` [B, M, 3] only by a model with cfg.pin_input."""
        if poke is None:
            raise ValueError("FlowUNet.predict needs the poke (x, y, dx, dy)")
        flows = self.forward_flows(source_frame, poke, steps, pins=pins)
        video = render_video(source_frame, flows)
        return Prediction(video, [], forward_flow=flows)

    def forward(self, source_frame: torch.Tensor, poke_map: torch.Tensor | None = None, steps: int | None = None,
                poke: torch.Tensor | None = None):
        prediction = self.predict(source_frame, poke_map, steps, poke)
        return prediction.video, prediction.states
