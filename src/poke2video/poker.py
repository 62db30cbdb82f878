"""The user's door: load a model, poke an image, get a video.

    poker = Poker.load("runs/a/model.safetensors")     # or Poker.load() for the bundled default model,
                                                       # Poker.load("from-video") for the one learned from videos
    video = poker.animate(image, source=(30, 22), target=(36, 20))   # uint8 [T, H, W, 3]
    video = poker.animate(image, pokes=[((30, 22), (36, 20)), ((10, 40), (8, 44))], pins=[(20, 50)])

Several pokes act at once; a pin is a pixel that must not move. A flow model with a pin channel reads the
pins, and for every flow model the flow is held at zero around each pin (`poking/pins.py`), so a pinned
pixel stays where it is in every frame. A model that draws frames (family gru) takes no pins.

Any image size works: the image is resized (per axis) to the model's square resolution, the poke's
coordinates are scaled the same way, and the generated video has the image's size, so input and output
coordinates are the image's own pixels (x right, y down, pixel centres at integers). `output_size="model"`
returns the model's resolution instead. The video holds frames 1..T after the image; `poke_to_file` writes
the image itself as the first frame. How a model of each family turns the poke into frames is its adapter
in `poking/` (`flow.py`, `gru.py`), chosen once by the model's family.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from poke2video.data.pokes import impulse_vector
from poke2video.data.video import pil_to_rgb, read_image
from poke2video.errors import UserError
from poke2video.export import check_video_path, check_video_size, draw_marks_overlay, write_video
from poke2video.poking.flow import FlowPoking
from poke2video.poking.gru import GRUPoking
from poke2video.poking.request import requested_pins, requested_pokes

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "default.safetensors"
# Models shipped in the package, by the names `--checkpoint` and `Poker.load` take. Each lies beside the default
# one as NAME.safetensors (dashes as underscores) with its model card NAME.md.
BUNDLED = ("default", "from-video")
ADAPTERS = {"unet": FlowPoking, "gru": GRUPoking}   # by family (families.py)
MODES = ("impulse", "displacement")


def bundled_name(checkpoint: str | os.PathLike | None) -> str | None:
    """The bundled model `checkpoint` names (None: the default one), or None where it names a file: a path
    that exists is always the user's own, even one called like a bundled model."""
    name = "default" if checkpoint is None else str(checkpoint)
    return name if name in BUNDLED and not Path(name).exists() else None


def weights_path(checkpoint: str | os.PathLike | None) -> Path:
    """The weights file `checkpoint` names: a path (a missing one is `load_model`'s to report), or a bundled
    model's name (`bundled_name`). UserError for a bare name that is neither a file nor a bundled model, or a
    bundled model missing from the installation."""
    name = bundled_name(checkpoint)
    if name is None:
        path = Path(checkpoint)
        if not path.exists() and os.sep not in str(checkpoint) and path.suffix != ".safetensors":
            raise UserError(f"checkpoint not found: {checkpoint} (a weights file, or a bundled model: "
                            f"{', '.join(BUNDLED)})")     # a bare name: likely a mistyped bundled one
        return path
    path = DEFAULT_WEIGHTS if name == "default" else DEFAULT_WEIGHTS.with_name(name.replace("-", "_") + ".safetensors")
    if not path.is_file():
        raise UserError(f"no bundled {name} model ({path} is missing; reinstall poke2video), or train one "
                        "with `poke2video train --data DATA --out RUN` and pass RUN/model.safetensors")
    return path


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


def model_poke(source, target, width: int, height: int, resolution: int,
               names: tuple[str, str] = ("source", "target")) -> tuple[tuple[float, float], tuple[float, float]]:
    """A poke in the pixels of a width x height image (checked to lie inside it; `names` name its ends in an
    error) -> (source pixel, drag) in the pixels of the model's resolution x resolution frame."""
    source_xy = check_point(names[0], source, width, height)
    target_xy = check_point(names[1], target, width, height)
    scale = (resolution / width, resolution / height)
    displacement = tuple((t - v) * s for t, v, s in zip(target_xy, source_xy, scale))
    return _model_pixel(source_xy, scale), displacement


def _model_pixel(xy: tuple[float, float], scale: tuple[float, float]) -> tuple[float, float]:
    """An image pixel (x, y) in the model frame's pixels (pixel centres map onto pixel centres)."""
    return tuple((v + 0.5) * s - 0.5 for v, s in zip(xy, scale))


