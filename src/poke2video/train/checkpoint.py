"""The run directory: config, latest weights and the state `--resume` needs, each written atomically.

    RUN/config.json        the preset (model + train), seed and data path of the run
    RUN/model.safetensors  latest weights + model config + metadata: all that `Poker.load` needs
    RUN/resume.pt          step, epoch, every weight and optimizer state, RNG states (tensors and
                           plain values only: read back with torch.load(weights_only=True), no pickled code)
    RUN/metrics.jsonl      one line per logged step with every scalar; RUN/tb/ TensorBoard events

resume.pt holds the generator weights too, so a run killed between the two writes still resumes from a
consistent state; model.safetensors is the export.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from poke2video.config import Preset, preset_from_dict, to_dict
from poke2video.errors import UserError
from poke2video.fsutil import atomic_path, write_json

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
RESUME_FILE = "resume.pt"


def check_new_run_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} is not empty: pass --resume to continue that run, or choose another --out")


def check_resume_dir(out: Path) -> None:
    if not (out / RESUME_FILE).is_file() or not (out / CONFIG_FILE).is_file():
        raise UserError(f"{out} has no resume state ({RESUME_FILE}); start a new run without --resume")


def write_run_config(out: Path, preset: Preset, seed: int, data: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG_FILE, {"preset": to_dict(preset), "seed": seed, "data": str(data)})


def read_run_config(out: Path) -> tuple[Preset, int, str]:
    path = out / CONFIG_FILE
    try:
        saved = json.loads(path.read_text())
        return preset_from_dict(saved["preset"]), int(saved["seed"]), str(saved["data"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is damaged ({exc}); start a new run") from None


def save_resume_state(out: Path, state: dict[str, Any]) -> None:
    with atomic_path(out / RESUME_FILE) as tmp:
        torch.save(state, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())


def load_resume_state(out: Path) -> dict[str, Any]:
    path = out / RESUME_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise UserError(f"{path} is damaged or unreadable ({exc}); start a new run") from None


def save_weights(out: Path, model: torch.nn.Module, metadata: dict[str, Any]) -> None:
    from poke2video.model.weights import save_model

    save_model(out / WEIGHTS_FILE, model, metadata)


def rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
