"""Optical flow behind a small interface, so a learned estimator can be added beside DIS.

Convention everywhere in poke2video: flow is float32 [2, H, W]; channel 0 is the x (right) and
channel 1 the y (down) displacement in pixels that carries a pixel of frame `a` to frame `b`.
"""
from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np
from scipy import ndimage

from poke2video.errors import UserError


# OpenCV's remap and DIS take images below 2^15 - 1 pixels a side; an estimator that works on an enlarged
# frame takes correspondingly less (`max_side`).
OPENCV_MAX_SIDE = 32766


class FlowEstimator(Protocol):
    name: str
    max_side: int   # the longest frame side (pixels) it can follow; `check_trackable` refuses longer ones

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        """uint8 RGB [H, W, 3] twice -> float32 [2, H, W]."""


class DISFlow:
    """OpenCV's Dense Inverse Search on grayscale frames (CPU, thousands of frames/s at 64 px)."""

    name = "dis"
    max_side = OPENCV_MAX_SIDE

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
        self._dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        gray_a = cv2.cvtColor(np.ascontiguousarray(frame_a), cv2.COLOR_RGB2GRAY)
        gray_b = cv2.cvtColor(np.ascontiguousarray(frame_b), cv2.COLOR_RGB2GRAY)
        flow = self._dis.calc(gray_a, gray_b, None)  # [H, W, 2], (dx, dy)
        return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)