def model_pokes(source, target, pokes, width: int, height: int,
                resolution: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """[(source pixel, drag), ...] in model pixels from `source` and `target` (one poke) or `pokes`
    (`poking.request.requested_pokes`), each point checked to lie inside the width x height image."""
    pairs = requested_pokes(source, target, pokes)
    if pokes is None:
        return [model_poke(source, target, width, height, resolution)]
    return [model_poke(s, t, width, height, resolution, (f"pokes[{i}] source", f"pokes[{i}] target"))
            for i, (s, t) in enumerate(pairs)]


def model_pins(pins, width: int, height: int, resolution: int) -> list[tuple[float, float]]:
    """Pins in the pixels of a width x height image (each checked to lie inside it) -> in model pixels."""
    scale = (resolution / width, resolution / height)
    return [_model_pixel(check_point(f"pins[{i}]", pin, width, height), scale)
            for i, pin in enumerate(requested_pins(pins))]


class Poker:
    """A loaded model plus its metadata; `animate` turns (image, source, target) into a video."""

    def __init__(self, model: torch.nn.Module, metadata: dict[str, Any] | None = None, trace: bool = False):
        """`trace`: run the network as a frozen TorchScript trace of its one call shape (`poking/adapter.py`);
        `load` turns it on. Off, the model's own forward runs (what a test double overriding it needs)."""
        self.model = model.eval()
        self.metadata = dict(metadata or {})
        self.resolution = model.cfg.resolution
        self.frames = model.cfg.frames
        self.adapter = ADAPTERS[model.cfg.family](model, trace)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str = "cpu", trace: bool = True) -> "Poker":
        """From a model.safetensors, or a bundled model's name (`BUNDLED`); None: the bundled default model."""
        from poke2video.model import load_model

        return cls(*load_model(weights_path(path), device=device), trace=trace)

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
        """Ways to read a drag: the first is this model's own (what it was trained on). "impulse" only for a
        model of a family that reads impulses, trained on them (its weights carry an impulse_scale)."""
        if self.adapter.reads_impulses and self.impulse_scale is not None:
            return MODES
        return ("displacement",)

    @property
    def has_flow(self) -> bool:
        """Whether the model gives forward flows (the flow UNet): its frames are then the image carried along them."""
        return self.adapter.gives_flow

    def poke_displacement(self, displacement_model_px: tuple[float, float],
                          mode: str | None = None) -> tuple[float, float]:
        """What the model reads for a drag. "displacement": the drag itself. "impulse" (appendix B, only for
        models with an impulse_scale): its direction times a strength min(1, length / (impulse_scale * T)),
        impulse_scale being the per-step motion that maps to strength 1 in training. None: the model's own.
        Any other mode, or one this model does not have, is a UserError."""
        mode = mode or self.modes[0]
        if mode not in self.modes:
            raise UserError(f"mode {_shown(mode)} is not available for this model (modes: {', '.join(self.modes)})")
        if mode == "displacement":
            return displacement_model_px
        strength = math.hypot(*displacement_model_px) / (self.impulse_scale * self.frames)
        return impulse_vector(displacement_model_px, strength)

    def _request(self, rgb: np.ndarray, source, target, pokes, pins, mode: str | None = None):
        """(pokes [(source, vector the model reads)], pins [(x, y)]) in model pixels, checked (UserError)."""
        height, width = rgb.shape[:2]
        requested = model_pokes(source, target, pokes, width, height, self.resolution)
        pinned = model_pins(pins, width, height, self.resolution)
        if pinned and not self.has_flow:
            raise UserError("pins need a model that gives flows (family unet); this model draws its frames")
        return [(start, self.poke_displacement(drag, mode)) for start, drag in requested], pinned

    def animate(self, image, source=None, target=None, output_size: str = "image", mode: str | None = None, *,
                pokes=None, pins=None) -> np.ndarray:
        """uint8 [T, H, W, 3]: frames 1..T of the response to moving `source` towards `target`, or to all of
        `pokes` [(source, target), ...] at once (1 to `MAX_POKES`), with `pins` [(x, y), ...] held still.

        Points are (x, y) in the image's pixels. `output_size`: "image" (H, W of the input) or "model" (the
        model's resolution). `mode`: one of `modes` ("displacement", or "impulse" for a model trained on
        impulses); None: the model's own. A flow model carries the image's own pixels along its flows,
        upsampled to the image's size, so a pixel that does not move keeps its exact value.
        """
        if output_size not in ("image", "model"):
            raise UserError(f"output_size must be 'image' or 'model', got {output_size!r}")
        rgb = load_image(image)
        requested, pinned = self._request(rgb, source, target, pokes, pins, mode)
        return self.adapter.animate(rgb, requested, pinned, output_size)

    def forward_flow(self, image, source=None, target=None, *, pokes=None, pins=None) -> np.ndarray | None:
        """float32 [T, 2, H, W]: where each pixel of `image` is at frames 1..T (px of the image), for a model
        that gives flows; None for one that only draws frames. Pokes and pins as `animate` takes them."""
        if not self.has_flow:
            return None
        rgb = load_image(image)
        return self.adapter.image_flows(rgb, *self._request(rgb, source, target, pokes, pins))

    def animate_with_flow(self, image, source=None, target=None, *, pokes=None,
                          pins=None) -> tuple[np.ndarray, np.ndarray | None]:
        """(`animate(...)`, `forward_flow(...)`) from one run of the network, for the same pokes and pins."""
        if not self.has_flow:
            return self.animate(image, source, target, pokes=pokes, pins=pins), None
        rgb = load_image(image)
        return self.adapter.animate_with_flow(rgb, *self._request(rgb, source, target, pokes, pins))


def poke_to_file(checkpoint: str | None, image, source, target, out: str, overlay: bool = False, *,
                 pokes=None, pins=None) -> Path:
    """Animate `image` (one poke `source` -> `target`, or `pokes`, and `pins`) and write the source frame
    plus the T generated frames to `out` (.mp4 or .gif); `overlay` draws every poke and pin."""
    out_path = check_video_path(out)
    rgb = load_image(image)
    check_video_size(out_path, rgb.shape[1], rgb.shape[0])
    video = Poker.load(checkpoint).animate(rgb, source, target, pokes=pokes, pins=pins)
    video = np.concatenate([rgb[None], video])
    if overlay:
        video = draw_marks_overlay(video, pokes if pokes is not None else [(source, target)], pins or [])
    return write_video(out_path, video)
