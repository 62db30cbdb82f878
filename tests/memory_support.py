"""Long synthetic videos and the peak memory of a `poke2video` command run in a fresh process.

Shared by the memory tests of `prepare`, the kill harness of `prepare` (prepare_fault_support.py) and
benchmarks/bench_prepare_memory.py. A long video is a cycle of CYCLE frames (a textured square crossing a
textured background) repeated to the wanted length, encoded as lossless mp4 (libx264) frame by frame.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

CYCLE = 32

MEASURED = """import sys
from poke2video.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
finally:
    with open(sys.argv[1], "w") as out:
        out.write(open("/proc/self/status").read())
sys.exit(code)
"""


def peak_rss_run(args: list[str], cwd: str | os.PathLike | None = None) -> tuple[int, str, int, float]:
    """Run `poke2video ARGS` in a fresh Python; return its exit status, stderr, peak resident memory in
    bytes and wall seconds.

    The peak is VmHWM of the process's own address space, read from /proc when the command ends
    (Linux). ru_maxrss would not do: it includes the parent's memory copied at fork, before exec.
    """
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        status_file = Path(tmp) / "status"
        result = subprocess.run([sys.executable, "-c", MEASURED, str(status_file), *args], cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        status = dict(line.split(":", 1) for line in status_file.read_text().splitlines() if ":" in line)
    peak = int(status["VmHWM"].split()[0]) * 1024
    return result.returncode, result.stderr, peak, time.perf_counter() - start


def cycle_frames(size: int, seed: int = 0) -> np.ndarray:
    """uint8 [CYCLE, size, size, 3]: a textured square moving 1 px per frame over a textured background."""
    rng = np.random.default_rng(seed)
    background = cv2.resize(rng.random((size // 4, size // 4, 3), np.float32), (size, size))
    background = (background * 255).astype(np.uint8)
    square = size // 4
    patch = (cv2.resize(rng.random((4, 4, 3), np.float32), (square, square)) * 127 + 128).astype(np.uint8)
    frames = np.repeat(background[None], CYCLE, axis=0)
    top = (size - square) // 2
    for t in range(CYCLE):
        left = size // 8 + t * (size - square - size // 8) // CYCLE
        frames[t, top:top + square, left:left + square] = patch
    return frames


def write_long_video(path: Path, frames: int, size: int, seed: int = 0) -> Path:
    """An mp4 of `frames` frames, the cycle repeated; encoded frame by frame (never held whole)."""
    cycle = cycle_frames(size, seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for t in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(cycle[t % CYCLE], format="rgb24")))
        container.mux(stream.encode())
    return path
