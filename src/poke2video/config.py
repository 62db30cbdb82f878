"""Typed configuration. Every option has one home here; modules take these objects, never raw dicts.

Presets are YAML files in `poke2video/presets/` that fill these dataclasses; unknown keys are errors.
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
    seed: int = 0

    def validate(self) -> None:
        if not 0.0 <= self.fastest_fraction <= 1.0:
            raise UserError(f"fastest_fraction must lie in [0, 1], got {self.fastest_fraction}")
        if self.poke_size < 1 or self.poke_size % 2 == 0:
            raise UserError(f"poke_size must be a positive odd number, got {self.poke_size}")
        if not 0.0 <= self.background_fraction <= 1.0:
            raise UserError(f"background_fraction must lie in [0, 1], got {self.background_fraction}")
        if self.source not in ("flow", "sim", "auto"):
            raise UserError(f"poke.source must be flow, sim or auto, got {self.source!r}")
        if self.source == "sim" and self.impulse:
            raise UserError("poke.source: sim gives drags, not impulses; turn poke.impulse off")
        if not 0.0 < self.background_percentile < 100.0:
            raise UserError(f"background_percentile must lie in (0, 100), got {self.background_percentile}")


@dataclass
class DiscriminatorConfig:
    """GAN critics (docs/architecture.md, "Adversarial losses"); used by training, not saved with the generator."""

    patch_channels: int = 64       # pix2pix PatchGAN width of the first layer
    patch_layers: int = 3          # strided layers of the PatchGAN
    temporal_channels: int = 64    # 3D ResNet-18 width of the first stage (doubles per stage)
    temporal_blocks: int = 2       # basic blocks per stage (2 = ResNet-18)


# Inclusive bounds of ModelConfig's sizes (ModelConfig.validate): generous, yet a model within them fits
# in memory and pokes in finite time.
MODEL_BOUNDS = {"resolution": (8, 1024), "frames": (1, 64), "stem_channels": (1, 4096),
                "bottleneck_channels": (1, 4096), "encoder_blocks": (0, 16), "decoder_blocks": (0, 16),
                "skip_blocks": (0, 16), "rnn_cells": (1, 16), "gru_kernel": (1, 15),
                "time_basis": (1, 64)}
DISCRIMINATOR_BOUNDS = {"patch_channels": (1, 4096), "patch_layers": (1, 8), "temporal_channels": (1, 4096),
                        "temporal_blocks": (1, 16)}


@dataclass
class ModelConfig:
    """The generator (docs/architecture.md). Levels are numbered coarse -> fine: level 0 is the bottleneck.

    Encoder: a stride-1 stem at full resolution, one stride-2 stage per entry of `channels` (fine ->
    coarse), then a stride-1 bottleneck of `bottleneck_channels`. Its levels are [bottleneck, last stage,
    ..., first stage]; the dynamics and the decoder skips use the `levels` (K) coarsest of them.
    """

    architecture: str = "gru"                 # gru: the paper's encoders, GRU hierarchy and decoder (PokeModel);
    #                                           unet: a flow UNet rendered by splatting (FlowUNet)
    resolution: int = 64
    unet_channels: list[int] = field(default_factory=lambda: [24, 48, 96, 128])   # unet: width per scale,
    #                                           full resolution first, each scale half the one before
    time_basis: int = 3                       # unet: curves over time that every pixel's flow combines
    stem_channels: int = 64
    channels: list[int] = field(default_factory=lambda: [128, 256])
    bottleneck_channels: int = 512            # nf_deep
    encoder_blocks: int = 1                   # ResNet blocks closing the encoders
    decoder_blocks: int = 2                   # ResNet blocks at the decoder's bottleneck
    skip_blocks: int = 1                      # ResNet blocks after each decoder skip
    levels: int = 3                           # K: GRU levels = highest modelled time derivative
    dynamics: str = "hierarchy"               # hierarchy | bottleneck_rnn (ablation)
    rnn_cells: int = 3                        # stacked cells of bottleneck_rnn
    gru_kernel: int = 3
    frames: int = 10                          # T: default number of generated frames
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def level_count(self) -> int:
        """Levels the encoder offers: one per stride-2 stage plus the bottleneck."""
        return len(self.channels) + 1

    def validate(self) -> None:
        if self.architecture not in ("gru", "unet"):
            raise UserError(f"model.architecture must be gru or unet, got {self.architecture!r}")
        if self.architecture == "unet":
            self._validate_unet()
        if self.dynamics not in ("hierarchy", "bottleneck_rnn"):
            raise UserError(f"model.dynamics must be hierarchy or bottleneck_rnn, got {self.dynamics!r}")
        if not 1 <= self.levels <= self.level_count():
            raise UserError(f"model.levels must be between 1 and {self.level_count()}, got {self.levels}")
        if not self.channels or min(self.channels + [self.stem_channels, self.bottleneck_channels]) < 1:
            raise UserError("model.channels, stem_channels and bottleneck_channels must be positive")
        if self.resolution % (2 ** len(self.channels)):
            raise UserError(f"model.resolution {self.resolution} must be divisible by 2^{len(self.channels)}")
        if self.frames < 1 or self.rnn_cells < 1 or self.gru_kernel % 2 == 0:
            raise UserError("model.frames and rnn_cells must be >= 1 and gru_kernel odd")
        # Bounds far beyond any trained model, so that a hostile weights file cannot make loading it
        # allocate without end or poking it run without end.
        sizes = [(f"model.{name}", getattr(self, name), bound) for name, bound in MODEL_BOUNDS.items()]
        sizes += [(f"model.discriminator.{name}", getattr(self.discriminator, name), bound)
                  for name, bound in DISCRIMINATOR_BOUNDS.items()]
        for name, value, (low, high) in sizes:
            if not low <= value <= high:
                raise UserError(f"{name} must be between {low} and {high}, got {value}")
        if len(self.channels) > 8 or max(self.channels) > 4096:
            raise UserError(f"model.channels must hold 1 to 8 widths of at most 4096, got {len(self.channels)} "
                            f"up to {max(self.channels)}")

    def _validate_unet(self) -> None:
        if not 1 <= len(self.unet_channels) <= 8 or not 1 <= min(self.unet_channels) <= max(self.unet_channels) <= 4096:
            raise UserError(f"model.unet_channels must hold 1 to 8 widths between 1 and 4096, got {self.unet_channels}")
        if self.resolution % (2 ** (len(self.unet_channels) - 1)):
            raise UserError(f"model.resolution {self.resolution} must be divisible by "
                            f"2^{len(self.unet_channels) - 1} (one halving per unet_channels entry after the first)")
        if self.time_basis < 1:
            raise UserError(f"model.time_basis must be at least 1, got {self.time_basis}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "ModelConfig":
        cfg = from_dict(cls, data)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def model_config_for(preset: str) -> ModelConfig:
    """The `model:` section of a preset YAML as a validated ModelConfig."""
    return ModelConfig.from_dict(load_preset_yaml(preset).get("model"))


class RetiredOption(UserError):
    """A weights file or run config sets a key that is no longer an option to a value other than RETIRED's."""


