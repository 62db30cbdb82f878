"""PokeSim throughput (clips/s) at 64 and 128 px, and the end-to-end time of a full dataset.

    .venv/bin/python benchmarks/bench_simulate.py [--repeats 3] [--clips 200] [--full 4000] [--workers 2]

Per resolution, over several repeats (median reported):
    reference  DIS optical flow F(0 -> T) for as many clips as are simulated (what `prepare` spends on
               one flow per clip of the same size), measured in the same run
    chunk      `render_chunk`: scenes, physics, rendering and ground truth of --clips clips, one process
and prints clips/s of each and their ratio (compare the ratio across runs on a shared machine).
With --full N it then runs `simulate_dataset` for N clips at 64 px with --workers processes once and
prints the wall time (target: 4000 clips in under two minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_prepare import median_seconds   # benchmarks/ is on sys.path when run as a script

from poke2video.data.flow import get_flow_estimator
from poke2video.sim.generate import SimConfig, _scene_config, clip_specs, simulate_dataset
from poke2video.sim.scene import render_chunk


def bench_resolution(resolution: int, clips: int, repeats: int) -> tuple[float, float]:
    specs = clip_specs(clips, SimConfig(resolution=resolution))
    scene = _scene_config(resolution)
    arrays = render_chunk(specs[:4], scene)
    first, last = arrays["frames"][0], arrays["frames"][10]
    flow = get_flow_estimator("dis")
    reference = median_seconds(lambda: [flow(first, last) for _ in range(clips)], repeats)
    chunk = median_seconds(lambda: render_chunk(specs, scene), repeats)
    return clips / reference, clips / chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=200, help="clips per timed chunk")
    parser.add_argument("--full", type=int, default=0, help="also time a whole 64 px dataset of this many clips")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"{'res':>5} {'reference clips/s':>18} {'PokeSim clips/s':>16} {'ratio':>7}")
    for resolution in (64, 128):
        reference, sim = bench_resolution(resolution, args.clips, args.repeats)
        print(f"{resolution:>5} {reference:>18.1f} {sim:>16.1f} {sim / reference:>7.3f}")
    if args.full:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            simulate_dataset(Path(tmp) / "pokesim", clips=args.full, resolution=64, workers=args.workers)
            seconds = time.perf_counter() - start
            size = sum(f.stat().st_size for f in (Path(tmp) / "pokesim").rglob("*") if f.is_file())
        print(f"full dataset: {args.full} clips at 64 px, {args.workers} workers: {seconds:.1f} s "
              f"({args.full / seconds:.1f} clips/s), {size / 2 ** 30:.2f} GiB on disk")


if __name__ == "__main__":
    main()
