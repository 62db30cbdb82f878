"""The run directory: config, latest weights and the state `--resume` needs, each written atomically.

    RUN/config.json        the preset (model + train, the preset's layout), seed, data path and validation
                           store of the run, and the weights it started from (`--init`: their path and
                           content digest); `config_version` 2 (none: the flat layout, `families.py`)
    RUN/model.safetensors  latest weights + model config + metadata: all that `Poker.load` needs
    RUN/best.safetensors   with a validation store (--val-data): the weights that scored best there
    RUN/steps/step_0002500.safetensors   with train.keep_every: the weights of every keep_every-th step
    RUN/resume.pt          step, epoch, every weight and optimizer state, RNG states (tensors and
                           plain values only: read back with torch.load(weights_only=True), no pickled code)
    RUN/metrics.jsonl      one line per logged step with every scalar; RUN/tb/ TensorBoard events

Both weights files carry a sha256 of their content (`poke2video.integrity`), checked when they are read:
a truncated or altered file is a one-line error naming it. resume.pt holds the generator weights too and
is written first, so a run killed anywhere resumes from a consistent state: `--resume` starts from
resume.pt (from step 0 when the run was killed before its first checkpoint), rewrites model.safetensors
from it (a kill between the two writes leaves the export one checkpoint behind) and removes the
temporaries a killed write left.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from poke2video.config import RetiredOption
from poke2video.errors import UserError, first_line
from poke2video.fsutil import atomic_path, fsync_file, remove_path, stale_temporaries, write_json
from poke2video.integrity import content_sha256
from poke2video.model.weights import load_model, save_model, stored_digest
from poke2video.preset import Preset, preset_from_dict

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"    # with --val-data: the weights of the best validation so far
RESUME_FILE = "resume.pt"
STEPS_DIR = "steps"               # with train.keep_every: step_STEP.safetensors, one per kept step
CONFIG_VERSION = 2                # config.json's layout: each family's own sections (1: one flat layout)


def check_new_run_dir(out: Path) -> None:
    """A new run needs an empty (or absent) directory; temporaries of a run killed at its start do not count."""
    if not holds_no_run(out):
        raise UserError(f"{out} is not empty: pass --resume to continue that run, or choose another --out")


def holds_no_run(out: Path) -> bool:
    """True when `out` is absent or empty (temporaries of a run killed at its very start do not count)."""
    return not out.exists() or (out.is_dir() and not set(out.iterdir()) - set(stale_temporaries(out)))


def check_resume_dir(out: Path) -> bool:
    """Can `out` be resumed? True when it holds resume.pt; False when the run was killed before its first
    checkpoint (config.json only: it starts again at step 0); otherwise a UserError."""
    if not (out / CONFIG_FILE).is_file():
        raise UserError(f"{out} has no resume state (no {CONFIG_FILE}); start a new run without --resume")
    if (out / RESUME_FILE).is_file():
        return True
    if (out / WEIGHTS_FILE).exists():
        raise UserError(f"{out / RESUME_FILE} is missing although the run has {WEIGHTS_FILE}; start a new run")
    return False


def remove_stale_temporaries(out: Path) -> None:
    for path in stale_temporaries(out) + stale_temporaries(out / STEPS_DIR):
        remove_path(path)


def write_run_config(out: Path, preset: Preset, seed: int, data: str, val_data: str | None = None,
                     init: dict[str, str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG_FILE, {"config_version": CONFIG_VERSION, "preset": preset.to_dict(), "seed": seed,
                                   "data": str(data), "val_data": val_data, "init": init})


def read_run_config(out: Path) -> tuple[Preset, int, str, str | None, dict[str, str] | None]:
    """(preset, seed, data, val_data, init) of a run; val_data is None for runs validated on their own store,
    init ({"weights", "sha256"}, `init_source`) None for runs started from random weights."""
    path = out / CONFIG_FILE
    try:
        saved = json.loads(path.read_text())
        val_data = saved.get("val_data")
        flat = saved.get("config_version", 1) == 1      # written before each family had its own sections
        return (preset_from_dict(saved["preset"], flat=flat), int(saved["seed"]), str(saved["data"]),
                None if val_data is None else str(val_data), saved.get("init"))
    except RetiredOption as exc:
        raise UserError(f"{path}: {exc}") from None
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path} is damaged ({exc}); start a new run") from None


def init_source(init: str) -> dict[str, str | None]:
    """{"weights": the file `init` names (a weights file, or a bundled model's name), "sha256": its content
    digest}: what a run's config records of the weights it started from."""
    from poke2video.poker import weights_path     # the bundled models' names live with the pipeline

    path = weights_path(init)
    return {"weights": str(path.resolve()), "sha256": stored_digest(path)}


def init_weights(model: torch.nn.Module, init: str) -> dict[str, str | None]:
    """Copy into `model` the weights `init` names, which must be the same network: the same family and every
    model option the same but those only `Poker` reads (`render_options`). Returns `init_source(init)`."""
    source = init_source(init)
    loaded, _ = load_model(source["weights"])      # checks the tensors against that digest
    ours, theirs = model.cfg, loaded.cfg
    if theirs.family != ours.family:
        raise UserError(f"--init {init}: a {theirs.family} model; the preset's is {ours.family}")
    theirs_options = theirs.to_dict()
    differ = sorted(k for k, v in ours.to_dict().items()
                    if k not in ours.render_options and theirs_options.get(k) != v)
    if differ:
        raise UserError(f"--init {init}: its network differs from the preset's in model."
                        f"{', model.'.join(differ)}; use the preset it was trained with")
    model.load_state_dict(loaded.state_dict())
    return source


def save_resume_state(out: Path, state: dict[str, Any]) -> None:
    """torch.save `state` (tensors and plain values) plus its content digest under the key `sha256`."""
    with atomic_path(out / RESUME_FILE) as tmp:
        torch.save({**state, "sha256": content_sha256(state)}, tmp)
        fsync_file(tmp)


def load_resume_state(out: Path) -> dict[str, Any]:
    """The state `save_resume_state` wrote, after checking its digest (a file without one, written before
    the digest existed, loads unchecked)."""
    path = out / RESUME_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise UserError(f"{path} is damaged or unreadable ({first_line(exc)}); start a new run") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a poke2video resume state; start a new run")
    stored = state.pop("sha256", None)
    if stored is not None and stored != content_sha256(state):
        raise UserError(f"{path} is damaged: its content does not match the sha256 it was saved with; "
                        "start a new run")
    return state


def save_weights(out: Path, model: torch.nn.Module, metadata: dict[str, Any], name: str = WEIGHTS_FILE) -> None:
    save_model(out / name, model, metadata)


def rng_state() -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
