"""Video input: video files through PyAV and folders of numbered images, as square RGB uint8 frames.

Frames are streamed: each decoded frame is converted to RGB, centre-cropped to a square and resized
with area interpolation to the store's resolution before the next one is decoded, so a long video is
never held at full size. Grayscale, 16-bit and alpha inputs all become RGB uint8.

A source larger than MAX_SOURCE_PIXELS (width x height) is refused before any of its frames is
decoded: a video by the size its container declares (and every decoded frame again before it is
converted), an image by the size in its file header. Unsupported codecs, empty and cut-short files
each end in one line naming the file.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np
from PIL import Image

from poke2video.errors import UserError

MAX_SOURCE_PIXELS = 40_000_000  # 8K UHD (7680 x 4320, 33 Mpx) passes; one RGB frame at the limit is 120 MB
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Sampling:
    """Which frames of a source to keep: every `stride`-th, or resampled to `target_fps` when set."""

    resolution: int
    stride: int = 1
    target_fps: float | None = None


def natural_key(text: str) -> list:
    """Sort key that orders 'frame2' before 'frame10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def image_files(folder: Path) -> list[Path]:
    """The images directly inside `folder`, naturally sorted; [] when it holds none."""
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise UserError(f"{folder}: cannot read folder ({exc.strerror or exc})") from exc
    images = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(images, key=lambda p: natural_key(p.name))


def is_image_folder(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.R_OK | os.X_OK) and bool(image_files(path))


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Gray [H, W], gray+alpha, RGB or RGBA, uint8 or uint16 -> RGB uint8 [H, W, 3]."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported image dtype {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        return np.repeat(image[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def square_resize(frame: np.ndarray, resolution: int) -> np.ndarray:
    """Centre-crop RGB uint8 [H, W, 3] to a square, then area-resize it to [res, res, 3]."""
    height, width = frame.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = frame[top:top + side, left:left + side]
    if side == resolution:
        return np.ascontiguousarray(square)
    interpolation = cv2.INTER_AREA if side > resolution else cv2.INTER_LINEAR
    return cv2.resize(square, (resolution, resolution), interpolation=interpolation)


def keep_mask(source_fps: float | None, sampling: Sampling, where: str):
    """A predicate index -> keep? for the chosen stride or target rate."""
    if sampling.target_fps is None:
        return lambda i: i % sampling.stride == 0
    if not source_fps:
        raise UserError(f"{where}: frame rate unknown, cannot resample to {sampling.target_fps} fps")
    step = source_fps / sampling.target_fps  # source frames per kept frame
    if step < 1:
        raise UserError(f"{where}: {source_fps:g} fps is below the target {sampling.target_fps:g} fps")
    return lambda i: np.floor(i / step + 1e-9) != np.floor((i - 1) / step + 1e-9)


def iter_frames(path: str | os.PathLike, sampling: Sampling) -> Iterator[np.ndarray]:
    """Stream the kept frames of a video file or image folder as RGB uint8 [res, res, 3]."""
    source = Path(path)
    if source.is_dir():
        yield from _iter_image_folder(source, sampling)
    elif source.is_file():
        yield from _iter_video_file(source, sampling)
    else:
        raise UserError(f"{source}: no such video file or image folder")


def read_frames(path: str | os.PathLike, sampling: Sampling) -> np.ndarray:
    """All kept frames of one source: uint8 [N, res, res, 3] (N may be 0 only for empty inputs)."""
    frames = list(iter_frames(path, sampling))
    if not frames:
        raise UserError(f"{path}: contains no frames")
    return np.stack(frames)


def source_fps(path: str | os.PathLike) -> float | None:
    """Frame rate of a video file (None for image folders or when the container does not say)."""
    source = Path(path)
    if source.is_dir():
        return None
    with _open_container(source) as container:
        rate = container.streams.video[0].average_rate
        return float(rate) if rate else None


def _open_container(path: Path):
    try:
        container = av.open(str(path))
    except av.error.EOFError as exc:
        raise UserError(f"{path}: cannot open as a video (the file ends early or holds no frames)") from exc
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot open as a video ({_reason(exc)})") from exc
    try:
        _check_stream(path, container)
    except UserError:
        container.close()
        raise
    return container


def _check_stream(path: Path, container) -> None:
    if not container.streams.video:
        raise UserError(f"{path}: has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise UserError(f"{path}: unsupported video codec (this FFmpeg build has no decoder for it)")
    check_size(path, stream.codec_context.width, stream.codec_context.height)


def check_size(where, width: int, height: int) -> None:
    """Refuse a source whose frames exceed MAX_SOURCE_PIXELS, before decoding them."""
    if width * height > MAX_SOURCE_PIXELS:
        raise UserError(f"{where}: {width}x{height} pixels per frame, over the limit of "
                        f"{MAX_SOURCE_PIXELS / 1e6:g} million; scale it down first")


def _iter_video_file(path: Path, sampling: Sampling) -> Iterator[np.ndarray]:
    with _open_container(path) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate) if stream.average_rate else None
        keep = keep_mask(rate, sampling, str(path))
        try:
            for index, frame in enumerate(container.decode(stream)):
                if keep(index):
                    check_size(path, frame.width, frame.height)
                    yield square_resize(to_rgb_uint8(_frame_array(frame)), sampling.resolution)
        except av.error.FFmpegError as exc:
            raise UserError(f"{path}: corrupt video data ({_reason(exc)})") from exc


def _frame_array(frame: av.VideoFrame) -> np.ndarray:
    """Decode to RGB uint8 whatever the pixel format (gray, 10/16-bit, alpha)."""
    return frame.to_ndarray(format="rgb24")


def _iter_image_folder(folder: Path, sampling: Sampling) -> Iterator[np.ndarray]:
    if not os.access(folder, os.R_OK | os.X_OK):
        raise UserError(f"{folder}: folder is not readable (permission denied)")
    files = image_files(folder)
    if not files:
        raise UserError(f"{folder}: no images (png, jpg, ...) in this folder")
    keep = keep_mask(None, sampling, str(folder))
    for index, file in enumerate(files):
        if keep(index):
            yield square_resize(_read_image(file), sampling.resolution)


def _read_image(file: Path) -> np.ndarray:
    check_size(file, *_image_size(file))
    image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"{file}: cannot read this image (corrupt or unsupported)")
    if image.ndim == 3 and image.shape[2] >= 3:
        image = np.concatenate([image[:, :, 2::-1], image[:, :, 3:]], axis=2)  # BGR(A) -> RGB(A)
    try:
        return to_rgb_uint8(image)
    except ValueError as exc:
        raise UserError(f"{file}: {exc}") from exc


def _image_size(file: Path) -> tuple[int, int]:
    """(width, height) from the image's header, without decoding it; (0, 0) when Pillow cannot tell
    (OpenCV then tries the file, under its own limit of 2^30 pixels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(file) as image:
                return image.size
        except Image.DecompressionBombError as exc:  # over twice Pillow's own limit
            raise UserError(f"{file}: over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} million pixels, over the limit "
                            f"of {MAX_SOURCE_PIXELS / 1e6:g} million; scale it down first") from exc
        except (OSError, ValueError, SyntaxError):
            return 0, 0


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
