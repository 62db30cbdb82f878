"""The user's door: load a model, poke an image, get a video.

    poker = Poker.load("runs/a/model.safetensors")     # or Poker.load() for the bundled default model
    video = poker.animate(image, source=(30, 22), target=(36, 20))   # uint8 [T, H, W, 3]

Any image size works: the image is resized (per axis) to the model's square resolution, the poke's
coordinates are scaled the same way, and the generated frames are resized back to the image's size, so
input and output coordinates are the image's own pixels (x right, y down, pixel centres at integers).
`output_size="model"` returns the model's resolution instead. The video holds frames 1..T after the
image; `poke_to_file` writes the image itself as the first frame.
"""
from __future__ import annotations

import math
import os
import struct
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from poke2video.config import poke_size_for
from poke2video.data.pokes import impulse_vector, make_poke_map
from poke2video.errors import UserError, one_line
from poke2video.export import check_video_path, draw_poke_overlay, write_video

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "default.safetensors"

# What Pillow raises on a broken or hostile file besides OSError: fuzzing (tests/test_fuzz_images.py) found
# EOFError, NotImplementedError, SyntaxError and TypeError coming out of its format plugins.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, NotImplementedError, TypeError, IndexError,
                struct.error)


def _shown(value) -> str:
    """A value's repr for an error line: one line, at most 100 characters."""
    return " ".join(repr(value).split())[:100]