class FineDIS(DISFlow):
    """DIS refined down to full resolution for small frames: finest scale 0 (not 1), 3 px patches at every
    pixel (not 8 px every 3) and a weak smoothness term (variational alpha 1, not 20).

    At 64 px the stock preset works at half resolution and smooths small moving parts into the
    background; this is slower and far more accurate on small parts (`benchmarks/bench_tracking.py`).
    """

    name = "dis-fine"

    def __init__(self):
        super().__init__(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._dis.setFinestScale(0)
        self._dis.setPatchSize(3)
        self._dis.setPatchStride(1)
        self._dis.setVariationalRefinementAlpha(1.0)


class FullDIS(DISFlow):
    """DIS with the stock preset's patches and smoothness, refined down to the frame's own resolution
    (finest scale 0, not 1): for frames several times a store's size (`prepare --flow-scale 4`), where the
    stock preset stops at half of them. On PokeSim videos at 4 x it follows more of a thin part's motion
    than `dis` at a quarter of the speed (`benchmarks/flow_estimators.py`)."""

    name = "dis-full"

    def __init__(self):
        super().__init__(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._dis.setFinestScale(0)


class FineFarneback:
    """Farneback flow tuned for following small parts at 64 px (the tracker of the metrics).

    Each colour channel is matched on its own at `scale` times the size (PokeSim's parts differ from
    the background in hue more than in brightness), the three flows are reduced by their median, and
    the result is read back at the pixel centres of the original frame. On 135 true PokeSim test clips
    the poked pixel ends 1.4 px from where it really is, against 2.0 px for `FineDIS`
    (benchmarks/bench_tracking.py), at several times the cost.
    """

    name = "farneback-fine"
    LEVELS = 3   # pyramid levels below the enlarged frame (a few px per frame step at 64 px are followed)

    def __init__(self, scale: int = 2, window: int = 5, levels: int = LEVELS):
        self.scale, self.window, self.levels = scale, window, levels
        self.max_side = OPENCV_MAX_SIDE // scale   # it matches the frames enlarged `scale` times

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        height, width = frame_a.shape[:2]
        if np.array_equal(frame_a, frame_b):  # Farneback leaves ~1e-7 px of noise on a still pair
            return np.zeros((2, height, width), np.float32)
        size = (width * self.scale, height * self.scale)
        big_a = cv2.resize(np.ascontiguousarray(frame_a), size, interpolation=cv2.INTER_CUBIC)
        big_b = cv2.resize(np.ascontiguousarray(frame_b), size, interpolation=cv2.INTER_CUBIC)
        channel_flows = [cv2.calcOpticalFlowFarneback(np.ascontiguousarray(big_a[..., c]),
                                                      np.ascontiguousarray(big_b[..., c]), None,
                                                      0.5, self.levels, self.window, 3, 5, 1.1, 0)
                         for c in range(big_a.shape[2])]  # each [sH, sW, 2]
        big_flow = np.median(np.stack(channel_flows), axis=0).astype(np.float32)
        # the centre of pixel x sits at (x + 0.5) * scale - 0.5 in the enlarged frame
        centres_x = (np.arange(width, dtype=np.float32) + 0.5) * self.scale - 0.5
        centres_y = (np.arange(height, dtype=np.float32) + 0.5) * self.scale - 0.5
        map_x, map_y = np.meshgrid(centres_x, centres_y)
        flow = [cv2.remap(np.ascontiguousarray(big_flow[..., c]), map_x, map_y, cv2.INTER_LINEAR) for c in range(2)]
        return np.stack(flow) / self.scale


ESTIMATORS = {"dis": DISFlow, "dis-fine": FineDIS, "dis-full": FullDIS, "farneback-fine": FineFarneback}


def chain_flows(step_flows: np.ndarray) -> np.ndarray:
    """Compose per-step flows [S, 2, H, W] (F(t -> t+1), t = 0..S-1) into F(0 -> S) [2, H, W], float32.

    Every pixel of frame 0 is followed step by step, each flow read bilinearly at its current position.
    One flow straight from frame 0 to frame S misses parts that move further than their own size (a
    16 px square moving 10 px reads as under 1 px at 64 px); the chain follows them.
    """
    return chained_flows(step_flows)[-1]


def chained_flows(step_flows: np.ndarray) -> np.ndarray:
    """Per-step flows [S, 2, H, W] -> F(0 -> s) for s = 1..S, float32 [S, 2, H, W] (see `chain_flows`)."""
    height, width = step_flows.shape[2:]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    pos_x, pos_y = grid_x.copy(), grid_y.copy()
    chained = []
    for step in step_flows:
        step = np.asarray(step, np.float32)
        move_x = cv2.remap(step[0], pos_x, pos_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        move_y = cv2.remap(step[1], pos_x, pos_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        pos_x += move_x
        pos_y += move_y
        chained.append(np.stack([pos_x - grid_x, pos_y - grid_y]))
    return np.stack(chained)


def downscale_flow(flow: np.ndarray, resolution: int) -> np.ndarray:
    """Flow float32 [2, h, w] of frames `h / resolution` times larger -> [2, resolution, resolution]: each vector
    the area average of the ones it covers, divided by the scale (so it is in the small frame's pixels)."""
    flow = np.asarray(flow, np.float32)
    if flow.shape[1:] == (resolution, resolution):
        return flow
    scale = flow.shape[1] / resolution
    small = [cv2.resize(flow[c], (resolution, resolution), interpolation=cv2.INTER_AREA) for c in range(2)]
    return np.stack(small) / np.float32(scale)


CHANGE_LEVEL = 8    # of 255: a pixel whose colour moves less than this between two frames did not change


def changed_region(frame_a: np.ndarray, frame_b: np.ndarray, level: int = CHANGE_LEVEL) -> np.ndarray:
    """bool [H, W]: the pixels whose colour changes between two uint8 RGB frames, with the holes closed.

    A pixel changes when a channel differs by more than `level`. A flat-coloured part that moves less than
    its own width changes only along its outline; the region inside a closed outline is filled, so the
    whole part counts as changed.
    """
    difference = np.abs(frame_a.astype(np.int16) - frame_b.astype(np.int16)).max(axis=-1)
    changed = cv2.morphologyEx((difference > level).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    return ndimage.binary_fill_holes(changed)


def still_where_unchanged(flow: np.ndarray, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
    """Flow float32 [2, H, W] from `frame_a` to `frame_b` with every vector outside `changed_region` set to zero.

    Pyramid estimators spread the motion of a thin part over the still pixels around it (DIS at 4 x calls
    about three times the moving area moving, `benchmarks/flow_estimators.py`); where the picture did not
    change, nothing moved that the frames can show.
    """
    return (flow * changed_region(frame_a, frame_b)[None]).astype(np.float32)


def check_trackable(where, width: int, height: int, estimator: FlowEstimator, purpose: str = "tracking") -> None:
    """Refuse, in one line naming `where`, a frame of width x height that `estimator` cannot follow (OpenCV
    fails on it: `max_side`), before any work is spent on it."""
    if max(width, height) > estimator.max_side:
        raise UserError(f"{where}: {width}x{height} pixels; {purpose} follows every pixel with OpenCV "
                        f"({estimator.name}), which takes at most {estimator.max_side} pixels a side; "
                        "scale it down first")


def tracker_for_larger_frames(scale: int) -> FineFarneback:
    """The metrics' tracker for frames `scale` times a store's size: its pyramid deeper by log2(scale) levels,
    so that it follows a frame step as long, in the store's pixels, as it does at the store's size."""
    return FineFarneback(levels=FineFarneback.LEVELS + int(np.ceil(np.log2(scale))))


def get_flow_estimator(name: str = "dis") -> FlowEstimator:
    if name not in ESTIMATORS:
        raise UserError(f"unknown flow method {name!r}; available: {', '.join(sorted(ESTIMATORS))}")
    return ESTIMATORS[name]()


def estimate_flow(frame_a: np.ndarray, frame_b: np.ndarray, method: str = "dis") -> np.ndarray:
    """One-off flow between two uint8 RGB frames; float32 [2, H, W]. Reuse an estimator in loops."""
    return get_flow_estimator(method)(frame_a, frame_b)
