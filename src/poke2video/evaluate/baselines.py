"""Learning-free baselines, run by the same evaluator as the model.

A baseline is a callable (source_frame uint8 [H, W, 3], source_xy, target_xy, T, pokes=None, pins=None)
-> uint8 [T, H, W, 3], the frames after the source frame (like the dataset's target video); `pokes`
[(source_xy, target_xy), ...], when given, are all the pokes at once (the first being source -> target)
and `pins` [(x, y), ...] pixels to hold still. `baseline_flow` gives the forward flow its frames follow
(same arguments -> float32 [T, 2, H, W], px, source -> frame t), for flow error.
- `static`: the source frame repeated T times (its poke endpoint error is the poke's own length; zero flow).
- `warp`: in the spirit of Hao et al. (2018): the source frame warped by a smooth displacement field
  spread from the pokes, a Gaussian falloff around each poked pixel, growing linearly in time to the
  full poke at frame T, so a lone poked pixel lands on its target (the field is its forward flow).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from poke2video.errors import UserError

Baseline = Callable[..., np.ndarray]
FlowFunction = Callable[..., np.ndarray]  # same arguments as a Baseline -> float32 forward flow [T, 2, H, W]


def static_baseline(source_frame: np.ndarray, source_xy, target_xy, frames: int, pokes=None, pins=None) -> np.ndarray:
    """uint8 [T, H, W, 3]: the source frame, unchanged, T times (whatever the pokes and pins)."""
    return np.repeat(np.asarray(source_frame, np.uint8)[None], frames, axis=0)


def static_flow(source_frame: np.ndarray, source_xy, target_xy, frames: int, pokes=None, pins=None) -> np.ndarray:
    """float32 [T, 2, H, W]: zero, the flow of `static_baseline`."""
    height, width = np.asarray(source_frame).shape[:2]
    return np.zeros((frames, 2, height, width), np.float32)


@dataclass(frozen=True)
class WarpConfig:
    falloff: float = 0.125  # Gaussian sigma of the displacement field, as a fraction of the image side
    max_stretch: float = 1.2  # sigma grows to at least |poke| / max_stretch so the warp never folds
    iterations: int = 30  # fixed-point steps that invert the forward field for backward sampling


class WarpBaseline:
    """Warp the source frame by d_t(p) = (t / T) * h(p) * sum_k poke_k * exp(-|p - source_k|^2 / (2 sigma_k^2)).

    Every poke k spreads its own Gaussian field (sigma_k from its length, as for one poke) and the fields
    add. Pins hold the field at zero: h(p) = prod over pins q of (1 - exp(-|p - q|^2 / (2 sigma^2))),
    sigma the falloff of a short poke, so the field is exactly zero at every pin and rises smoothly away
    from it; without pins h = 1. The field moves source pixels forward; frame t samples the source at
    the pixel p that lands on each output pixel q (q = p + d_t(p), solved by fixed-point iteration, a
    contraction for one poke because |poke| / sigma <= max_stretch < sqrt(e); overlapping pokes and pins
    steepen the field, so with them the warp may fold where they crowd), bilinearly, with replicated borders.
    """

    def __init__(self, config: WarpConfig = WarpConfig()):
        self.config = config

    def _field(self, shape, pokes, pins) -> Callable[[np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray]]:
        """d(x, y, fraction): the field's (dx, dy) at points (x, y) at `fraction` of the full pokes."""
        side = max(shape[:2])
        terms = []
        for source_xy, target_xy in pokes:
            source = np.asarray(source_xy, np.float32)
            poke = np.asarray(target_xy, np.float32) - source
            sigma = max(self.config.falloff * side, float(np.hypot(*poke)) / self.config.max_stretch, 1e-6)
            terms.append((source, poke, sigma))
        held = [np.asarray(pin, np.float32) for pin in pins or []]
        pin_sigma = max(self.config.falloff * side, 1e-6)

        def field(x: np.ndarray, y: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
            hold = 1.0
            for pin in held:
                hold = hold * (1 - np.exp(-((x - pin[0]) ** 2 + (y - pin[1]) ** 2) / (2 * pin_sigma**2)))
            dx = dy = 0.0
            for source, poke, sigma in terms:
                weight = np.exp(-((x - source[0]) ** 2 + (y - source[1]) ** 2) / (2 * sigma**2))
                if held:
                    weight = weight * hold
                step = poke * fraction
                dx, dy = dx + step[0] * weight, dy + step[1] * weight
            return dx, dy

        return field

    def __call__(self, source_frame: np.ndarray, source_xy, target_xy, frames: int, pokes=None, pins=None) -> np.ndarray:
        source_frame = np.asarray(source_frame, np.uint8)
        height, width = source_frame.shape[:2]
        field = self._field(source_frame.shape, pokes or [(source_xy, target_xy)], pins)
        grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
        video = np.empty((frames, height, width, 3), np.uint8)
        for t in range(1, frames + 1):
            sample_x, sample_y = grid_x.copy(), grid_y.copy()
            for _ in range(self.config.iterations):
                dx, dy = field(sample_x, sample_y, t / frames)
                sample_x, sample_y = (grid_x - dx).astype(np.float32), (grid_y - dy).astype(np.float32)
            video[t - 1] = cv2.remap(source_frame, sample_x, sample_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return video

    def forward_flow(self, source_frame: np.ndarray, source_xy, target_xy, frames: int, pokes=None,
                     pins=None) -> np.ndarray:
        """float32 [T, 2, H, W]: d_t(p) at every source pixel p, the flow `__call__`'s frames follow."""
        shape = np.asarray(source_frame).shape
        grid_y, grid_x = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
        dx, dy = self._field(shape, pokes or [(source_xy, target_xy)], pins)(grid_x, grid_y, 1.0)
        full = np.stack([np.broadcast_to(dx, grid_x.shape), np.broadcast_to(dy, grid_x.shape)])   # [2, H, W]
        time = np.arange(1, frames + 1, dtype=np.float32) / frames
        return (time[:, None, None, None] * full[None]).astype(np.float32)


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
