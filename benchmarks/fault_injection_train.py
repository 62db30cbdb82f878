"""Kill `poke2video train` many times with SIGKILL, resume it each time, and compare with a run never killed.

    OMP_NUM_THREADS=1 python benchmarks/fault_injection_train.py --kills 30 --steps 60 [--workers 2]

The data is a small PokeSim store (`simulate`, 64 px), the model cpu-64 with a batch of 4, a checkpoint
every 2 steps, a log line every step and a validation every 5. Each kill is, at seeded random, one of
- "hook": the test hook in poke2video.fsutil kills the process just before it renames its k-th
  resume.pt or model.safetensors temporary (k in 1..3): certainly inside a checkpoint write;
- "start": a moment in the first 4 s after launch (imports, opening the store, building the model);
- "step": once the run has logged a step chosen ahead of where it is (the kills spread over the steps
  left), after a delay of up to 0.5 s.
After the kills it resumes to the end and checks, as tests/test_train_faults.py does, that
model.safetensors (every tensor and metadata string), resume.pt (weights, optimizer moments, step,
epoch, RNG) and metrics.jsonl (wall-clock values aside) equal those of the uninterrupted run. Prints a
table: kills by kind, how many cut a checkpoint write (a new temporary left, or the export newly behind
resume.pt), resumes, equal yes/no and the time taken.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fault_support import Attempt, attempt, differences, logged_step, train_args  # noqa: E402

from poke2video.config import load_preset_yaml  # noqa: E402
from poke2video.sim.generate import simulate_dataset  # noqa: E402

TRAIN = {"batch_size": 4, "log_every": 1, "val_every": 5, "val_clips": 4, "checkpoint_every": 2}


def make_inputs(root: Path, clips: int) -> tuple[Path, Path]:
    data = root / "data"
    simulate_dataset(out=str(data), clips=clips, resolution=64, seed=0, kind="mixed", workers=1)
    preset = load_preset_yaml("cpu-64")
    preset["train"] = {**preset.get("train", {}), **TRAIN}
    path = root / "preset.yaml"
    path.write_text(yaml.safe_dump(preset))
    return data, path


def one_kill(rng: random.Random, args: list[str], run: Path, steps: int, kills_left: int) -> Attempt:
    kind = rng.choices(["hook", "start", "step"], weights=[1, 1, 3])[0]
    if kind == "hook":
        target = f"{rng.choice(['resume.pt', 'model.safetensors'])}:{rng.randint(1, 3)}"
        return attempt(args, run, f"hook {target}", kill_before_rename=target)
    if kind == "start":
        return attempt(args, run, "start", kill_at=(0, rng.uniform(0.0, 4.0)))
    logged = logged_step(run)  # the kills spread over the steps left
    step = min(logged + rng.randint(1, max(1, 2 * (steps - 1 - logged) // (kills_left + 1))), steps - 1)
    return attempt(args, run, f"step {step}", kill_at=(step, rng.uniform(0.0, 0.5)))


def faulted_run(data: Path, preset: Path, run: Path, steps: int, kills: int, seed: int,
                workers: int) -> list[Attempt]:
    rng, attempts = random.Random(seed), []
    while (kills_left := kills - sum(a.returncode != 0 for a in attempts)) > 0:
        attempts.append(one_kill(rng, train_args(data, run, preset, steps, workers), run, steps, kills_left))
        if attempts[-1].returncode == 0:  # finished before the kill came
            break
        print(f"  {attempts[-1].how}: exit {attempts[-1].returncode}, left {attempts[-1].window}", file=sys.stderr)
    if not attempts or attempts[-1].returncode != 0:
        attempts.append(attempt(train_args(data, run, preset, steps, workers), run, "to the end"))
    return attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--clips", type=int, default=60, help="PokeSim clips in the store")
    parser.add_argument("--workers", type=int, default=0, help="--workers of every train invocation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill plan")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data, preset = make_inputs(root, options.clips)
        straight = attempt(train_args(data, root / "straight", preset, options.steps), root / "straight", "straight")
        started = time.monotonic()
        attempts = faulted_run(data, preset, root / "run", options.steps, options.kills, options.seed,
                               options.workers)
        elapsed = time.monotonic() - started
        different = differences(root / "run", root / "straight")
    killed = [a for a in attempts if a.returncode != 0]
    kinds = {kind: sum(a.how.startswith(kind) for a in killed) for kind in ("hook", "start", "step")}
    cut = [a for a in killed if a.window is not None]
    print("| steps | workers | kills (hook / start / step) | kills that cut a checkpoint write (hook / other) "
          "| resumes | final state equal | time, killed run (s) | time, straight run (s) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {options.steps} | {options.workers} | {len(killed)} ({kinds['hook']} / {kinds['start']} / "
          f"{kinds['step']}) | {len(cut)} ({sum(a.how.startswith('hook') for a in cut)} / "
          f"{sum(not a.how.startswith('hook') for a in cut)}) | {sum(a.resumed for a in attempts)} | "
          f"{'yes' if not different else 'no: ' + ', '.join(different[:5])} | {elapsed:.1f} | {straight.seconds:.1f} |")


if __name__ == "__main__":
    main()
