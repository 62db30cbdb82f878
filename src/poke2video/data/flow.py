"""Optical flow behind a small interface, so a learned estimator can be added beside DIS.

Convention everywhere in poke2video: flow is float32 [2, H, W]; channel 0 is the x (right) and
channel 1 the y (down) displacement in pixels that carries a pixel of frame `a` to frame `b`.
"""
from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from poke2video.errors import UserError


class FlowEstimator(Protocol):
    name: str

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        """uint8 RGB [H, W, 3] twice -> float32 [2, H, W]."""


class DISFlow:
    """OpenCV's Dense Inverse Search on grayscale frames (CPU, thousands of frames/s at 64 px)."""

    name = "dis"

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
        self._dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        gray_a = cv2.cvtColor(np.ascontiguousarray(frame_a), cv2.COLOR_RGB2GRAY)
        gray_b = cv2.cvtColor(np.ascontiguousarray(frame_b), cv2.COLOR_RGB2GRAY)
        flow = self._dis.calc(gray_a, gray_b, None)  # [H, W, 2], (dx, dy)
        return np.ascontiguousarray(flow.transpose(2, 0, 1), dtype=np.float32)


ESTIMATORS = {"dis": DISFlow}


def get_flow_estimator(name: str = "dis") -> FlowEstimator:
    if name not in ESTIMATORS:
        raise UserError(f"unknown flow method {name!r}; available: {', '.join(sorted(ESTIMATORS))}")
    return ESTIMATORS[name]()


def estimate_flow(frame_a: np.ndarray, frame_b: np.ndarray, method: str = "dis") -> np.ndarray:
    """One-off flow between two uint8 RGB frames; float32 [2, H, W]. Reuse an estimator in loops."""
    return get_flow_estimator(method)(frame_a, frame_b)