def load_image(image) -> np.ndarray:
    """uint8 [H, W, 3] RGB from a path, a PIL image or an array (gray, gray+1, RGB, RGBA; uint8 or [0, 1] float).

    Anything else (a broken file, a PIL mode without an RGB conversion, NaN pixels, other dtypes or shapes)
    is a UserError saying what was wrong."""
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as opened:
                image = opened.convert("RGB")
        except (*IMAGE_ERRORS, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise UserError(f"cannot read image {image}: {one_line(exc)}") from None
    if isinstance(image, Image.Image):
        try:
            image = np.asarray(image.convert("RGB"))
        except IMAGE_ERRORS as exc:
            raise UserError(f"cannot convert the {image.mode} image to RGB: {one_line(exc)}") from None
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise UserError(f"image must be H x W, H x W x 3 or H x W x 4, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise UserError(f"image is empty (shape {array.shape})")
    array = array[..., :3]
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise UserError(f"image must be uint8 or finite floats in [0, 1], got {array.dtype}")
        array = np.round(np.clip(array, 0.0, 1.0) * 255)
    return np.ascontiguousarray(array, dtype=np.uint8)


def check_point(name: str, xy, width: int, height: int) -> tuple[float, float]:
    """(x, y) as floats inside the image (0 <= x <= W-1, 0 <= y <= H-1); else a UserError naming it."""
    try:
        if isinstance(xy, (str, bytes)):         # "12" would otherwise iterate into (1, 2)
            raise TypeError
        x, y = (float(v) for v in xy)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{name} must be two numbers (x, y), got {_shown(xy)}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise UserError(f"{name} must be finite, got ({x}, {y})")
    if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
        raise UserError(f"{name} ({x:g}, {y:g}) is outside the {width}x{height} image")
    return x, y


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width < image.shape[1] or height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class _VideoOnly(torch.nn.Module):
    """PokeModel -> its video alone, for a fixed number of frames (what `Poker` traces)."""

    def __init__(self, model: torch.nn.Module, frames: int, anchored: bool):
        super().__init__()
        self.model, self.frames, self.anchored = model, frames, anchored

    def forward(self, source_frame: torch.Tensor, poke_map: torch.Tensor, poke: torch.Tensor) -> torch.Tensor:
        return self.model.predict(source_frame, poke_map, self.frames, poke=poke if self.anchored else None).video


class Poker:
    """A loaded model plus its metadata; `animate` turns (image, source, target) into a video."""

    def __init__(self, model: torch.nn.Module, metadata: dict[str, Any] | None = None, trace: bool = False):
        """`trace`: run videos through a frozen TorchScript trace of the model (`_video_function`); `load`
        turns it on. Off, the model's own forward runs (what a test double overriding it needs)."""
        self.model = model.eval()
        self.trace = trace
        self.metadata = dict(metadata or {})
        self.resolution = model.cfg.resolution
        self.frames = model.cfg.frames
        self._traced: dict[bool, torch.jit.ScriptModule] = {}   # anchored or not -> trace, built on first use

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str = "cpu", trace: bool = True) -> "Poker":
        """From a model.safetensors; None: the bundled default model."""
        from poke2video.model import load_model

        if path is None:
            if not DEFAULT_WEIGHTS.is_file():
                raise UserError(
                    f"no bundled default model ({DEFAULT_WEIGHTS} is missing); train one with "
                    "`poke2video train --data DATA --out RUN` and pass RUN/model.safetensors")
            path = DEFAULT_WEIGHTS
        return cls(*load_model(path, device=device), trace=trace)

    @property
    def impulse_scale(self) -> float | None:
        """The per-step motion that maps to impulse strength 1, or None for a displacement model."""
        scale = self.metadata.get("impulse_scale")
        if scale is None:
            return None
        try:
            value = float(scale)
        except (TypeError, ValueError, OverflowError):
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"the checkpoint's impulse_scale must be a positive number, got {_shown(scale)}")
        return value

    @property
    def modes(self) -> tuple[str, ...]:
        """Ways to read a drag: the first is this model's own (what it was trained on)."""
        return ("impulse", "displacement") if self.impulse_scale is not None else ("displacement",)

    def poke_displacement(self, displacement_model_px: tuple[float, float],
                          mode: str | None = None) -> tuple[float, float]:
        """What goes into the poke map. "displacement": the drag itself. "impulse" (appendix B, only for
        models with an impulse_scale): its direction times a strength min(1, length / (impulse_scale * T)),
        impulse_scale being the per-step motion that maps to strength 1 in training. None: the model's own."""
        mode = mode or self.modes[0]
        if mode not in self.modes:
            raise UserError(f"mode {mode!r} is not available for this model (modes: {', '.join(self.modes)})")
        if mode == "displacement":
            return displacement_model_px
        strength = math.hypot(*displacement_model_px) / (self.impulse_scale * self.frames)
        return impulse_vector(displacement_model_px, strength)

    def animate(self, image, source, target, output_size: str = "image", mode: str | None = None,
                anchor: bool = True) -> np.ndarray:
        """uint8 [T, H, W, 3]: frames 1..T of the response to moving `source` towards `target`.

        `source`, `target`: (x, y) in the image's pixels. `output_size`: "image" (H, W of the input) or
        "model" (the model's resolution). `mode`: "displacement" or "impulse" (see `modes`); None: the
        model's own. `anchor`: a `model.poke_anchor` checkpoint of a displacement model carries the poked
        pixel onto the target (model/anchor.py); False shows the model's own flows.
        """
        if output_size not in ("image", "model"):
            raise UserError(f"output_size must be 'image' or 'model', got {output_size!r}")
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        source_xy = check_point("source", source, width, height)
        target_xy = check_point("target", target, width, height)
        res = self.resolution
        scale = (res / width, res / height)
        source_model = tuple((v + 0.5) * s - 0.5 for v, s in zip(source_xy, scale))
        displacement = tuple((t - v) * s for t, v, s in zip(target_xy, source_xy, scale))
        poke_map = make_poke_map(res, source_model, self.poke_displacement(displacement, mode),
                                  poke_size_for(res))
        anchored = anchor and self.model.cfg.poke_anchor and self.impulse_scale is None  # displacement models
        video = self._generate(_resize(rgb, res, res), poke_map, (*source_model, *displacement), anchored)
        if output_size == "model" or (width, height) == (res, res):
            return video
        return np.stack([_resize(frame, width, height) for frame in video])

    def _video_function(self, device: torch.device, anchored: bool) -> torch.jit.ScriptModule:
        """The model as a frozen TorchScript trace of Poker's one call shape (batch 1, T frames, video only).

        Eager PyTorch spends much of a small model's time dispatching its ~130 small convolutions; the
        frozen trace made a cpu-64 video about 30% faster on one CPU thread (17.4 vs 25.2 ms; the same
        output to float precision, `tests/test_poker.py`). torch.compile would need a C++ toolchain and
        minutes of compiling on the user's machine; torch.jit is deprecated but present in the pinned torch."""
        if anchored not in self._traced:
            res = self.resolution
            example = (torch.zeros(1, 3, res, res, device=device), torch.zeros(1, 2, res, res, device=device),
                       torch.ones(1, 4, device=device))
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit: deprecated in 2.13, still there
                video_only = _VideoOnly(self.model, self.frames, anchored).eval()
                self._traced[anchored] = torch.jit.freeze(torch.jit.trace(video_only, example, check_trace=False))
        return self._traced[anchored]

    def _generate(self, frame: np.ndarray, poke_map: np.ndarray, poke: tuple[float, ...],
                  anchored: bool) -> np.ndarray:
        """uint8 frame [R, R, 3] + poke map [2, R, R] + the poke (x, y, dx, dy; model pixels) -> uint8 video
        [T, R, R, 3]; `anchored`: the poke may anchor the flows (`model.poke_anchor`)."""
        device = next(self.model.parameters()).device
        source = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
        poke_map_tensor = torch.from_numpy(poke_map)[None].to(device)
        poke_tensor = torch.tensor([poke], dtype=torch.float32, device=device)
        with torch.inference_mode():
            if self.trace:
                video = self._video_function(device, anchored)(source, poke_map_tensor, poke_tensor)
            else:
                video = self.model(source, poke_map_tensor, self.frames, poke_tensor if anchored else None)[0]
        pixels = video[0].permute(0, 2, 3, 1).add(1).mul(127.5).round().clamp(0, 255)
        return pixels.to(torch.uint8).cpu().numpy()


def poke_to_file(checkpoint: str | None, image, source, target, out: str, overlay: bool = False) -> Path:
    """Animate `image` and write the source frame plus the T generated frames to `out` (.mp4 or .gif)."""
    out_path = check_video_path(out)
    rgb = load_image(image)
    video = Poker.load(checkpoint).animate(rgb, source, target)
    video = np.concatenate([rgb[None], video])
    if overlay:
        video = draw_poke_overlay(video, source, target)
    return write_video(out_path, video)
