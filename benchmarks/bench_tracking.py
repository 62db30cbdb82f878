"""Point tracking for the metrics: stock DIS, `FineDIS` and `FineFarneback` on small moving parts at 64 px.

    .venv/bin/python benchmarks/bench_tracking.py [--repeats 5] [--data data/pokesim64 --limit 150]

Each scene is 11 frames at 64 px where a part moves 1 px per frame (10 px in all) over a still
textured background. Every pixel of the part is tracked by `track_points` and compared with its
true position at the last frame. Printed per estimator: the mean and median endpoint error (px) per
scene, and the median time per 64 px frame pair with its ratio to stock DIS measured in the same run.
With `--data` (a PokeSim store), each estimator also tracks the poked pixel through the true clips of the
split's first `--limit` object pokes: the floor that estimator sets for any model's endpoint error.
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from poke2video.data.flow import get_flow_estimator
from poke2video.evaluate.baselines import WarpBaseline
from poke2video.metrics import track_points

SIZE, STEPS = 64, 10


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """uint8 [H, W, 3] smooth random texture."""
    noise = np.random.default_rng(seed).random((height // 4 + 1, width // 4 + 1, 3)).astype(np.float32)
    return (cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def moving_part(width: int, height: int, speed: tuple[int, int], flat: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(video [11, 64, 64, 3], part pixels [N, 2] at frame 0, their motion [N, 2] at the last frame)."""
    background = texture(SIZE, SIZE, 0)
    part = np.full((height, width, 3), (60, 160, 60), np.uint8) if flat else texture(height, width, 1) // 2 + 128
    x0, y0 = 20, 20
    frames = []
    for t in range(STEPS + 1):
        frame = background.copy()
        frame[y0 + speed[1] * t : y0 + speed[1] * t + height, x0 + speed[0] * t : x0 + speed[0] * t + width] = part
        frames.append(frame)
    ys, xs = np.mgrid[y0 : y0 + height, x0 : x0 + width]
    points = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    return np.stack(frames), points, np.tile(np.array(speed, np.float64) * STEPS, (len(points), 1))


def gaussian_warp() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The warp baseline's poke (30, 32) -> (37, 35): only the poked pixel is scored."""
    source = texture(SIZE, SIZE, 2)
    video = np.concatenate([source[None], WarpBaseline()(source, (30, 32), (37, 35), STEPS)])
    return video, np.array([[30.0, 32.0]]), np.array([[7.0, 3.0]])


SCENES = {
    "square 16px diag": lambda: moving_part(16, 16, (1, 1), flat=False),
    "bar 4px textured": lambda: moving_part(4, 20, (1, 0), flat=False),
    "bar 3px diag": lambda: moving_part(3, 20, (1, 1), flat=False),
    "bar 4px flat diag": lambda: moving_part(4, 20, (1, 1), flat=True),
    "gaussian warp": gaussian_warp,
}


def ms_per_pair(estimator, repeats: int) -> float:
    frame_a = texture(SIZE, SIZE, 3)
    frame_b = np.roll(frame_a, 1, axis=1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(50):
            estimator(frame_a, frame_b)
        times.append((time.perf_counter() - start) / 50 * 1000)
    return statistics.median(times)


def pokesim_errors(data: str, split: str, limit: int, estimator) -> np.ndarray:
    """Endpoint error (px) of the poked pixel tracked through the true PokeSim clips (object pokes)."""
    from poke2video.data.store import Store
    from poke2video.evaluate.cases import load_cases
    from poke2video.metrics import poke_endpoint_error

    return np.array([poke_endpoint_error(case.expected_video, case.poke_source, case.true_target, estimator)
                     for case in load_cases(Store.open(data), split, limit) if not case.is_background])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", default=None, help="a PokeSim store: also score tracking on its true clips")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=150, help="clips of the split (with --data)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    scenes = {name: build() for name, build in SCENES.items()}
    estimators = {"dis (stock)": get_flow_estimator("dis"), "dis-fine": get_flow_estimator("dis-fine"),
                  "farneback-fine": get_flow_estimator("farneback-fine")}
    print("| estimator | " + " | ".join(scenes) + " | ms/pair | time vs stock |")
    print("|---" * (len(scenes) + 3) + "|")
    reference_ms = None
    for name, estimator in estimators.items():
        cells = []
        for video, points, motion in scenes.values():
            error = np.hypot(*(track_points(video, points, estimator)[-1] - points - motion).T)
            cells.append(f"{error.mean():.2f} / {np.median(error):.2f}")
        ms = ms_per_pair(estimator, args.repeats)
        reference_ms = reference_ms or ms
        print(f"| {name} | " + " | ".join(cells) + f" | {ms:.2f} | {ms / reference_ms:.1f}x |")
    print("cells: mean / median endpoint error in px after 10 px of motion")
    if args.data:
        print(f"\n| estimator | true PokeSim clips ({args.split}) | mean | median | 90th percentile |")
        print("|---|---|---|---|---|")
        for name, estimator in estimators.items():
            errors = pokesim_errors(args.data, args.split, args.limit, estimator)
            print(f"| {name} | {len(errors)} | {errors.mean():.3f} | {np.median(errors):.3f} | "
                  f"{np.percentile(errors, 90):.3f} |")


if __name__ == "__main__":
    main()
