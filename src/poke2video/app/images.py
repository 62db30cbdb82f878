"""Images the app pokes: decoding uploads within limits, and a bounded store of them by id.

An upload is decoded by the reader every command uses (`data.video.read_image`: any format Pillow reads,
the first frame of an animation, turned upright by its EXIF orientation, RGB) and, when its longer side
exceeds `work_side`, scaled down to it (aspect kept). All API coordinates are pixels of that stored image.
"""
from __future__ import annotations

import io
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image

from poke2video.data.video import ImageUnreadable, TooManyPixels, read_image
from poke2video.errors import UserError
from poke2video.poker import load_image


READABLE = "png, jpeg, webp, gif, bmp or tiff"


class AppError(UserError):
    """A request the app refuses: an HTTP status and one line for the JSON `detail`."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 10 * 1024 * 1024    # larger request bodies: 413
    max_pixels: int = 40_000_000                # larger images (width x height before scaling): 413
    work_side: int = 512                        # uploads are scaled down to fit this side
    max_images: int = 64                        # uploads kept; the oldest is forgotten first
    max_waiting: int = 4                        # requests waiting for the inference worker; more: 429


@dataclass(frozen=True)
class StoredImage:
    image_id: str
    name: str
    rgb: np.ndarray                             # uint8 [H, W, 3], read-only

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def describe(self) -> dict:
        return {"image_id": self.image_id, "name": self.name, "width": self.width, "height": self.height,
                "url": f"/api/images/{self.image_id}"}


def decode_upload(data: bytes, limits: Limits) -> np.ndarray:
    """uint8 [H, W, 3] from uploaded bytes; AppError 413 / 415 when too big or not an image."""
    if not data:
        raise AppError(400, "the upload is empty; send an image file (png, jpeg, webp, ...)")
    if len(data) > limits.max_upload_bytes:
        raise AppError(413, f"the upload is larger than the limit of {limits.max_upload_bytes:,} bytes")
    try:
        rgb = read_image(io.BytesIO(data), "the upload", max_pixels=limits.max_pixels)
    except TooManyPixels as exc:
        if exc.width is None:
            raise AppError(413, f"the image has too many pixels; the limit is {limits.max_pixels:,}") from None
        raise AppError(413, f"the image is {exc.width}x{exc.height} = {exc.width * exc.height:,} pixels; "
                            f"the limit is {limits.max_pixels:,}") from None
    except ImageUnreadable as exc:
        if not exc.identified:
            raise AppError(415, f"the upload is not an image this server can read ({READABLE})") from None
        raise AppError(415, f"the upload is a broken or unsupported image ({exc.reason}); send {READABLE}") from None
    return load_image(_fit(Image.fromarray(rgb), limits.work_side))


def check_body_size(content_length: str | None, limits: Limits) -> None:
    """Refuse (413) a request whose declared body is larger than an upload may be (plus form overhead)."""
    try:
        size = int(content_length) if content_length is not None else None
    except ValueError:
        raise AppError(400, f"bad Content-Length header {content_length!r}") from None
    if size is not None and size > limits.max_upload_bytes + 64 * 1024:
        raise AppError(413, f"the request has {size:,} bytes; an upload may have at most "
                            f"{limits.max_upload_bytes:,}")


def _fit(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


class ImageStore:
    """Images by id: fixed ones (the examples) and at most `capacity` uploads, oldest forgotten first.

    Used from the event loop only, so it needs no lock; the arrays it holds are read-only.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._fixed: dict[str, StoredImage] = {}
        self._uploads: OrderedDict[str, StoredImage] = OrderedDict()

    def add_fixed(self, image_id: str, name: str, rgb: np.ndarray) -> StoredImage:
        self._fixed[image_id] = entry = StoredImage(image_id, name, _read_only(rgb))
        return entry

    def add_upload(self, name: str, rgb: np.ndarray) -> StoredImage:
        entry = StoredImage(uuid.uuid4().hex, name, _read_only(rgb))
        self._uploads[entry.image_id] = entry
        while len(self._uploads) > self.capacity:
            self._uploads.popitem(last=False)
        return entry

    def get(self, image_id: str) -> StoredImage:
        entry = self._fixed.get(image_id) or self._uploads.get(image_id)
        if entry is None:
            raise AppError(404, f"unknown image id {image_id[:64]!r}: upload the image again (POST /api/images; "
                                f"the server keeps the last {self.capacity} uploads) or pick one of GET /api/examples")
        if image_id in self._uploads:
            self._uploads.move_to_end(image_id)
        return entry


def _read_only(rgb: np.ndarray) -> np.ndarray:
    rgb = np.array(rgb, dtype=np.uint8, copy=True)
    rgb.setflags(write=False)
    return rgb
