"""Poke anchoring: turn and stretch a warp model's flows so that the poked pixel ends on the drag's target.

A warp model (`output: warp`) puts the poked pixel p of the source wherever its backward flow of the last
frame leads back to p: at the q with q + B_T(q) = p. A model that has learnt which part moves still leaves
that end point a little short of the drag or a little off its direction. Anchoring (`model.poke_anchor`)
finds the end point by the fixed-point iteration q <- p - B_T(q), starting at the target, and multiplies
the flow of every frame by one complex number per video, c = drag / (q - p): a rotation and a scale
that carry q onto the target and keep the shape of the motion (which part moves, and when). The model
still decides what moves: a video whose poked pixel moves less than `min_motion` of the drag
(`model.anchor_min_motion`; 1 / `max_gain` where unset) is left as it is. c stretches and shrinks by at
most `max_gain` (`model.anchor_max_gain`), so a video that moves less than 1 / `max_gain` of the drag is
stretched by `max_gain` and still falls short, and c turns by at most `MAX_TURN`. README, "Training" ->
"Poke anchoring", has the measurements that chose these limits.

Flows are backward flows in pixels (x, y), [T, N, 2, H, W] for T frames of N videos (time first, as the
decoder makes them); pokes are [N, 4] = (x, y, dx, dy) in the same pixels.
"""
from __future__ import annotations

import math

import torch

from poke2video.model.warping import sample_points

ITERATIONS = 10          # fixed-point steps: 20 moved the end point by at most 0.06 px on 150 clips
MAX_TURN = math.pi / 4   # the angle of c is limited to [-MAX_TURN, MAX_TURN]


def own_displacement(last_flow: torch.Tensor, poke: torch.Tensor) -> torch.Tensor:
    """Where the backward flow of the last frame [N, 2, H, W] takes the poked pixel: q - p [N, 2]."""
    source, drag = poke[:, :2], poke[:, 2:4]
    end = source + drag
    for _ in range(ITERATIONS):
        end = source - sample_points(last_flow, end)
    return end - source


def anchor_factor(own: torch.Tensor, drag: torch.Tensor, max_gain: float, min_motion: float) -> torch.Tensor:
    """c = drag / own as complex numbers [N, 2] = (real, imaginary), limited to 1 / max_gain <= |c| <= max_gain;
    (1, 0), no anchoring, where the poked pixel moves less than min_motion of the drag (or not at all)."""
    own_length, drag_length = own.norm(dim=1), drag.norm(dim=1)
    own_complex = torch.complex(own[:, 0], own[:, 1])
    own_complex = torch.where(own_length > 0, own_complex, torch.ones_like(own_complex))   # no 0 / 0
    wanted = torch.complex(drag[:, 0], drag[:, 1]) / own_complex
    gain = wanted.abs().clamp(1.0 / max_gain, max_gain)
    turn = wanted.angle().clamp(-MAX_TURN, MAX_TURN)
    factor = torch.stack([gain * torch.cos(turn), gain * torch.sin(turn)], dim=1)
    moves = (own_length >= min_motion * drag_length) & (drag_length > 0) & (own_length > 0)
    return torch.where(moves[:, None], factor, factor.new_tensor([1.0, 0.0]))


def anchor_flows(flows: torch.Tensor, poke: torch.Tensor, max_gain: float, min_motion: float) -> torch.Tensor:
    """flows [T, N, 2, H, W] (every frame of each video) and poke [N, 4] -> the anchored flows, same shape."""
    own = own_displacement(flows[-1].float(), poke.float())
    factor = anchor_factor(own, poke[:, 2:4].float(), max_gain, min_motion)
    real, imag = (factor[:, i].to(flows.dtype).view(1, -1, 1, 1) for i in range(2))
    x, y = flows[:, :, 0], flows[:, :, 1]
    return torch.stack([real * x - imag * y, imag * x + real * y], dim=2)
