"""Pokes: the poke map the model reads, and (below) sampling training pokes from optical flow.

A poke is a source pixel `(x, y)` and a displacement `(dx, dy)` in pixels of the model's resolution.
The poke map is float32 [2, H, W]: zeros except a `poke_size` square centred on the source pixel that
holds dx (channel 0) and dy (channel 1) (docs/architecture.md, "Poke map"). Several pokes at once give the
sum of their maps (`make_pokes_map`): where two squares overlap, their displacements add.
"""
from __future__ import annotations

import cv2
import numpy as np

from poke2video.config import ONSET_SPEED   # the onset region's default speed fraction (PokeConfig's)


def make_poke_map(resolution: int, source_xy, displacement_xy, poke_size: int) -> np.ndarray:
    """float32 [2, H, W] with `displacement_xy` in the square of side `poke_size` around `source_xy`.

    The square is clipped at the image border (a source far outside leaves the map zero); `source_xy` is
    rounded to the nearest pixel. `poke_size` must be odd and positive, the values finite (else ValueError).
    """
    if not (isinstance(poke_size, (int, np.integer)) and poke_size >= 1 and poke_size % 2 == 1):
        raise ValueError(f"poke_size must be a positive odd integer, got {poke_size!r}")
    values = [float(v) for v in (*source_xy, *displacement_xy)]
    if len(values) != 4 or not np.isfinite(values).all():
        raise ValueError(f"poke source and displacement must be two finite numbers each, got "
                         f"{tuple(source_xy)!r} and {tuple(displacement_xy)!r}")
    with np.errstate(over="ignore"):
        fits = np.isfinite(np.float32(values[2:])).all()
    if not fits:
        raise ValueError(f"poke displacement {tuple(displacement_xy)!r} does not fit in float32")
    x, y = (int(round(v)) for v in values[:2])
    half = poke_size // 2
    poke_map = np.zeros((2, resolution, resolution), np.float32)
    y0, y1 = (min(max(v, 0), resolution) for v in (y - half, y + half + 1))   # clipped, never wrapped
    x0, x1 = (min(max(v, 0), resolution) for v in (x - half, x + half + 1))
    poke_map[0, y0:y1, x0:x1] = float(displacement_xy[0])
    poke_map[1, y0:y1, x0:x1] = float(displacement_xy[1])
    return poke_map


def make_pokes_map(resolution: int, pokes, poke_size: int) -> np.ndarray:
    """float32 [2, H, W]: the sum of `make_poke_map` of every (source_xy, displacement_xy) in `pokes`."""
    poke_map = np.zeros((2, resolution, resolution), np.float32)
    for source_xy, displacement_xy in pokes:
        poke_map += make_poke_map(resolution, source_xy, displacement_xy, poke_size)
    return poke_map


# Sampling training pokes from flow ---------------------------------------------------------------

def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    """|F| float32 [H, W] of flow [2, H, W]; finite for finite flow (computed in float64, capped at float32's max)."""
    flow = np.asarray(flow, np.float64)
    with np.errstate(over="ignore"):
        return np.minimum(np.hypot(flow[0], flow[1]), np.finfo(np.float32).max).astype(np.float32)


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
    mean, std = magnitude.mean(dtype=np.float64), magnitude.std(dtype=np.float64)   # float64: no overflow
    for threshold in (mean + 2 * std, mean + std, mean):
        mask = region & (magnitude > threshold)
        if mask.any():
            return mask
    return region & (magnitude >= magnitude[region].max())


def background_mask(magnitude: np.ndarray, margin: int, percentile: float) -> np.ndarray:
    """bool [H, W]: inner pixels whose magnitude is at or below the inner `percentile`."""
    region = inner_region(magnitude.shape, margin)
    return region & (magnitude <= np.percentile(magnitude[region], percentile))


ONSET_COSINE = 0.7    # the onset region: pixels moving within about 45 degrees of the fastest one's direction


def motion_onset(start_flow: np.ndarray, margin: int, speed_fraction: float = ONSET_SPEED) -> np.ndarray:
    """bool [H, W]: where the motion starts in `start_flow` [2, H, W] (the clip's first frame step).

    The inner pixels (`margin` from the border) connected, 8-neighbourly, to the one that moves most and moving
    its way (cosine over ONSET_COSINE) at least `speed_fraction` as fast: the part that leads the motion, from
    near its joint (a part turning about its joint moves slower there) to its tip. All False when nothing
    moves in the first step.
    """
    start_flow = np.asarray(start_flow)
    if start_flow.ndim != 3 or start_flow.shape[0] != 2 or not np.isfinite(start_flow).all():
        raise ValueError(f"start_flow must be a finite [2, H, W] flow, got shape {start_flow.shape}")
    inner = inner_region(start_flow.shape[1:], margin)
    speed = np.where(inner, flow_magnitude(start_flow), 0.0)
    y0, x0 = np.unravel_index(int(speed.argmax()), speed.shape)
    if speed[y0, x0] <= 0:
        return np.zeros(speed.shape, bool)
    direction = start_flow[:, y0, x0] / speed[y0, x0]
    cosine = (start_flow[0] * direction[0] + start_flow[1] * direction[1]) / np.maximum(speed, 1e-6)
    together = inner & (speed >= speed_fraction * speed[y0, x0]) & (cosine > ONSET_COSINE)
    _, labels = cv2.connectedComponents(together.astype(np.uint8), connectivity=8)
    return labels == labels[y0, x0]


def pick_pixel(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly chosen (x, y) among the True pixels of `mask`."""
    ys, xs = np.nonzero(mask)
    i = int(rng.integers(len(xs)))
    return int(xs[i]), int(ys[i])


def sample_poke(flow: np.ndarray, poke_size: int, rng: np.random.Generator, *, background: bool,
                background_percentile: float = 10.0, fastest_fraction: float = 0.0,
                start_flow: np.ndarray | None = None,
                onset_speed: float = ONSET_SPEED) -> tuple[tuple[int, int], tuple[float, float]]:
    """((x, y), (dx, dy)) from clip flow [2, H, W].

    Foreground: a moving pixel and its own flow; with `fastest_fraction` f > 0 only a pixel of the
    foreground moving at least f times its fastest pixel (a part that moves little is more often moved by
    another one than pushed itself). With `start_flow` (the flow [2, H, W] from the clip's first frame to
    its second) the pixel is instead drawn from where the motion starts (`motion_onset` at `onset_speed`),
    with its flow at frame T; the moving foreground when nothing moves in the first step. Background: a still pixel
    carrying the flow vector (magnitude and angle) of the foreground pixel. Both lie at least `poke_size`
    from the border where the image leaves room. ValueError for a flow that is not [2, H, W] or not finite.
    """
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[0] != 2 or flow.shape[1] < 1 or flow.shape[2] < 1:
        raise ValueError(f"flow must be [2, H, W] with H, W >= 1, got shape {flow.shape}")
    if not np.isfinite(flow).all():
        raise ValueError("flow has NaN or infinite values; a poke needs finite flow")
    magnitude = flow_magnitude(flow)
    foreground = motion_onset(start_flow, poke_size, onset_speed) if start_flow is not None else None
    if foreground is None or not foreground.any():
        foreground = foreground_mask(magnitude, poke_size)
        if fastest_fraction > 0:
            foreground &= magnitude >= fastest_fraction * magnitude[foreground].max()
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
