"""Kill `poke2video train` with SIGKILL and resume it: the harness of tests/test_train_faults.py.

A kill comes either from the test hook in `poke2video.fsutil` (the process kills itself just before it
renames its N-th finished temporary onto a given file: a checkpoint write cut in the middle, for sure)
or from outside, at a chosen moment: once the run has logged a given step, after a given delay.

Run as a script it is the long form: it kills `train` many times, resumes it each time and compares
the end with a run never killed:

    OMP_NUM_THREADS=1 .venv/bin/python tests/train_fault_support.py --kills 30 --steps 60 [--workers 2]

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
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from poke2video.config import load_preset_yaml
from poke2video.fsutil import KILL_BEFORE_RENAME_ENV, stale_temporaries
from poke2video.model.weights import read_header, read_verified
from poke2video.sim.generate import simulate_dataset
from poke2video.train.checkpoint import CONFIG_FILE, RESUME_FILE, WEIGHTS_FILE, load_resume_state

VOLATILE_LOG_KEYS = ("time", "perf/samples_per_s")  # wall-clock values: the only ones a resume may change
LONG_FORM_TRAIN = {"batch_size": 4, "log_every": 1, "val_every": 5, "val_clips": 4, "checkpoint_every": 2}


@dataclass
class Attempt:
    how: str               # what was to stop it
    resumed: bool          # ran with --resume
    returncode: int        # -9: killed
    window: str | None     # what the kill left half done, if it cut a checkpoint write (`checkpoint_window`)
    seconds: float


def train_args(data: Path, out: Path, preset: Path, steps: int, workers: int = 0) -> list[str]:
    """`poke2video train` arguments: a new run, or --resume where the run has its config.json already."""
    args = ["train", "--data", str(data), "--out", str(out), "--steps", str(steps), "--workers", str(workers)]
    return args + (["--resume"] if (out / CONFIG_FILE).is_file() else ["--preset", str(preset)])


def launch(args: list[str], kill_before_rename: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    env.pop(KILL_BEFORE_RENAME_ENV, None)
    if kill_before_rename:
        env[KILL_BEFORE_RENAME_ENV] = kill_before_rename
    # stderr (the progress bar) to a file: a pipe nobody reads while the run goes on could fill and block it
    stderr = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "-m", "poke2video", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=stderr)
    process.stderr_file = stderr
    return process


def logged_step(run: Path) -> int:
    """The last step with a complete line in run/metrics.jsonl (0 if none)."""
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True) if path.is_file() else []
    complete = [json.loads(line)["step"] for line in lines if line.endswith("\n")]
    return max(complete, default=0)


def kill_after_step(process: subprocess.Popen, run: Path, step: int, delay: float, timeout: float = 120) -> int:
    """SIGKILL `process` `delay` seconds after `run` logged `step` (unless it ends first); its return code."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and logged_step(run) < step and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    return finish(process)


def finish(process: subprocess.Popen, timeout: float = 300) -> int:
    process.wait(timeout=timeout)
    with process.stderr_file as stderr:
        stderr.seek(0)
        last_lines = stderr.read().strip().splitlines()[-3:]
    if process.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"train exited with {process.returncode}: {last_lines}")
    return process.returncode


def checkpoint_state(run: Path) -> tuple[frozenset, int | None, int | None]:
    """(temporaries, resume.pt's step, model.safetensors' step) of `run`."""
    resumed = load_resume_state(run)["step"] if (run / RESUME_FILE).is_file() else None
    exported = read_header(run / WEIGHTS_FILE)[1]["step"] if (run / WEIGHTS_FILE).is_file() else None
    return frozenset(p.name for p in stale_temporaries(run)), resumed, exported


def checkpoint_window(before: tuple, after: tuple) -> str | None:
    """What a kill between the `checkpoint_state`s `before` and `after` left half done: a new temporary
    not renamed, or the export (model.safetensors) newly behind resume.pt (killed between the two
    writes of a checkpoint); None if neither."""
    found = [f"temporary left: {name}" for name in sorted(after[0] - before[0])]
    if after[1] != after[2] and after[1:] != before[1:]:
        found.append(f"export at step {after[2]}, resume.pt at step {after[1]}")
    return "; ".join(found) or None


def attempt(args: list[str], run: Path, how: str, kill_before_rename: str | None = None,
            kill_at: tuple[int, float] | None = None) -> Attempt:
    """One invocation, stopped by the hook, by `kill_at` = (step, delay), or by nothing."""
    started, before = time.monotonic(), checkpoint_state(run)
    process = launch(args, kill_before_rename)
    code = kill_after_step(process, run, *kill_at) if kill_at else finish(process)
    window = checkpoint_window(before, checkpoint_state(run)) if code != 0 else None
    return Attempt(how, "--resume" in args, code, window, time.monotonic() - started)


def differences(run: Path, reference: Path) -> list[str]:
    """Where `run` differs from `reference`: the export (every tensor's bits, every metadata string),
    the resume state (every tensor and value), the metrics log. The export's bytes are not compared:
    safetensors writes its metadata map in hash order, which changes from process to process."""
    found = []
    for name, loaded in ((WEIGHTS_FILE, lambda r: read_verified(r / WEIGHTS_FILE)), (RESUME_FILE, load_resume_state)):
        mine, theirs = (_flatten(loaded(r)) for r in (run, reference))
        found += [f"{name}: {key}" for key in sorted(mine.keys() | theirs.keys())
                  if key not in mine or key not in theirs or not _same(mine[key], theirs[key])]
    if metrics_rows(run) != metrics_rows(reference):
        found.append("metrics.jsonl")
    return found


def metrics_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in VOLATILE_LOG_KEYS} for row in rows]


def _flatten(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        return {k: v for key, value in obj.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}
    if isinstance(obj, (list, tuple)):
        return {k: v for i, value in enumerate(obj) for k, v in _flatten(value, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): obj}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return type(a) is type(b) and a == b


# the long form (run as a script) ------------------------------------------------------------------

def make_inputs(root: Path, clips: int) -> tuple[Path, Path]:
    data = root / "data"
    simulate_dataset(out=str(data), clips=clips, resolution=64, seed=0, kind="mixed", workers=1)
    preset = load_preset_yaml("cpu-64")
    preset["train"] = {**preset.get("train", {}), **LONG_FORM_TRAIN}
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
