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


# Sampling training pokes from flow ---------------------------------------------------------------

def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    """|F| float32 [H, W] of flow [2, H, W]."""
    flow = np.asarray(flow, np.float32)
    return np.hypot(flow[0], flow[1])


def inner_region(shape: tuple[int, int], margin: int) -> np.ndarray:
    """bool [H, W]: pixels at least `margin` from the border (the whole image if that leaves none)."""
    height, width = shape
    region = np.zeros(shape, bool)
    if 2 * margin < min(height, width):
        region[margin:height - margin, margin:width - margin] = True
    else:
        region[:] = True
    return region


def foreground_mask(magnitude: np.ndarray, margin: int) -> np.ndarray:
    """bool [H, W]: magnitude above mean + 2 std, else mean + std, else mean, inside the margin.

    When even the mean leaves no inner pixel (a uniform map), the largest inner magnitudes are used.
    """
    region = inner_region(magnitude.shape, margin)
    mean, std = float(magnitude.mean()), float(magnitude.std())
    for threshold in (mean + 2 * std, mean + std, mean):
        mask = region & (magnitude > threshold)
        if mask.any():
            return mask
    return region & (magnitude >= magnitude[region].max())


def background_mask(magnitude: np.ndarray, margin: int, percentile: float) -> np.ndarray:
    """bool [H, W]: inner pixels whose magnitude is at or below the inner `percentile`."""
    region = inner_region(magnitude.shape, margin)
    return region & (magnitude <= np.percentile(magnitude[region], percentile))


def pick_pixel(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly chosen (x, y) among the True pixels of `mask`."""
    ys, xs = np.nonzero(mask)
    i = int(rng.integers(len(xs)))
    return int(xs[i]), int(ys[i])


def sample_poke(flow: np.ndarray, poke_size: int, rng: np.random.Generator, *, background: bool,
                background_percentile: float = 10.0) -> tuple[tuple[int, int], tuple[float, float]]:
    """((x, y), (dx, dy)) from clip flow [2, H, W].

    Foreground: a moving pixel and its own flow. Background: a still pixel carrying the flow vector
    (magnitude and angle) of a randomly chosen foreground pixel.
    """
    magnitude = flow_magnitude(flow)
    foreground = foreground_mask(magnitude, poke_size)
    fx, fy = pick_pixel(foreground, rng)
    displacement = (float(flow[0, fy, fx]), float(flow[1, fy, fx]))
    if not background:
        return (fx, fy), displacement
    return pick_pixel(background_mask(magnitude, poke_size, background_percentile), rng), displacement


def impulse_vector(displacement, strength: float) -> tuple[float, float]:
    """Appendix B: the displacement's direction scaled to `strength` in [0, 1]."""
    dx, dy = (float(v) for v in displacement)
    norm = float(np.hypot(dx, dy))
    if norm == 0.0:
        return 0.0, 0.0
    strength = float(np.clip(strength, 0.0, 1.0))
    return dx / norm * strength, dy / norm * strength
