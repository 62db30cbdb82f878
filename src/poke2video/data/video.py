"""Video input: video files through PyAV and folders of numbered images, as square RGB uint8 frames.

Frames are streamed: each decoded frame is converted to RGB, centre-cropped to a square and resized
with area interpolation to the store's resolution before the next one is decoded, so a long video is
never held at full size. Grayscale, 16-bit and alpha inputs all become RGB uint8.

A source larger than MAX_SOURCE_PIXELS (width x height) is refused before any of its frames is
decoded: a video by the size its container declares (and every decoded frame again before it is
converted), an image by the size in its file header. Unsupported codecs, empty and cut-short files
each end in one line naming the file.

`read_image` is the one reader of image files for every command (image folders here, `poke` and
`correlate`, the app's uploads): Pillow, the first frame, turned upright by its EXIF orientation, and
`pil_to_rgb` for the modes Pillow's own RGB conversion gets wrong (16-bit gray would come out white).
"""
from __future__ import annotations

import os
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from poke2video.errors import UserError, one_line
from poke2video.fsutil import os_reason, special_file_kind

MAX_SOURCE_PIXELS = 40_000_000  # 8K UHD (7680 x 4320, 33 Mpx) passes; one RGB frame at the limit is 120 MB
# What Pillow raises on a broken or hostile file besides OSError: fuzzing (tests/test_fuzz_images.py) found
# EOFError, NotImplementedError, SyntaxError and TypeError coming out of its format plugins.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, NotImplementedError, TypeError, IndexError,
                struct.error)
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
    yield from _iter_sized(path, sampling, lambda frame: square_resize(frame, sampling.resolution))


def iter_frame_pairs(path: str | os.PathLike, sampling: Sampling, second_resolution: int,
                     every_frame: bool = False) -> Iterator[tuple[np.ndarray | None, np.ndarray]]:
    """Stream the kept frames twice over, each resized from the decoded frame: (uint8 [res, res, 3],
    uint8 [second_resolution, second_resolution, 3]), e.g. a store's frame and the one its flow is
    estimated on. With `every_frame` the frames the sampling skips come too, as (None, the second size)."""
    def both(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        small = square_resize(frame, sampling.resolution)
        return small, small if second_resolution == sampling.resolution else square_resize(frame, second_resolution)

    def skipped(frame: np.ndarray) -> tuple[None, np.ndarray]:
        return None, square_resize(frame, second_resolution)

    yield from _iter_sized(path, sampling, both, skipped if every_frame else None)


def _iter_sized(path, sampling: Sampling, sized, skipped=None):
    """`sized(frame)` of every kept frame, in order; with `skipped`, also `skipped(frame)` of the others."""
    source = Path(path)
    if source.is_dir():
        yield from _iter_image_folder(source, sampling, sized, skipped)
    elif source.is_file():
        yield from _iter_video_file(source, sampling, sized, skipped)
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
    import av  # here, not at the top: poking reads images through this module and never needs PyAV

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


class TooManyPixels(UserError):
    """A source whose frames exceed the pixel limit, refused before decoding; `width` and `height` are None
    when Pillow refused the size before telling it."""

    def __init__(self, message: str, width: int | None, height: int | None, limit: int):
        super().__init__(message)
        self.width, self.height, self.limit = width, height, limit


class ImageUnreadable(UserError):
    """An image file that cannot be read: `reason` says why (without the file's name); `identified` is
    False when it is not an image at all (or not a file)."""

    def __init__(self, where, reason: str, identified: bool = True):
        super().__init__(f"cannot read image {where}: {reason}")
        self.reason, self.identified = reason, identified


def check_size(where, width: int, height: int, limit: int = MAX_SOURCE_PIXELS) -> None:
    """Refuse a source whose frames exceed `limit` pixels, before decoding them."""
    if width * height > limit:
        raise TooManyPixels(f"{where}: {width}x{height} pixels per frame, over the limit of "
                            f"{limit / 1e6:g} million; scale it down first", width, height, limit)


def _iter_video_file(path: Path, sampling: Sampling, sized, skipped=None):
    import av

    with _open_container(path) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate) if stream.average_rate else None
        keep = keep_mask(rate, sampling, str(path))
        try:
            for index, frame in enumerate(container.decode(stream)):
                kept = keep(index)
                if kept or skipped is not None:
                    check_size(path, frame.width, frame.height)
                    yield (sized if kept else skipped)(to_rgb_uint8(_frame_array(frame)))
        except av.error.FFmpegError as exc:
            raise UserError(f"{path}: corrupt video data ({_reason(exc)})") from exc


