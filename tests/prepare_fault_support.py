"""Kill `poke2video prepare` and `simulate` with SIGKILL at random moments, resume, compare with a clean run.

The harness of tests/test_prepare_faults.py (a few kills); run as a script it is the long form, with
many kills and one printed row per command:

    OMP_NUM_THREADS=1 .venv/bin/python tests/prepare_fault_support.py [--kills 20] [--seed 0] [--videos 24] \
        [--frames 60] [--clips 400]

Per command: one uninterrupted run makes the reference store. Then the same command is started and
killed again and again (SIGKILL to its whole process group, as a crash or a lost machine would): the
first kill comes 0-50 ms after the start (while Python is still importing), every later one at a seeded
random moment: once one more video of the store is finished, after a random 0-300 ms delay, so kills
land inside video writes, between them and in the final rename. The command is then run to completion
and every file of the result (manifest, records, every array) is compared byte for byte with the
reference.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memory_support import write_long_video  # tests/ is on sys.path under pytest and when run as a script

POLL_S = 0.005


@dataclass
class FaultReport:
    """What the kills met and whether the finished store equals the reference."""

    kills: int = 0
    early: int = 0                # killed before any video was finished
    midway: int = 0               # killed with some, not all, videos finished and no output yet
    finished_first: int = 0       # the command ended before its kill came (counted, not a kill)
    stale_temporaries: int = 0    # half-written temporary files or folders found after kills
    differing: list[str] = field(default_factory=list)
    seconds: float = 0.0


def poke2video(*args: str) -> list[str]:
    return [sys.executable, "-m", "poke2video", *args]


def finished_videos(out: Path) -> int:
    return len(list(out.with_name(out.name + ".partial").glob("videos/*/record.json")))


def temporaries(out: Path) -> int:
    partial = out.with_name(out.name + ".partial")
    return len(list(partial.glob(".*.tmp-*")) + list(partial.glob("videos/.*.tmp-*")))


def kill_once(command: list[str], cwd: Path, out: Path, wait_for: int | None, delay: float) -> bool:
    """Start `command`; once `wait_for` videos are finished (None: at once) wait `delay` s and SIGKILL its
    process group. Returns False if the command ended by itself first."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    while wait_for is not None and process.poll() is None and finished_videos(out) < wait_for:
        time.sleep(POLL_S)
    deadline = time.monotonic() + delay
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return True


def differences(reference: Path, result: Path) -> list[str]:
    """Relative paths of the files that differ in content or exist on one side only."""
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    mine, theirs = files(result), files(reference)
    same = {f for f in mine & theirs if filecmp.cmp(reference / f, result / f, shallow=False)}
    return sorted((mine | theirs) - same)


def run_with_kills(command: list[str], cwd: Path, out: Path, reference: Path, kills: int, seed: int) -> FaultReport:
    """Kill `command` (which writes `out`) up to `kills` times, finish it, compare `out` with `reference`."""
    rng = np.random.default_rng(seed)
    report, start = FaultReport(), time.perf_counter()
    for attempt in range(kills):
        done = finished_videos(out)
        if attempt == 0:
            killed = kill_once(command, cwd, out, None, rng.uniform(0.0, 0.05))
        else:
            killed = kill_once(command, cwd, out, done + 1, rng.uniform(0.0, 0.3))
        if not killed:
            report.finished_first += 1
            break
        report.kills += 1
        after = finished_videos(out)
        report.early += after == 0
        report.midway += after > 0 and not out.exists()
        report.stale_temporaries += temporaries(out)
    if not out.exists():
        subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report.differing = differences(reference, out)
    report.seconds = time.perf_counter() - start
    return report


def make_videos(folder: Path, count: int, frames: int, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_long_video(folder / f"v{i:02d}.mp4", frames + 7 * i, size, seed=i)
    return folder


def fault_test(name: str, args: list[str], cwd: Path, kills: int, seed: int) -> FaultReport:
    """Reference run of `poke2video ARGS --out ref_NAME`, then the killed runs writing `NAME`."""
    subprocess.run(poke2video(*args, "--out", f"ref_{name}"), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return run_with_kills(poke2video(*args, "--out", name), cwd, cwd / name, cwd / f"ref_{name}", kills, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="kills per command (fewer if it finishes first)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--videos", type=int, default=24, help="input videos of prepare (at most one kill per video)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the first video (each next one 7 more)")
    parser.add_argument("--clips", type=int, default=400, help="PokeSim clips (in store videos of 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        make_videos(cwd / "in", args.videos, args.frames, 64)
        commands = {"prepare": ["prepare", "in", "--res", "64"],
                    "simulate": ["simulate", "--clips", str(args.clips), "--chunk-clips", "20", "--seed", "3"]}
        print(f"{'command':<9} {'kills':>5} {'early':>5} {'mid-way':>7} {'ended first':>11} {'stale temps':>11} "
              f"{'stores equal':>12} {'seconds':>8}")
        for name, command in commands.items():
            r = fault_test(name, command, cwd, args.kills, args.seed)
            equal = "yes" if not r.differing else f"NO: {', '.join(r.differing[:3])}"
            print(f"{name:<9} {r.kills:>5} {r.early:>5} {r.midway:>7} {r.finished_first:>11} "
                  f"{r.stale_temporaries:>11} {equal:>12} {r.seconds:>8.1f}")


if __name__ == "__main__":
    main()
