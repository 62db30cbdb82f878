"""Learning-free baselines, run by the same evaluator as the model.

A baseline is a callable (source_frame uint8 [H, W, 3], source_xy, target_xy, T) -> uint8 [T, H, W, 3],
the frames after the source frame (like the dataset's target video). `baseline_flow` gives the forward
flow its frames follow (same arguments -> float32 [T, 2, H, W], px, source -> frame t), for flow error.
- `static`: the source frame repeated T times (its poke endpoint error is the poke's own length; zero flow).
- `warp`: in the spirit of Hao et al. (2018): the source frame warped by a smooth displacement field
  spread from the poke, a Gaussian falloff around the source pixel, growing linearly in time to the
  full poke at frame T, so the poked pixel lands on the target (the field is its forward flow).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from poke2video.errors import UserError

Baseline = Callable[[np.ndarray, tuple, tuple, int], np.ndarray]
FlowFunction = Callable[[np.ndarray, tuple, tuple, int], np.ndarray]  # -> float32 forward flow [T, 2, H, W]


def static_baseline(source_frame: np.ndarray, source_xy, target_xy, frames: int) -> np.ndarray:
    """uint8 [T, H, W, 3]: the source frame, unchanged, T times."""
    return np.repeat(np.asarray(source_frame, np.uint8)[None], frames, axis=0)


def static_flow(source_frame: np.ndarray, source_xy, target_xy, frames: int) -> np.ndarray:
    """float32 [T, 2, H, W]: zero, the flow of `static_baseline`."""
    height, width = np.asarray(source_frame).shape[:2]
    return np.zeros((frames, 2, height, width), np.float32)


@dataclass(frozen=True)
class WarpConfig:
    falloff: float = 0.125  # Gaussian sigma of the displacement field, as a fraction of the image side
    max_stretch: float = 1.2  # sigma grows to at least |poke| / max_stretch so the warp never folds
    iterations: int = 30  # fixed-point steps that invert the forward field for backward sampling


class WarpBaseline:
    """Warp the source frame by d_t(p) = (t / T) * poke * exp(-|p - source|^2 / (2 sigma^2)).

    The field moves source pixels forward; frame t samples the source at the pixel p that lands on
    each output pixel q (q = p + d_t(p), solved by fixed-point iteration, a contraction because
    |poke| / sigma <= max_stretch < sqrt(e)), bilinearly, with replicated borders.
    """

    def __init__(self, config: WarpConfig = WarpConfig()):
        self.config = config

    def _field(self, shape, source_xy, target_xy) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        """(grid_x, grid_y [H, W], source [2], poke [2] = (dx, dy), sigma) of the field for an image of `shape`."""
        height, width = shape[:2]
        source = np.asarray(source_xy, np.float32)
        poke = np.asarray(target_xy, np.float32) - source
        sigma = max(self.config.falloff * max(height, width), float(np.hypot(*poke)) / self.config.max_stretch, 1e-6)
        grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
        return grid_x, grid_y, source, poke, sigma

    def __call__(self, source_frame: np.ndarray, source_xy, target_xy, frames: int) -> np.ndarray:
        source_frame = np.asarray(source_frame, np.uint8)
        grid_x, grid_y, source, poke, sigma = self._field(source_frame.shape, source_xy, target_xy)
        video = np.empty((frames, *source_frame.shape[:2], 3), np.uint8)
        for t in range(1, frames + 1):
            step = poke * (t / frames)
            sample_x, sample_y = grid_x.copy(), grid_y.copy()
            for _ in range(self.config.iterations):
                weight = np.exp(-((sample_x - source[0]) ** 2 + (sample_y - source[1]) ** 2) / (2 * sigma**2))
                sample_x, sample_y = grid_x - step[0] * weight, grid_y - step[1] * weight
            video[t - 1] = cv2.remap(source_frame, sample_x, sample_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return video

    def forward_flow(self, source_frame: np.ndarray, source_xy, target_xy, frames: int) -> np.ndarray:
        """float32 [T, 2, H, W]: d_t(p) at every source pixel p, the flow `__call__`'s frames follow."""
        grid_x, grid_y, source, poke, sigma = self._field(np.asarray(source_frame).shape, source_xy, target_xy)
        weight = np.exp(-((grid_x - source[0]) ** 2 + (grid_y - source[1]) ** 2) / (2 * sigma**2))   # [H, W]
        time = np.arange(1, frames + 1, dtype=np.float32) / frames
        return (time[:, None, None, None] * poke[None, :, None, None] * weight[None, None]).astype(np.float32)


BASELINES: dict[str, Callable[[], Baseline]] = {"static": lambda: static_baseline, "warp": WarpBaseline}


def get_baseline(name: str) -> Baseline:
    """The baseline called `name` (for `--baselines static,warp`)."""
    if name not in BASELINES:
        raise UserError(f"unknown baseline {name!r} in --baselines; available: {', '.join(sorted(BASELINES))}")
    return BASELINES[name]()


def baseline_flow(baseline: Baseline) -> FlowFunction | None:
    """The forward flow that `baseline`'s frames follow (static: zero; warp: its field); None if it has none."""
    if baseline is static_baseline:
        return static_flow
    return getattr(baseline, "forward_flow", None)
