"""Kill `poke2video train` with SIGKILL and resume it: the harness of tests/test_train_faults.py and
benchmarks/fault_injection_train.py.

A kill comes either from the test hook in `poke2video.fsutil` (the process kills itself just before it
renames its N-th finished temporary onto a given file: a checkpoint write cut in the middle, for sure)
or from outside, at a chosen moment: once the run has logged a given step, after a given delay.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from poke2video.fsutil import KILL_BEFORE_RENAME_ENV, stale_temporaries
from poke2video.model.weights import read_header, read_verified
from poke2video.train.checkpoint import CONFIG_FILE, RESUME_FILE, WEIGHTS_FILE, load_resume_state

VOLATILE_LOG_KEYS = ("time", "perf/samples_per_s")  # wall-clock values: the only ones a resume may change


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
