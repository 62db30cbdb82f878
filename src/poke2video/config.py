"""Typed configuration shared by both model families, and how YAML and JSON fill a config dataclass.

Every option has one home: the data and poke options and the training options both families read are
here; each family's model and training options are in `flow_config.py` (unet) and `gru_config.py` (gru);
`preset.py` reads a preset (`poke2video/presets/*.yaml`) into one family's pair. Modules take these
objects, never raw dicts; unknown keys are errors.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from poke2video.errors import UserError

PRESET_DIR = Path(__file__).parent / "presets"
FLOW_MASKS = ("none", "changed")   # DataConfig.flow_mask


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
    flow_method: str = "dis"      # optical flow estimator per frame step (see data/flow.py)
    flow_scale: int = 2           # the flow is estimated on frames `flow_scale` times the resolution, then
    #                               area-averaged down with its vectors scaled (data/flow.py, downscale_flow)
    flow_mask: str = "none"       # "changed": each step's flow is zero where the frames' colours did not change

    def validate(self) -> None:
        if self.resolution < 16 or self.resolution > 1024:
            raise UserError(f"resolution must be between 16 and 1024 pixels, got {self.resolution}")
        if self.clip_length < 1:
            raise UserError(f"clip_length must be at least 1, got {self.clip_length}")
        if self.frame_stride < 1 or self.start_step < 1:
            raise UserError("frame_stride and start_step must be at least 1")
        if self.target_fps is not None and not self.target_fps > 0:
            raise UserError(f"target_fps must be positive, got {self.target_fps}")
        if not 1 <= self.flow_scale <= 8:
            raise UserError(f"flow scale must be between 1 and 8, got {self.flow_scale}")
        if self.flow_mask not in FLOW_MASKS:
            raise UserError(f"flow mask must be one of {', '.join(FLOW_MASKS)}, got {self.flow_mask!r}")


POKE_PLACES = ("moving", "onset")   # where flow pokes sit (PokeConfig.place)

ONSET_SPEED = 0.25   # `place: onset` pokes: the leading part's pixels moving at least this fraction of its fastest


@dataclass
class PokeConfig:
    """How training pokes are drawn (docs/architecture.md, "Training pokes from optical flow")."""

    poke_size: int = 3                  # side of the square in the poke map; use poke_size_for(res)
    background_fraction: float = 0.1    # share of pokes placed on still background pixels
    background_percentile: float = 10.0  # background = flow magnitude below this percentile
    impulse: bool = False               # appendix B: poke = direction + normalised strength
    source: str = "flow"                # flow: sampled from the clip's flow (any video); sim: the simulator's
    #                                     own poke of each clip (PokeSim stores: its pushed point and drag);
    #                                     auto: sim on a PokeSim store, flow on any other
    fastest_fraction: float = 0.0       # flow pokes: only pixels moving at least this fraction of the clip's
    #                                     fastest one (0: any moving pixel; 0.5 keeps the part that was pushed)
    place: str = "moving"               # flow pokes: moving: a random pixel of the moving foreground at frame T;
    #                                     onset: a random pixel of the part that leads the first frame step
    onset_speed: float = ONSET_SPEED    # onset: the part's pixels moving at least this fraction of the first
    #                                     step's fastest one (lower reaches nearer the part's joint)
    seed: int = 0

    def validate(self) -> None:
        if not 0.0 <= self.fastest_fraction <= 1.0:
            raise UserError(f"fastest_fraction must lie in [0, 1], got {self.fastest_fraction}")
        if self.poke_size < 1 or self.poke_size % 2 == 0:
            raise UserError(f"poke_size must be a positive odd number, got {self.poke_size}")
        if not 0.0 <= self.background_fraction <= 1.0:
            raise UserError(f"background_fraction must lie in [0, 1], got {self.background_fraction}")
        if self.place not in POKE_PLACES:
            raise UserError(f"poke.place must be {' or '.join(POKE_PLACES)}, got {self.place!r}")
        if not 0.0 < self.onset_speed <= 1.0:
            raise UserError(f"poke.onset_speed must lie in (0, 1], got {self.onset_speed}")
        if self.place == "onset" and self.fastest_fraction > 0:
            raise UserError("poke.place onset already keeps the part that leads; set poke.fastest_fraction to 0")
        if self.source not in ("flow", "sim", "auto"):
            raise UserError(f"poke.source must be flow, sim or auto, got {self.source!r}")
        if self.source == "sim" and self.impulse:
            raise UserError("poke.source: sim gives drags, not impulses; turn poke.impulse off")
        if not 0.0 < self.background_percentile < 100.0:
            raise UserError(f"background_percentile must lie in (0, 100), got {self.background_percentile}")


class RetiredOption(UserError):
    """A weights file or run config sets a key that is no longer an option to a value other than RETIRED's."""


# Keys that are no longer options, each with the one value under which the model and its training were
# what they are now, by the config class (or a base class) that had them. Every weights file and run
# config.json written while they were options holds them (the bundled model does); one holding that value
# loads with the key dropped, any other is RetiredOption.
RETIRED = {"GRUModelConfig": ("model", {"norm": "instance", "bounded_state": False, "poke_input": "coarsest",
                                        "output": "pixels"}),
           "TrainConfig": ("train", {"motion_weight": 0.0, "flow_weight": 0.0, "flow_endpoint_weight": 0.0,
                                     "ema": 0.0})}


def retired_options(cls) -> tuple[str, dict[str, Any]]:
    """(section, {key: its one accepted value}) of the RETIRED keys of config class `cls` and its bases."""
    section = next((RETIRED[k.__name__][0] for k in cls.__mro__ if k.__name__ in RETIRED), "")
    return section, {name: value for k in cls.__mro__ for name, value in RETIRED.get(k.__name__, ("", {}))[1].items()}


