"""Training logs: TensorBoard event files plus RUN/metrics.jsonl with every logged scalar.

metrics.jsonl holds one JSON object per logged step: {"step": int, "time": unix seconds, "<tag>": value}.
On resume, lines written after the resumed checkpoint (by the killed run) are dropped: those after its
step, those at its step but written after it (a closing validation line), and a line torn by a kill in
mid-write; TensorBoard purges the steps after it too. So the logs read like
one uninterrupted run: every logged step once, in order, with the same values (`time` and
`perf/samples_per_s` aside) as long as `checkpoint_every` is a multiple of `log_every` (otherwise the
first window after a resume averages only the steps since the resume). An invocation that ends between
validation steps (a step or minute budget, Ctrl-C) adds a validation line at the step where it ended.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from poke2video.fsutil import atomic_path, disk_full_guard

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tb"


class RunLogger:
    """Writes scalars and filmstrips on the main rank; a no-op elsewhere."""

    def __init__(self, out: Path, enabled: bool, resume_step: int | None = None, resume_lines: int | None = None):
        """`resume_step` and `resume_lines`: the resumed checkpoint's step and `lines` (None: a new run;
        resume_lines None: a checkpoint from before lines were counted, cut by step only)."""
        self.enabled = enabled
        self.path, self.tb = out / METRICS_FILE, out / TENSORBOARD_DIR
        self.writer = None
        self.lines = 0   # complete lines in metrics.jsonl: a checkpoint records it
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        if resume_step is not None:
            self.lines = _truncate_after(self.path, resume_step, resume_lines)
        with disk_full_guard(self.tb):
            self.writer = SummaryWriter(str(self.tb), purge_step=resume_step)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with disk_full_guard(self.tb):          # TensorBoard's writer thread raises a full disk on a later call
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)
        with disk_full_guard(self.path), open(self.path, "a") as f:
            f.write(json.dumps({"step": step, "time": round(time.time(), 3), **values}, sort_keys=True) + "\n")
        self.lines += 1

    def filmstrip(self, step: int, tag: str, image: np.ndarray) -> None:
        """A uint8 image [H, W, 3] (rows of frames) to TensorBoard."""
        if self.enabled:
            with disk_full_guard(self.tb):
                self.writer.add_image(tag, torch.from_numpy(image), step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            with disk_full_guard(self.tb):
                self.writer.close()


def _truncate_after(path: Path, step: int, lines: int | None) -> int:
    """Keep the complete lines up to `step`, the first `lines` of them at most; how many are kept."""
    if not path.is_file():
        return 0
    kept = [line for line in path.read_text().splitlines(keepends=True) if _logged_step(line) <= step][:lines]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(kept))
    return len(kept)


def _logged_step(line: str) -> float:
    """The step of a complete line; infinity for a blank or torn one (a write cut short by a kill)."""
    try:
        return int(json.loads(line)["step"]) if line.endswith("\n") else float("inf")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return float("inf")


def filmstrip(source: np.ndarray, real: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """uint8 [2 * H, (T + 1) * W, 3]: the source frame then the real clip (top) and generated (bottom).

    source [H, W, 3], real and generated [T, H, W, 3], all uint8.
    """
    top = np.concatenate([source, *real], axis=1)
    bottom = np.concatenate([source, *generated], axis=1)
    return np.concatenate([top, bottom], axis=0)
