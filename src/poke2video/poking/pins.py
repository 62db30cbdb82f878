"""Pins at render time: any flow model's flow scaled to zero at the pinned pixels, with a smooth falloff.

Whether or not a model reads pins (`FlowModelConfig.pin_input`; the bundled one does), `Poker` also holds
a pinned pixel itself, so it stays put exactly: the predicted flow of every frame is multiplied by

    hold(p) = prod over pins q of smoothstep((|p - q| - PIN_HOLD_PX) / (reach - PIN_HOLD_PX)),
    reach = PIN_REACH_FRACTION * resolution (at least PIN_HOLD_PX + 1),  smoothstep(u) = u^2 (3 - 2u) on [0, 1]

on the model's grid (pixels of the model's frame). Within PIN_HOLD_PX of a pin the flow is exactly zero:
1.5 px covers the four grid pixels any bilinear upsampling reads at the pin (they lie within sqrt(2) px of
it), so the pinned pixel of an image of any size has a flow of exactly zero in every frame. From there
the flow returns smoothly to the model's own by `reach`, a tenth of the frame (6 px at 64 px): about a
segment's width in PokeSim, so the held part stays still around the pin without a tear at its edge,
while motion a few segments away is left as the model made it. A real pin holds a whole segment and
what lies above it (sim/physics.py); for a model without a pin channel this falloff is all it gets, a
model with one has learned the rest from `simulate --max-pins` clips.
"""
from __future__ import annotations

import torch

PIN_HOLD_PX = 1.5           # model px around a pin where the flow is exactly zero
PIN_REACH_FRACTION = 0.1    # of the model's side: where the flow is the model's own again


def pin_reach(resolution: int) -> float:
    """Model px from a pin at which its hold ends."""
    return max(PIN_REACH_FRACTION * resolution, PIN_HOLD_PX + 1.0)


def hold_factor(pins: list[tuple[float, float]], resolution: int) -> torch.Tensor:
    """float32 [R, R]: the factor in [0, 1] the flow is multiplied by (1 everywhere without pins)."""
    grid_y, grid_x = torch.meshgrid(torch.arange(resolution, dtype=torch.float32),
                                    torch.arange(resolution, dtype=torch.float32), indexing="ij")
    factor = torch.ones(resolution, resolution)
    reach = pin_reach(resolution)
    for x, y in pins:
        distance = torch.hypot(grid_x - float(x), grid_y - float(y))
        u = ((distance - PIN_HOLD_PX) / (reach - PIN_HOLD_PX)).clamp(0.0, 1.0)
        factor = factor * u * u * (3 - 2 * u)
    return factor


def hold_pins(flows: torch.Tensor, pins: list[tuple[float, float]]) -> torch.Tensor:
    """Forward flows [T, 2, R, R] (model px) with every pin (x, y in model px) held (unchanged without pins)."""
    if not pins:
        return flows
    return flows * hold_factor(pins, flows.shape[-1]).to(flows.device, flows.dtype)