# Keys that are no longer options, each with the one value under which the model and its training were
# what they are now. Every weights file and run config.json written while they were options holds them
# (the bundled model does); one holding that value loads with the key dropped, any other is RetiredOption.
RETIRED = {"ModelConfig": ("model", {"norm": "instance", "bounded_state": False, "poke_input": "coarsest",
                                     "output": "pixels"}),
           "TrainConfig": ("train", {"motion_weight": 0.0, "flow_weight": 0.0, "flow_endpoint_weight": 0.0,
                                     "ema": 0.0})}


def _drop_retired(cls, data: dict[str, Any]) -> dict[str, Any]:
    section, retired = RETIRED.get(cls.__name__, ("", {}))
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


def load_preset_yaml(name: str) -> dict[str, Any]:
    """Read `presets/<name>.yaml`; the error lists the presets that exist."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise UserError(f"unknown preset {name!r}; available: {', '.join(available)}")
    with open(path) as f:
        return yaml.safe_load(f) or {}


__all__ = ["DataConfig", "PokeConfig", "ModelConfig", "DiscriminatorConfig", "model_config_for", "poke_size_for", "from_dict", "to_dict", "load_preset_yaml"]


TRAIN_SCHEDULES = ("alternate", "sequential", "single")
RECON_LOSSES = ("l1_gradient", "vgg")
FLOW_FRAMES = ("last", "all", "auto")   # TrainConfig.flow_frames; PokeDataset resolves auto


@dataclass
class GanConfig:
    """Adversarial terms (docs/architecture.md, "Adversarial losses"): a frame PatchGAN and a temporal video
    discriminator."""

    start_step: int = 4000          # first step with adversarial losses; -1 turns both off
    lr: float = 1e-4                # Adam lr of both discriminators
    patch_weight: float = 1.0       # generator weight of the PatchGAN hinge term
    patch_r1: float = 1e-4          # R1 penalty on real frames
    patch_frames: int = 16          # random frames per step shown to the PatchGAN
    temporal_weight: float = 5.0    # generator weight of the temporal hinge term
    temporal_gp: float = 0.1        # gradient penalty on real videos
    feature_matching: float = 10.0  # L1 between temporal-discriminator features of real and fake

    @property
    def enabled(self) -> bool:
        return self.start_step >= 0


@dataclass
class TrainConfig:
    """How a model is trained (docs/training.md); the `train:` section of a preset."""

    steps: int = 100_000            # default budget when neither --steps nor --max-minutes is given
    batch_size: int = 10            # clips per step and process (DDP: global batch = this x world size)
    lr: float = 1e-4                # Adam lr of every generator optimizer
    betas: tuple[float, float] = (0.9, 0.999)
    lr_decay: float = 0.3           # epochs: multiply the lr by this at each epoch in lr_decay_epochs;
    #                                 cosine: the lr falls to lr x lr_decay at step `steps`
    lr_decay_epochs: list[int] = field(default_factory=list)
    lr_schedule: str = "epochs"     # epochs (the paper's steps down) | cosine (unet: half a cosine over `steps`)
    schedule: str = "alternate"     # alternate: stage-1 step then stage-2 step per iteration (authors' code);
    #                                 sequential: stage1_steps of stage 1, then stage 2; single: all jointly
    stage1_steps: int = 0           # sequential schedule only
    recon_loss: str = "l1_gradient"  # l1_gradient (needs no weights) | vgg (VGG19 perceptual, Eq. 6)
    vgg_weights: str | None = None  # VGG19 file; None: the torch hub cache (see evaluate/perceptual.py)
    rec_weight: float = 1.0         # stage-1 frame reconstruction
    dynamics_rec_weight: float = 5.0  # reconstruction of the predicted video
    traj_weight: float = 0.1        # L_traj (Eq. 7); 0 is the "without L_traj" ablation
    flow_frames: str = "last"       # the clip flows items carry: frame T's (last), every frame's (all: what a
    #                                 unet trains on), or every frame's where the store has them (auto)
    moving_weight: float = 5.0      # unet: a pixel that moves counts this many times a still one in the flow loss
    moves_weight: float = 1.0       # unet: weight of the "moves" mask's cross-entropy
    flip: bool = False              # unet: mirror half of the clips left-right (image, poke, flows)
    gan: GanConfig = field(default_factory=GanConfig)
    poke: PokeConfig = field(default_factory=PokeConfig)
    bf16: bool = False              # bf16 autocast (CPU and CUDA)
    log_every: int = 20             # steps between logged scalars
    val_every: int = 500            # steps between validations (and sample filmstrips)
    val_clips: int = 8              # held-back clips scored at each validation
    checkpoint_every: int = 500     # steps between checkpoints (one is also written at the end)
    keep_every: int = 0             # also keep the exported weights of every keep_every-th step in steps/ (0: off)

    def validate(self) -> None:
        if self.schedule not in TRAIN_SCHEDULES:
            raise UserError(f"train.schedule must be one of {', '.join(TRAIN_SCHEDULES)}, got {self.schedule!r}")
        if self.recon_loss not in RECON_LOSSES:
            raise UserError(f"train.recon_loss must be one of {', '.join(RECON_LOSSES)}, got {self.recon_loss!r}")
        for name in ("steps", "batch_size", "log_every", "val_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UserError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.lr_schedule not in ("epochs", "cosine"):
            raise UserError(f"train.lr_schedule must be epochs or cosine, got {self.lr_schedule!r}")
        if self.flow_frames not in FLOW_FRAMES:
            raise UserError(f"train.flow_frames must be one of {', '.join(FLOW_FRAMES)}, got {self.flow_frames!r}")
        if self.moving_weight < 1 or self.moves_weight < 0:
            raise UserError("train.moving_weight must be at least 1 and train.moves_weight not negative")
        if self.lr <= 0 or min(self.traj_weight, self.val_clips, self.stage1_steps, self.keep_every) < 0:
            raise UserError("train.lr must be positive; traj_weight, val_clips, stage1_steps, keep_every not negative")


@dataclass
class Preset:
    """A named training recipe: the model's architecture plus how to train it."""

    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)


def load_preset(name_or_path: str) -> Preset:
    """A preset by name (`presets/<name>.yaml`) or from a YAML file path; unknown keys are errors."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UserError(f"preset file {path} does not exist")
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    else:
        data = load_preset_yaml(name_or_path)
    if not isinstance(data, dict) or "model" not in data:
        raise UserError(f"preset {name_or_path}: needs a `model:` section")
    preset = from_dict(Preset, data)
    preset.train.betas = tuple(preset.train.betas)
    preset.model.validate()
    preset.train.validate()
    if preset.model.architecture == "unet" and (preset.train.gan.enabled or preset.train.flow_frames != "all"):
        raise UserError(f"preset {name_or_path}: a unet model trains on every frame's flow without critics "
                        "(train.flow_frames: all, train.gan.start_step: -1)")
    return preset


def preset_from_dict(data: dict[str, Any]) -> Preset:
    """Rebuild a Preset written with `to_dict` (e.g. a run directory's config.json)."""
    preset = from_dict(Preset, data)
    preset.train.betas = tuple(preset.train.betas)
    return preset


__all__ += ["GanConfig", "TrainConfig", "Preset", "load_preset", "preset_from_dict"]