def _drop_retired(cls, data: dict[str, Any]) -> dict[str, Any]:
    section, retired = retired_options(cls)
    for name in set(data) & set(retired):
        value = data.pop(name)
        if value != retired[name] or isinstance(value, bool) != isinstance(retired[name], bool):
            raise RetiredOption(f"{section}.{name} {value!r} is no longer supported: the option was removed, and "
                                f"only its value {retired[name]!r} (what the code does now) loads")
    return data


def from_dict(cls, data: dict[str, Any] | None):
    """Build dataclass `cls` from a dict, recursing into nested dataclasses; unknown keys and values of the
    wrong type are errors. RETIRED keys holding their one accepted value are dropped."""
    data = _drop_retired(cls, dict(data or {}))
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise UserError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}")
    hints = get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        if dataclasses.is_dataclass(hints[name]) and isinstance(value, dict):
            kwargs[name] = from_dict(hints[name], value)
        elif _fits(value, hints[name]):
            kwargs[name] = value
        else:
            raise UserError(f"{cls.__name__}.{name} must be {_type_words(hints[name])}, got {value!r}")
    return cls(**kwargs)


def _fits(value, hint) -> bool:
    """Whether a value read from YAML or JSON can stand for a field of type `hint` (an int for a float too,
    a list for a tuple: YAML has no tuples)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple:
            return len(value) == len(args) and all(_fits(item, arg) for item, arg in zip(value, args))
        return all(_fits(item, args[0]) for item in value)
    if hint is type(None):
        return value is None
    if hint is bool or hint is str:
        return isinstance(value, hint)
    if hint in (int, float):
        numbers = (int,) if hint is int else (int, float)
        return isinstance(value, numbers) and not isinstance(value, bool)
    return not dataclasses.is_dataclass(hint)         # a nested config must be a mapping; Any fits anything


def _type_words(hint) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return " or ".join(_type_words(arg) for arg in args)
    if origin is list:
        return f"a list of {_PLURALS.get(args[0], 'values')}"
    if origin is tuple:
        return f"a list of {len(args)} {_PLURALS.get(args[0], 'values')}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(hint, "a mapping")


_PLURALS = {int: "integers", float: "numbers", str: "strings"}


def to_dict(obj) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def check_bounds(section: str, cfg, bounds: dict[str, tuple[int, int]]) -> None:
    """Each named size of `cfg` within its inclusive (low, high) bound; else a UserError naming
    `section.name`. Bounds far beyond any trained model, so that a hostile weights file cannot make loading
    it allocate without end or poking it run without end."""
    for name, (low, high) in bounds.items():
        value = getattr(cfg, name)
        if not low <= value <= high:
            raise UserError(f"{section}.{name} must be between {low} and {high}, got {value}")


def load_preset_yaml(name: str) -> dict[str, Any]:
    """Read `presets/<name>.yaml`; the error lists the presets that exist."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise UserError(f"unknown preset {name!r}; available: {', '.join(available)}")
    with open(path) as f:
        return yaml.safe_load(f) or {}


__all__ = ["DataConfig", "PokeConfig", "poke_size_for", "from_dict", "to_dict", "check_bounds", "load_preset_yaml"]


FLOW_FRAMES = ("last", "all", "auto")   # TrainConfig.flow_frames; PokeDataset resolves auto


@dataclass
class TrainConfig:
    """How a model is trained (docs/training.md): the `train:` options both families read. Each family's
    training config (`FlowTrainConfig`, `GRUTrainConfig`) adds its own and may set other defaults."""

    steps: int = 100_000            # the step a run ends at unless --steps is given
    batch_size: int = 10            # clips per step and process (DDP: global batch = this x world size)
    lr: float = 1e-4                # Adam lr of every generator optimizer
    betas: tuple[float, float] = (0.9, 0.999)
    lr_decay: float = 0.3           # epochs: multiply the lr by this at each epoch in lr_decay_epochs;
    #                                 cosine: the lr falls to lr x lr_decay at step `steps`
    lr_decay_epochs: list[int] = field(default_factory=list)
    lr_schedule: str = "epochs"     # epochs (the paper's steps down) | cosine (unet: half a cosine over `steps`)
    flow_frames: str = "last"       # the clip flows items carry: frame T's (last), every frame's (all: what a
    #                                 unet trains on), or every frame's where the store has them (auto)
    poke: PokeConfig = field(default_factory=PokeConfig)
    bf16: bool = False              # bf16 autocast (CPU and CUDA)
    log_every: int = 20             # steps between logged scalars
    val_every: int = 500            # steps between validations (and sample filmstrips)
    val_clips: int = 8              # held-back clips scored at each validation
    checkpoint_every: int = 500     # steps between checkpoints (one is also written at the end)
    keep_every: int = 0             # also keep the exported weights of every keep_every-th step in steps/ (0: off)

    def validate(self) -> None:
        for name in ("steps", "batch_size", "log_every", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UserError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.lr_schedule not in ("epochs", "cosine"):
            raise UserError(f"train.lr_schedule must be epochs or cosine, got {self.lr_schedule!r}")
        if self.flow_frames not in FLOW_FRAMES:
            raise UserError(f"train.flow_frames must be one of {', '.join(FLOW_FRAMES)}, got {self.flow_frames!r}")
        if self.lr <= 0 or min(self.val_clips, self.keep_every) < 0:
            raise UserError("train.lr must be positive; val_clips and keep_every not negative")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


__all__ += ["TrainConfig"]
