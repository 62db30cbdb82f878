"""Weight files of pretrained networks: found, read without unpickling code, and matched to a module.

A file is found the same way for every network (`resolve_weights`): an explicit path, else the file the
network's publisher names under `torch.hub.get_dir()/checkpoints`, else one download attempt into that
cache; when none works, `WeightsUnavailable` names the command-line option that supplies the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from poke2video.errors import WeightsUnavailable


@dataclass(frozen=True)
class WeightFile:
    filename: str  # name in the torch hub cache, as torchvision / lpips publish it
    url: str
    option: str  # command-line option that supplies a local copy


def resolve_weights(spec: WeightFile, path: str | Path | None = None) -> Path:
    """Local file for `spec`: `path`, else the hub cache copy, else one download into the cache."""
    if path is not None:
        local = Path(path)
        if not local.is_file():
            raise WeightsUnavailable(f"{spec.option}: no such file {local}")
        return local
    cached = Path(torch.hub.get_dir()) / "checkpoints" / spec.filename
    if cached.is_file():
        return cached
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.url, str(cached), progress=True)  # writes a temp file, then moves
    except OSError as exc:
        raise WeightsUnavailable(
            f"{spec.filename} is not in {cached.parent} and downloading it failed ({exc}); "
            f"pass a local copy with {spec.option} PATH"
        ) from exc
    return cached


def load_weight_file(spec: WeightFile, path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """Tensors of the weight file for `spec` (never unpickles code: weights_only)."""
    local = resolve_weights(spec, path)
    try:
        state = torch.load(local, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or foreign file raises many types; all mean "bad input"
        raise WeightsUnavailable(f"{local} ({spec.option}) is not a readable PyTorch weight file: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsUnavailable(f"{local} ({spec.option}) holds no state dict")
    return state


def load_matching(module: nn.Module, state: dict[str, torch.Tensor], spec: WeightFile) -> None:
    """Copy the tensors of `state` whose keys `module` has; every key of `module` must be present."""
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    wrong = [key for key in expected if key in state and tuple(state[key].shape) != tuple(expected[key].shape)]
    if missing or wrong:
        problems = (["missing " + ", ".join(missing[:4])] if missing else []) + (
            ["wrong shape " + ", ".join(wrong[:4])] if wrong else []
        )
        raise WeightsUnavailable(f"weights given by {spec.option} do not fit {spec.filename}: {'; '.join(problems)}")
    module.load_state_dict({key: state[key] for key in expected})
    module.requires_grad_(False)
    module.eval()
