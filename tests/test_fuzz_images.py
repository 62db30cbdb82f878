"""Property-based tests of image input: `load_image`, `Poker.animate` and the app's upload decoding.

Whatever comes in (arbitrary or damaged file bytes in every format Pillow writes, every PIL mode, tiny and
odd sizes, NaN/inf float arrays, wrong dtypes and shapes, pokes outside the image, NaN/inf or huge
coordinates), the answer is a valid uint8 [T, H, W, 3] video (or [H, W, 3] image) or one UserError with a
one-line message, never an exception from deep inside Pillow, numpy or torch.
"""
import io
import math
import warnings
from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from app_support import TINY, T
from fuzz_support import assert_one_line, fuzz
from poke2video.app.images import AppError, Limits, decode_upload
from poke2video.errors import UserError
from poke2video.model import PokeModel
from poke2video.poker import Poker, load_image

MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I",
         "I;16", "I;16B", "I;16L", "I;16N", "F"]
# (format, mode) pairs Pillow writes: the seeds that damaged files are made from.
WRITABLE = [("PNG", m) for m in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")] + [
    ("JPEG", "L"), ("JPEG", "RGB"), ("JPEG", "CMYK"), ("GIF", "P"), ("BMP", "1"), ("BMP", "P"), ("BMP", "RGB"),
    ("TIFF", "1"), ("TIFF", "LA"), ("TIFF", "RGBA"), ("TIFF", "CMYK"), ("TIFF", "I;16"), ("TIFF", "F"),
    ("TIFF", "YCbCr"), ("WEBP", "RGBA"), ("ICO", "RGBA"), ("PPM", "I"), ("TGA", "LA"), ("PCX", "RGB"),
    ("SGI", "RGBA"), ("DDS", "RGBA"), ("QOI", "RGB"), ("XBM", "1"), ("SPIDER", "F")]



