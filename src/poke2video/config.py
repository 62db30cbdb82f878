"""Typed configuration. Every option has one home here; modules take these objects, never raw dicts.

Presets are YAML files in `poke2video/presets/` that fill these dataclasses; unknown keys are errors.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from poke2video.errors import UserError

PRESET_DIR = Path(__file__).parent / "presets"


def poke_size_for(resolution: int) -> int:
    """Side of the poke square: 3 at 64 px, 5 at 128 px, odd and growing with resolution."""
    return 2 * max(1, round(resolution / 64)) + 1


@dataclass
class DataConfig:
    """How videos become a dataset store (`prepare`) and how clips and pokes are drawn from it."""

    resolution: int = 64          # square side in pixels after resize + centre crop
    clip_length: int = 10         # T: frames generated after the source frame (a clip holds T + 1)
    frame_stride: int = 1         # keep every k-th frame of the source video (taichi: 2)
    target_fps: float | None = None  # resample to this rate instead of a fixed stride (h36m: 6.25)
    start_step: int = 1           # distance in frames between consecutive clip starts
    flow_method: str = "dis"      # optical flow estimator (see data/flow.py)

    def validate(self) -> None:
        if self.resolution < 16 or self.resolution > 1024:
            raise UserError(f"resolution must be between 16 and 1024 pixels, got {self.resolution}")
        if self.clip_length < 1:
            raise UserError(f"clip_length must be at least 1, got {self.clip_length}")
        if self.frame_stride < 1 or self.start_step < 1:
            raise UserError("frame_stride and start_step must be at least 1")
        if self.target_fps is not None and not self.target_fps > 0:
            raise UserError(f"target_fps must be positive, got {self.target_fps}")


@dataclass
class PokeConfig:
    """How training pokes are sampled from flow (PAPER.md, "Training data without labels")."""

    poke_size: int = 3                  # side of the square in the poke map; use poke_size_for(res)
    background_fraction: float = 0.1    # share of pokes placed on still background pixels
    background_percentile: float = 10.0  # background = flow magnitude below this percentile
    impulse: bool = False               # appendix B: poke = direction + normalised strength
    seed: int = 0


def from_dict(cls, data: dict[str, Any] | None):
    """Build dataclass `cls` from a dict, recursing into nested dataclasses; unknown keys are errors."""
    data = dict(data or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    kwargs = {}
    for name, value in data.items():
        ftype = known[name].type
        sub = _dataclass_named(ftype)
        kwargs[name] = from_dict(sub, value) if sub is not None and isinstance(value, dict) else value
    return cls(**kwargs)


def _dataclass_named(type_name) -> type | None:
    if isinstance(type_name, type) and dataclasses.is_dataclass(type_name):
        return type_name
    candidate = globals().get(str(type_name))
    return candidate if isinstance(candidate, type) and dataclasses.is_dataclass(candidate) else None


def to_dict(obj) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def load_preset_yaml(name: str) -> dict[str, Any]:
    """Read `presets/<name>.yaml`; the error lists the presets that exist."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise UserError(f"unknown preset {name!r}; available: {', '.join(available)}")
    with open(path) as f:
        return yaml.safe_load(f) or {}


__all__ = ["DataConfig", "PokeConfig", "poke_size_for", "from_dict", "to_dict", "load_preset_yaml"]
