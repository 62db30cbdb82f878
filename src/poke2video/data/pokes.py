"""Pokes: the poke map the model reads, and (below) sampling training pokes from optical flow.

A poke is a source pixel `(x, y)` and a displacement `(dx, dy)` in pixels of the model's resolution.
The poke map is float32 [2, H, W]: zeros except a `poke_size` square centred on the source pixel that
holds dx (channel 0) and dy (channel 1) (PAPER.md, "Poke map").
"""
from __future__ import annotations

import numpy as np


def make_poke_map(resolution: int, source_xy, displacement_xy, poke_size: int) -> np.ndarray:
    """float32 [2, H, W] with `displacement_xy` in the square of side `poke_size` around `source_xy`.

    The square is clipped at the image border; `source_xy` is rounded to the nearest pixel.
    """
    x, y = (int(round(float(v))) for v in source_xy)
    half = poke_size // 2
    poke_map = np.zeros((2, resolution, resolution), np.float32)
    y0, y1 = max(0, y - half), min(resolution, y + half + 1)
    x0, x1 = max(0, x - half), min(resolution, x + half + 1)
    poke_map[0, y0:y1, x0:x1] = float(displacement_xy[0])
    poke_map[1, y0:y1, x0:x1] = float(displacement_xy[1])
    return poke_map