@lru_cache(maxsize=None)
def seed_file(index: int) -> bytes:
    """A small valid file of WRITABLE[index]: 7 x 5 pixels from a fixed generator."""
    fmt, mode = WRITABLE[index]
    pixels = np.random.default_rng(index).integers(0, 255, (5, 7, 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA")
    image = image.convert(mode) if mode not in ("I;16", "I", "F") else image.convert("L").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@st.composite
def damaged_files(draw) -> bytes:
    """A seed file cut short and/or with a few bytes overwritten, or plain random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=64))
    data = bytearray(seed_file(draw(st.integers(0, len(WRITABLE) - 1))))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


def check_image(rgb) -> None:
    assert isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[0] >= 1 and rgb.shape[1] >= 1 and rgb.flags.c_contiguous


def dds_with_pixel_format(flags: int) -> bytes:
    """A 4 x 4 DDS file whose pixel format flags Pillow does not know (found by this fuzzing)."""
    data = bytearray(seed_file(WRITABLE.index(("DDS", "RGBA"))))
    data[80:84] = flags.to_bytes(4, "little")                    # DDS_PIXELFORMAT.dwFlags
    return bytes(data)


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` (Pillow refuses it as a decompression bomb before decoding)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@fuzz(250)
@given(data=damaged_files())
@example(data=dds_with_pixel_format(0x9B00_0F1B))          # was: NotImplementedError (500 / traceback)
@example(data=png_header(20_000, 20_000))                  # was: DecompressionBombError traceback (CLI)
@example(data=seed_file(WRITABLE.index(("SPIDER", "F")))[:1000])
def test_damaged_files_decode_or_give_one_clear_error(data, tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                        # Pillow warns about truncated or odd files
        try:
            check_image(decode_upload(data, Limits()))
        except AppError as exc:
            assert exc.status in (400, 413, 415)
            assert_one_line(str(exc))
        path = tmp_path_factory.getbasetemp() / "fuzz-image.bin"
        path.write_bytes(data)
        try:
            check_image(load_image(path))
        except UserError as exc:
            assert_one_line(str(exc), str(path))


@st.composite
def pil_images(draw) -> Image.Image:
    """Every PIL mode, 1..9 px a side (1 x 1 and 1 x N included), random raw pixels (NaN/inf in mode F)."""
    mode = draw(st.sampled_from(MODES))
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    length = len(Image.new(mode, size).tobytes())
    return Image.frombytes(mode, size, draw(st.binary(min_size=length, max_size=length)))


@fuzz(150)
@given(image=pil_images())
@example(image=Image.new("La", (3, 2)))                    # was: ValueError "conversion from La to L"
def test_pil_images_of_every_mode(image):
    try:
        rgb = load_image(image)
    except UserError as exc:
        assert_one_line(str(exc), image.mode)
        return
    check_image(rgb)
    assert rgb.shape[:2] == (image.height, image.width)


DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_,
          np.complex64]


@st.composite
def arrays(draw) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(st.sampled_from([(), (4,), (0, 3), (3, 0, 3), (2, 3, 2), (2, 2, 5), (1, 1, 1, 3)])
                 | st.tuples(st.integers(1, 6), st.integers(1, 6))
                 | st.tuples(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3, 4])))
    return draw(hnp.arrays(dtype, shape))


@fuzz(200)
@given(array=arrays())
@example(array=np.full((2, 2, 3), np.nan, np.float32))
@example(array=np.full((1, 7, 3), 0.5, np.float16))
def test_arrays_of_any_dtype_and_shape(array):
    try:
        rgb = load_image(array)
    except UserError as exc:
        assert_one_line(str(exc))
        return
    check_image(rgb)
    assert array.ndim in (2, 3) and rgb.shape[:2] == array.shape[:2]
    colour = (array if array.ndim == 3 else array[..., None])[..., :3]      # alpha is dropped unread
    assert array.dtype == np.uint8 or (array.dtype.kind == "f" and np.isfinite(colour).all())
    expected = colour if array.dtype == np.uint8 else np.round(np.clip(colour, 0, 1) * 255)
    assert np.array_equal(rgb, np.broadcast_to(expected, rgb.shape))


@lru_cache(maxsize=None)
def tiny_poker() -> Poker:
    """A 16 px, T = 3 model with random weights, run through its TorchScript trace as `Poker.load` does."""
    torch.manual_seed(0)
    return Poker(PokeModel(TINY), trace=True)


numbers = (st.floats(-3, 40) | st.integers(-5, 40) | st.floats() | st.sampled_from([10**400, 1e308, -0.0]))
points = (st.tuples(numbers, numbers) | st.lists(numbers, max_size=3) | st.sampled_from(["12", b"12", None, "a"])
          | st.just(np.array([[1.0, 2.0], [3.0, 4.0]])))


@fuzz(60)
@given(height=st.integers(1, 24), width=st.integers(1, 24), source=points, target=points,
       output_size=st.sampled_from(["image", "image", "model", "other"]))
@example(height=5, width=5, source="12", target=(2, 2), output_size="image")      # was: read as (1, 2)
@example(height=5, width=5, source=(10**400, 1), target=(2, 2), output_size="image")   # was: OverflowError
@example(height=1, width=1, source=(0, 0), target=(0, 0), output_size="image")
@example(height=1, width=24, source=(23, 0), target=(0, 0), output_size="model")
def test_animate_any_poke(height, width, source, target, output_size):
    image = np.random.default_rng(height * 31 + width).integers(0, 255, (height, width, 3), dtype=np.uint8)

    def inside(point) -> bool:
        if not (isinstance(point, (tuple, list)) and len(point) == 2
                and all(isinstance(v, (int, float)) and abs(v) < 1e300 for v in point)):
            return False
        return math.isfinite(point[0] + point[1]) and 0 <= point[0] <= width - 1 and 0 <= point[1] <= height - 1

    try:
        video = tiny_poker().animate(image, source, target, output_size=output_size)
    except UserError as exc:
        assert_one_line(str(exc))
        assert not (inside(source) and inside(target) and output_size != "other"), str(exc)
        return
    assert inside(source) and inside(target)
    expected = (16, 16) if output_size == "model" else (height, width)
    assert video.dtype == np.uint8 and video.shape == (T, *expected, 3)


@fuzz(20)
@given(scale=st.sampled_from([0.0, -1.0, math.nan, math.inf, "abc", "0.5", 0.5, 2, [1]]))
@example(scale=0.0)                                         # was: ZeroDivisionError
def test_impulse_scale_from_the_checkpoint(scale):
    poker = Poker(tiny_poker().model, {"impulse_scale": scale})
    try:
        usable = math.isfinite(float(scale)) and float(scale) > 0
    except (TypeError, ValueError):
        usable = False
    try:
        video = poker.animate(np.zeros((8, 8, 3), np.uint8), (2, 2), (5, 6))
    except UserError as exc:
        assert_one_line(str(exc), "impulse_scale")
        assert not usable
        return
    assert usable and video.shape == (T, 8, 8, 3) and poker.modes == ("impulse", "displacement")


def test_a_decompression_bomb_path_is_one_line(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(20_000, 20_000))
    with pytest.raises(UserError, match="bomb.png"):
        load_image(path)
    with pytest.raises(AppError) as refused:
        decode_upload(path.read_bytes(), Limits())
    assert refused.value.status == 413
