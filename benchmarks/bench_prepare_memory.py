"""Peak memory of `poke2video prepare` against the size of the store it writes, for growing videos.

    .venv/bin/python benchmarks/bench_prepare_memory.py [--frames 500 2000 8000] [--res 64]

Each video is synthetic and long (tests/memory_support.py: a cycle of 32 frames, a textured square
crossing a textured background, repeated to the wanted length, lossless mp4). Each row runs the real
command (`poke2video.cli.main`) in a fresh process and reads that process's peak resident memory
(VmHWM, Linux); the floor is the same command failing at once on a missing input (all imports done). With
streaming, peak memory stays flat while the store grows. The poke2video that runs is the one this
Python imports (set PYTHONPATH to compare two source trees).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from memory_support import peak_rss_run, write_long_video  # noqa: E402  (shared with the memory tests)


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--res", type=int, default=64, help="store resolution (the video is made at this size)")
    args = parser.parse_args()
    _, _, floor, _ = peak_rss_run(["prepare", "no-such-video.mp4", "--out", "unused"])
    print(f"prepare --res {args.res}, clip length 10, start step 1; floor (imports, no input) {floor / 2**20:.0f} MiB")
    print(f"{'frames':>7} {'store MiB':>10} {'peak RSS MiB':>13} {'above floor MiB':>16} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.frames:
            video = write_long_video(Path(tmp) / f"long{count}.mp4", count, args.res)
            out = Path(tmp) / f"store{count}"
            status, stderr, peak, seconds = peak_rss_run(["prepare", str(video), "--out", str(out),
                                                          "--res", str(args.res)])
            if status != 0:
                raise SystemExit(f"prepare failed on {count} frames: {stderr.strip().splitlines()[-1]}")
            size = directory_bytes(out)
            print(f"{count:>7} {size / 2**20:>10.1f} {peak / 2**20:>13.0f} {(peak - floor) / 2**20:>16.0f} "
                  f"{seconds:>8.1f}")
            video.unlink()


if __name__ == "__main__":
    main()
