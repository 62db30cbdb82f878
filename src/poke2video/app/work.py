"""The app's CPU work: one worker thread behind a bounded queue, and the jobs it runs.

Everything heavy (decoding uploads, running the model, encoding frames and videos) runs on a single
worker thread, one job at a time, so requests never compete for the cores the model needs. A request
that finds `max_waiting` jobs already waiting behind the running one is refused with 429 at once.
"""
from __future__ import annotations

import asyncio
import base64
import io
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from poke2video.app.images import AppError, StoredImage
from poke2video.export import draw_marks_overlay, write_video
from poke2video.poker import Poker

JPEG_QUALITY = 90
VIDEO_TYPES = {"mp4": "video/mp4", "gif": "image/gif"}


class WorkQueue:
    """Runs functions on one worker thread; at most 1 running + `max_waiting` waiting, else 429."""

    def __init__(self, max_waiting: int, threads: int = 1):
        self.max_waiting = max_waiting
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None        # started on the first job, again after close()
        self._futures: set[Future] = set()

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished (running or waiting), including ones whose client left."""
        self._futures = {f for f in self._futures if not f.done()}
        return len(self._futures)

    async def run(self, fn, *args):
        pending = self.pending
        if pending > self.max_waiting:
            raise AppError(429, f"the server is busy: {pending} requests are running or waiting "
                                f"(limit {self.max_waiting + 1}); try again in a moment")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poke2video-work",
                                                initializer=torch.set_num_threads, initargs=(self.threads,))
        future = self._executor.submit(fn, *args)
        self._futures.add(future)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the worker (the app's shutdown). A later job starts a new one: an ASGI host may run the app's
        lifespan again (a second test client did, and every job after it answered 500)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def png_bytes(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def frame_base64(frame: np.ndarray, fmt: str) -> str:
    """A frame as base64 PNG (lossless) or JPEG (quality 90: much faster to encode for large frames)."""
    if fmt == "png":
        data = png_bytes(frame)
    else:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        data = buffer.getvalue()
    return base64.b64encode(data).decode("ascii")


class PokeInputs(NamedTuple):
    """What a request asks `Poker.animate` for: one poke (source, target) or several (pokes), and pins."""

    source: list[float] | None
    target: list[float] | None
    pokes: list[tuple[list[float], list[float]]] | None
    pins: list[list[float]] | None

    def animate(self, poker: Poker, rgb: np.ndarray, mode: str | None) -> np.ndarray:
        return poker.animate(rgb, self.source, self.target, mode=mode, pokes=self.pokes, pins=self.pins)

    def all_pokes(self) -> list:
        return self.pokes if self.pokes is not None else [(self.source, self.target)]


def poke_job(poker: Poker, image: StoredImage, inputs: PokeInputs, mode: str | None, fmt: str = "png") -> dict:
    """The response to one request: T frames as base64 PNGs or JPEGs at the image's size, and the model's time."""
    started = time.perf_counter()
    video = inputs.animate(poker, image.rgb, mode)
    ms = (time.perf_counter() - started) * 1000
    return {"frames": [frame_base64(frame, fmt) for frame in video], "format": fmt,
            "width": image.width, "height": image.height, "count": len(video), "ms": round(ms, 2),
            "mode": mode or poker.modes[0]}


def video_job(poker: Poker, image: StoredImage, inputs: PokeInputs, mode: str | None, fmt: str,
              overlay: bool) -> bytes:
    """The file `poke2video poke` would write: the image, then the T frames; the pokes and pins drawn if
    `overlay`."""
    video = np.concatenate([image.rgb[None], inputs.animate(poker, image.rgb, mode)])
    if overlay:
        video = draw_marks_overlay(video, inputs.all_pokes(), inputs.pins or [])
    with tempfile.TemporaryDirectory(prefix="poke2video-app-") as folder:
        return write_video(Path(folder) / f"poke.{fmt}", video).read_bytes()
