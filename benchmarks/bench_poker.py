"""Milliseconds per `Poker.animate` call (batch 1, the model's T frames) at the model's size and at 512 px.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_poker.py [--checkpoint CKPT] [--repeats 30]

Rows: the checkpoint (default: the bundled model) poking a 64 px image and a 512 x 512 photo (its output at
512 px: the motion applied to the full-resolution image), and the paper's 64 px architecture (paper-64,
untrained, traced the same way) poking the 64 px image, measured in the same run as the reference. Each
figure is the median of `--repeats` calls after two warm-up calls.
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from poke2video.preset import model_config_for
from poke2video.model import build_model
from poke2video.poker import Poker


def median_ms(poker: Poker, image: np.ndarray, repeats: int) -> float:
    height, width = image.shape[:2]
    source, target = (0.45 * width, 0.5 * height), (0.52 * width, 0.46 * height)
    for _ in range(2):
        poker.animate(image, source, target)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        poker.animate(image, source, target)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def photo(size: int) -> np.ndarray:
    """A smooth random colour image (a stand-in photo)."""
    noise = np.random.default_rng(0).random((size // 8, size // 8, 3)).astype(np.float32)
    return (cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="model.safetensors (default: the bundled model)")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    cv2.setNumThreads(torch.get_num_threads())   # the renderer's OpenCV calls use as many threads as torch
    poker = Poker.load(args.checkpoint)
    paper = Poker(build_model(model_config_for("paper-64")), trace=True)
    small = photo(poker.resolution)
    rows = [("checkpoint", f"{poker.resolution} px", median_ms(poker, small, args.repeats)),
            ("checkpoint", "512 px", median_ms(poker, photo(512), args.repeats)),
            ("paper-64 (untrained)", "64 px", median_ms(paper, photo(64), args.repeats))]
    reference = rows[-1][2]
    print(f"torch threads: {torch.get_num_threads()}, OpenCV threads: {cv2.getNumThreads()}")
    print("| model | image and output | ms / video | vs paper-64 |")
    print("|---|---|---|---|")
    for name, size, ms in rows:
        print(f"| {name} | {size} | {ms:.1f} | {ms / reference:.2f}x |")


if __name__ == "__main__":
    main()
