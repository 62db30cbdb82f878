"""Write generated videos to .mp4 (PyAV, H.264) or .gif (Pillow), atomically; draw the poke overlay.

The overlay follows the paper's figures: an arrow from the poked pixel to its target and a dot on the
target, on every frame.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from poke2video.errors import UserError
from poke2video.fsutil import atomic_path, check_output

VIDEO_SUFFIXES = (".mp4", ".gif")
MAX_SIDE = {".mp4": 16384, ".gif": 65535}   # pixels a side libx264 encodes; GIF stores sides in 16 bits
ARROW_RGB = (255, 40, 40)
OUTLINE_RGB = (0, 0, 0)
TARGET_RGB = (40, 220, 255)
PIN_RGB = (255, 255, 255)
_SUBPIXEL_BITS = 4  # cv2 drawing with 1/16-pixel coordinates


def check_video_path(path: str | os.PathLike) -> Path:
    """The output path if its suffix is .mp4 or .gif and it can be written (`fsutil.check_output`); else a
    UserError."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"{path}: output must end in .mp4 or .gif")
    return check_output(path, folder=False)


def check_video_size(path: str | os.PathLike, width: int, height: int) -> None:
    """Refuse (UserError) frames larger than the format of `path` can hold, before anything is encoded."""
    suffix = Path(path).suffix.lower()
    limit = MAX_SIDE.get(suffix)
    if limit is not None and max(width, height) > limit:
        raise UserError(f"{path}: a {width}x{height} video cannot be written as {suffix} (at most {limit} pixels "
                        "a side); scale the image down first")


def _fixed_point(xy) -> tuple[int, int]:
    return tuple(int(round(float(v) * (1 << _SUBPIXEL_BITS))) for v in xy)


def draw_poke_overlay(video: np.ndarray, source_xy, target_xy) -> np.ndarray:
    """A copy of uint8 video [T, H, W, 3] with the poke arrow and the target dot drawn on every frame."""
    height, width = video.shape[1:3]
    thickness = max(1, round(min(height, width) / 96))
    length = float(np.hypot(target_xy[0] - source_xy[0], target_xy[1] - source_xy[1]))
    tip = min(0.4, 3.0 * thickness / max(length, 1e-6))
    radius = (max(1.5, 1.5 * thickness)) * (1 << _SUBPIXEL_BITS)
    start, end = _fixed_point(source_xy), _fixed_point(target_xy)
    out = np.ascontiguousarray(video).copy()
    for frame in out:
        if length > 0:
            cv2.arrowedLine(frame, start, end, OUTLINE_RGB, thickness + 2, cv2.LINE_AA, _SUBPIXEL_BITS, tip)
            cv2.arrowedLine(frame, start, end, ARROW_RGB, thickness, cv2.LINE_AA, _SUBPIXEL_BITS, tip)
        cv2.circle(frame, end, int(radius) + (1 << _SUBPIXEL_BITS), OUTLINE_RGB, -1, cv2.LINE_AA, _SUBPIXEL_BITS)
        cv2.circle(frame, end, int(radius), TARGET_RGB, -1, cv2.LINE_AA, _SUBPIXEL_BITS)
    return out


def draw_pin_overlay(video: np.ndarray, pin_xy) -> np.ndarray:
    """A copy of uint8 video [T, H, W, 3] with a pin drawn on every frame: a white ring, outlined."""
    height, width = video.shape[1:3]
    thickness = max(1, round(min(height, width) / 96))
    radius = int(max(2.5, 2.5 * thickness) * (1 << _SUBPIXEL_BITS))
    centre = _fixed_point(pin_xy)
    out = np.ascontiguousarray(video).copy()
    for frame in out:
        cv2.circle(frame, centre, radius, OUTLINE_RGB, thickness + 2, cv2.LINE_AA, _SUBPIXEL_BITS)
        cv2.circle(frame, centre, radius, PIN_RGB, thickness, cv2.LINE_AA, _SUBPIXEL_BITS)
    return out


def draw_marks_overlay(video: np.ndarray, pokes, pins) -> np.ndarray:
    """A copy of uint8 video [T, H, W, 3] with every poke (source, target) and pin (x, y) drawn."""
    for source_xy, target_xy in pokes:
        video = draw_poke_overlay(video, source_xy, target_xy)
    for pin_xy in pins:
        video = draw_pin_overlay(video, pin_xy)
    return video


def write_video(path: str | os.PathLike, video: np.ndarray, fps: float = 8.0, crf: int = 12) -> Path:
    """Write uint8 video [T, H, W, 3] to `path` (.mp4 or .gif) under a temporary name, then rename. `crf` is
    the H.264 quality of an .mp4 (0 lossless, 51 worst)."""
    path = check_video_path(path)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or not video.shape[0]:
        raise ValueError(f"expected a uint8 video [T, H, W, 3], got {video.dtype} {video.shape}")
    check_video_size(path, video.shape[2], video.shape[1])
    with atomic_path(path) as tmp:
        try:
            if path.suffix.lower() == ".gif":
                _write_gif(tmp, video, fps)
            else:
                _write_mp4(tmp, video, fps, crf)
        except OSError as exc:
            if exc.filename is None:            # PyAV's errors name no file; this one is about the output
                exc.filename = str(tmp)
            raise
    return path


def _write_gif(path: Path, video: np.ndarray, fps: float) -> None:
    frames = [Image.fromarray(frame) for frame in video]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=round(1000 / fps), loop=0, optimize=False)


def _write_mp4(path: Path, video: np.ndarray, fps: float, crf: int) -> None:
    """H.264, yuv420p (plays everywhere); odd sides are padded by one edge pixel to be even."""
    import av  # here, not at the top: poking and training import this module and never need PyAV

    pad_h, pad_w = video.shape[1] % 2, video.shape[2] % 2
    if pad_h or pad_w:
        video = np.pad(video, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = video.shape[2], video.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
