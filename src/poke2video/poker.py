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
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from poke2video.config import poke_size_for
from poke2video.data.pokes import impulse_vector, make_poke_map
from poke2video.data.video import pil_to_rgb, read_image
from poke2video.errors import UserError
from poke2video.export import check_video_path, check_video_size, draw_poke_overlay, write_video
from poke2video.model.splat import STILL_PX, render_box, render_upscaled

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "default.safetensors"



def _shown(value) -> str:
    """A value's repr for an error line: one line, at most 100 characters."""
    return " ".join(repr(value).split())[:100]


def load_image(image) -> np.ndarray:
    """uint8 [H, W, 3] RGB from a path, a PIL image or an array (gray, gray+1, RGB, RGBA; uint8 or [0, 1] float).

    Anything else (a broken file, a PIL mode without an RGB conversion, NaN pixels, other dtypes or shapes)
    is a UserError saying what was wrong."""
    if isinstance(image, (str, os.PathLike)):
        image = read_image(image)
    if isinstance(image, Image.Image):
        image = pil_to_rgb(image)
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


def _coordinate(value: float) -> str:
    """A coordinate as short as it can be written without changing it: 63 but 63.0000001, never rounded."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


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
        raise UserError(f"{name} ({_coordinate(x)}, {_coordinate(y)}) is outside the {width}x{height} image "
                        f"(x from 0 to {width - 1}, y from 0 to {height - 1})")
    return x, y


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width < image.shape[1] or height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


class _FlowsOnly(torch.nn.Module):
    """FlowUNet -> its forward flows alone, for a fixed number of frames (what `Poker` traces)."""

    def __init__(self, model: torch.nn.Module, frames: int):
        super().__init__()
        self.model, self.frames = model, frames

    def forward(self, source_frame: torch.Tensor, poke: torch.Tensor) -> torch.Tensor:
        return self.model.forward_flows(source_frame, poke, self.frames)


class _VideoOnly(torch.nn.Module):
    """PokeModel -> its video alone, for a fixed number of frames (what `Poker` traces)."""

    def __init__(self, model: torch.nn.Module, frames: int):
        super().__init__()
        self.model, self.frames = model, frames

    def forward(self, source_frame: torch.Tensor, poke_map: torch.Tensor) -> torch.Tensor:
        return self.model.predict(source_frame, poke_map, self.frames).video


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
        self._traced: torch.jit.ScriptModule | None = None   # the model's trace, built on first use

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

    def animate(self, image, source, target, output_size: str = "image", mode: str | None = None) -> np.ndarray:
        """uint8 [T, H, W, 3]: frames 1..T of the response to moving `source` towards `target`.

        `source`, `target`: (x, y) in the image's pixels. `output_size`: "image" (H, W of the input) or
        "model" (the model's resolution). `mode`: "displacement" or "impulse" (see `modes`); None: the
        model's own. A flow model (FlowUNet) carries the image's own pixels along its flows, upsampled to the
        image's size, so a pixel that does not move keeps its exact value.
        """
        if output_size not in ("image", "model"):
            raise UserError(f"output_size must be 'image' or 'model', got {output_size!r}")
        rgb = load_image(image)
        res = self.resolution
        if self.has_flow:
            flows = self._image_flows(rgb, source, target)
            return render_uint8(_resize(rgb, res, res) if output_size == "model" else rgb, flows, STILL_PX)
        height, width = rgb.shape[:2]
        source_model, displacement = self._model_poke(source, target, width, height)
        poke_map = make_poke_map(res, source_model, self.poke_displacement(displacement, mode), poke_size_for(res))
        video = self._generate(_resize(rgb, res, res), poke_map)
        if output_size == "model" or (width, height) == (res, res):
            return video
        return np.stack([_resize(frame, width, height) for frame in video])

    @property
    def has_flow(self) -> bool:
        """Whether the model gives forward flows (FlowUNet): its frames are then the image carried along them."""
        return hasattr(self.model, "forward_flows")

    def forward_flow(self, image, source, target) -> np.ndarray | None:
        """float32 [T, 2, H, W]: where each pixel of `image` is at frames 1..T (px of the image), for a model
        that gives flows; None for one that only draws frames."""
        if not self.has_flow:
            return None
        rgb = load_image(image)
        return resize_flows(self._image_flows(rgb, source, target), rgb.shape[1], rgb.shape[0]).numpy()

    def animate_with_flow(self, image, source, target) -> tuple[np.ndarray, np.ndarray | None]:
        """(`animate(image, source, target)`, `forward_flow(image, source, target)`) from one run of the network."""
        if not self.has_flow:
            return self.animate(image, source, target), None
        rgb = load_image(image)
        flows = self._image_flows(rgb, source, target)
        return render_uint8(rgb, flows, STILL_PX), resize_flows(flows, rgb.shape[1], rgb.shape[0]).numpy()

    def _image_flows(self, rgb: np.ndarray, source, target) -> torch.Tensor:
        """uint8 image [H, W, 3] + a poke in its pixels -> the model's forward flows [T, 2, R, R] (model px)."""
        height, width = rgb.shape[:2]
        source_model, displacement = self._model_poke(source, target, width, height)
        return self._flows(_resize(rgb, self.resolution, self.resolution), (*source_model, *displacement))

    def _model_poke(self, source, target, width: int, height: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """A poke in the image's pixels (checked to lie inside it) -> (source pixel, drag) in the model's pixels."""
        source_xy = check_point("source", source, width, height)
        target_xy = check_point("target", target, width, height)
        scale = (self.resolution / width, self.resolution / height)
        source_model = tuple((v + 0.5) * s - 0.5 for v, s in zip(source_xy, scale))
        displacement = tuple((t - v) * s for t, v, s in zip(target_xy, source_xy, scale))
        return source_model, displacement

    def _flows(self, frame: np.ndarray, poke: tuple[float, ...]) -> torch.Tensor:
        """uint8 frame [R, R, 3] + the poke (x, y, dx, dy; model pixels) -> forward flows [T, 2, R, R] (CPU)."""
        device = next(self.model.parameters()).device
        source = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
        poke_tensor = torch.tensor([poke], dtype=torch.float32, device=device)
        with torch.inference_mode():
            if self.trace:
                flows = self._flow_function(device)(source, poke_tensor)
            else:
                flows = self.model.forward_flows(source, poke_tensor, self.frames)
        return flows[0].float().cpu()

    def _flow_function(self, device: torch.device) -> torch.jit.ScriptModule:
        """FlowUNet's flows as a frozen TorchScript trace of Poker's one call shape (batch 1, T frames)."""
        if self._traced is None:
            res = self.resolution
            example = (torch.zeros(1, 3, res, res, device=device), torch.ones(1, 4, device=device))
            self._traced = _frozen_trace(_FlowsOnly(self.model, self.frames).eval(), example)
        return self._traced

    def _video_function(self, device: torch.device) -> torch.jit.ScriptModule:
        """The model as a frozen TorchScript trace of Poker's one call shape (batch 1, T frames, video only).

        Eager PyTorch spends much of a small model's time dispatching its small convolutions; a frozen trace
        gives the same output to float precision (`tests/test_poker.py`). torch.compile would need a C++
        toolchain and minutes of compiling on the user's machine; torch.jit is deprecated but present in the
        pinned torch."""
        if self._traced is None:
            res = self.resolution
            example = (torch.zeros(1, 3, res, res, device=device), torch.zeros(1, 2, res, res, device=device))
            self._traced = _frozen_trace(_VideoOnly(self.model, self.frames).eval(), example)
        return self._traced

    def _generate(self, frame: np.ndarray, poke_map: np.ndarray) -> np.ndarray:
        """uint8 frame [R, R, 3] + poke map [2, R, R] -> uint8 video [T, R, R, 3] (a model that draws frames)."""
        device = next(self.model.parameters()).device
        source = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
        poke_map_tensor = torch.from_numpy(poke_map)[None].to(device)
        with torch.inference_mode():
            if self.trace:
                video = self._video_function(device)(source, poke_map_tensor)
            else:
                video = self.model(source, poke_map_tensor, self.frames)[0]
        pixels = video[0].permute(0, 2, 3, 1).add(1).mul(127.5).round().clamp(0, 255)
        return pixels.to(torch.uint8).cpu().numpy()


def _frozen_trace(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit: deprecated in 2.13, still there
        return torch.jit.freeze(torch.jit.trace(module, example, check_trace=False))


def resize_flows(flows: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Forward flows [T, 2, R, R] in model pixels -> [T, 2, height, width] in the image's pixels."""
    if flows.shape[-2:] == (height, width):
        return flows
    resized = torch.nn.functional.interpolate(flows, size=(height, width), mode="bilinear", align_corners=False)
    return resized * torch.tensor([width / flows.shape[-1], height / flows.shape[-2]]).view(1, 2, 1, 1)


def render_uint8(rgb: np.ndarray, flows: torch.Tensor, still_px: float) -> np.ndarray:
    """uint8 image [H, W, 3] carried along forward flows [T, 2, h, w] -> uint8 video [T, H, W, 3]; pixels
    whose flow stays within `still_px` (of the flow's grid) keep their value. A flow of the image's size is
    splatted (`splat.render_box`); a smaller one is turned around at its size and the image read along it
    (`splat.render_upscaled`); either way only the box that moves is computed."""
    video = np.repeat(rgb[None], len(flows), axis=0)
    with torch.inference_mode():
        if flows.shape[-2:] == rgb.shape[:2]:
            image = torch.tensor(rgb).permute(2, 0, 1)[None].float()
            box, frames = render_box(image, flows[None].float(), still_px)
            if box is not None:
                frames = frames[0].round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        else:
            box, frames = render_upscaled(rgb, flows.float(), still_px)
    if box is not None:
        video[:, box[0], box[1]] = frames
    return video


def poke_to_file(checkpoint: str | None, image, source, target, out: str, overlay: bool = False) -> Path:
    """Animate `image` and write the source frame plus the T generated frames to `out` (.mp4 or .gif)."""
    out_path = check_video_path(out)
    rgb = load_image(image)
    check_video_size(out_path, rgb.shape[1], rgb.shape[0])
    video = Poker.load(checkpoint).animate(rgb, source, target)
    video = np.concatenate([rgb[None], video])
    if overlay:
        video = draw_poke_overlay(video, source, target)
    return write_video(out_path, video)