def _frame_array(frame: av.VideoFrame) -> np.ndarray:
    """Decode to RGB uint8 whatever the pixel format (gray, 10/16-bit, alpha)."""
    return frame.to_ndarray(format="rgb24")


def _iter_image_folder(folder: Path, sampling: Sampling, sized, skipped=None):
    if not os.access(folder, os.R_OK | os.X_OK):
        raise UserError(f"{folder}: folder is not readable (permission denied)")
    files = image_files(folder)
    if not files:
        raise UserError(f"{folder}: no images (png, jpg, ...) in this folder")
    keep = keep_mask(None, sampling, str(folder))
    for index, file in enumerate(files):
        kept = keep(index)
        if kept or skipped is not None:
            yield (sized if kept else skipped)(read_image(file))


def _check_regular_file(path, where) -> None:
    """Refuse anything but a regular file before opening it (opening a FIFO would wait for a writer)."""
    try:
        os.stat(path)
    except OSError as exc:
        raise ImageUnreadable(where, os_reason(exc), identified=False) from None
    kind = special_file_kind(path)
    if kind is not None:
        raise ImageUnreadable(where, f"{kind}, not an image file", identified=False)


def read_image(source, where=None, max_pixels: int = MAX_SOURCE_PIXELS) -> np.ndarray:
    """uint8 RGB [H, W, 3] from an image file: a path or a binary file object (`where` names it in errors).

    Any format Pillow reads; its first frame, turned upright by its EXIF orientation. A header declaring
    more than `max_pixels` is a `TooManyPixels` before anything is decoded; a path that is not a regular
    file (a folder, a FIFO, a device), a file that is no image, broken or of a mode without an RGB
    conversion is an `ImageUnreadable`. Both are UserErrors with one line."""
    if isinstance(source, (str, os.PathLike)):
        where = source if where is None else where
        _check_regular_file(source, where)
    where = "the image" if where is None else where
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(source) as opened:
                check_size(where, *opened.size, limit=max_pixels)
                if opened.width < 1 or opened.height < 1:
                    raise ImageUnreadable(where, f"the image is empty ({opened.width}x{opened.height})")
                image = _decode(opened)
        except Image.DecompressionBombError:    # over twice Pillow's own limit: the size is not told
            raise TooManyPixels(f"{where}: over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} million pixels, over the "
                                f"limit of {max_pixels / 1e6:g} million; scale it down first",
                                None, None, max_pixels) from None
        except UnidentifiedImageError:
            raise ImageUnreadable(where, "not an image file this program can read", identified=False) from None
        except IMAGE_ERRORS as exc:
            raise ImageUnreadable(where, f"broken or unsupported ({one_line(exc)})") from None
    try:
        return pil_to_rgb(image)
    except UserError as exc:
        raise ImageUnreadable(where, str(exc)) from None


def image_header_size(path) -> tuple[int, int] | None:
    """(width, height) an image file's header declares, without decoding it; None when it cannot tell (not a
    regular file, not an image: `read_image` then says why)."""
    if special_file_kind(path) is not None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as opened:
                return opened.size
        except (*IMAGE_ERRORS, UnidentifiedImageError, Image.DecompressionBombError):
            return None


def _decode(opened: Image.Image) -> Image.Image:
    """The first frame of an opened image, decoded and turned upright by its EXIF orientation."""
    opened.seek(0)
    image = ImageOps.exif_transpose(opened)
    image.load()
    return image


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """uint8 RGB [H, W, 3] from a PIL image of any mode, the way image folders and videos read it: 16- and
    32-bit integer gray (I;16*, I) keeps the top 8 of 16 bits, float gray (F) is read as [0, 1]; other
    modes go through Pillow's RGB conversion. A mode without one, or NaN/inf pixels, is a UserError."""
    if image.mode.startswith("I"):
        gray = np.clip(np.asarray(image).astype(np.int64), 0, 65535) >> 8
    elif image.mode == "F":
        gray = np.asarray(image, dtype=np.float64)
        if not np.isfinite(gray).all():
            raise UserError("the F (float) image has NaN or infinite pixels")
        gray = np.round(np.clip(gray, 0.0, 1.0) * 255)
    else:
        try:
            return np.asarray(image.convert("RGB"))
        except IMAGE_ERRORS as exc:
            raise UserError(f"cannot convert the {image.mode} image to RGB: {one_line(exc)}") from None
    return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
