"""Left-right mirroring of the flow network's inputs and outputs: the one definition that training's flips
(`train.flip`) and `Poker`'s mirror averaging (`model.mirror_average`) share, so that both mirror alike.
A pixel column x goes to W - 1 - x."""
from __future__ import annotations

import torch


def mirror_maps(tensor: torch.Tensor, vectors: bool = False) -> torch.Tensor:
    """Maps [..., H, W] flipped left-right; with `vectors` ((x, y) along dim -3, as in flows [.., 2, H, W]) the x
    component negated too."""
    out = tensor.flip(-1)
    if vectors:
        out = out * torch.tensor([-1.0, 1.0], device=tensor.device, dtype=out.dtype).view(2, 1, 1)
    return out


def mirror_points(points: torch.Tensor, width: int, has_drag: bool) -> torch.Tensor:
    """Rows [..., k] of (x, y[, dx, dy], ...) in an image `width` px wide, mirrored: x -> width - 1 - x and,
    with `has_drag`, dx -> -dx."""
    out = points.clone()
    out[..., 0] = width - 1 - out[..., 0]
    if has_drag:
        out[..., 2] = -out[..., 2]
    return out
