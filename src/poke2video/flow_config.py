"""The flow UNet's configs (`model.architecture: unet`): the network's sizes and how it trains.

The family is the default and the bundled model's (preset cpu-64, docs/architecture.md "Our model").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from poke2video.config import TrainConfig, check_bounds, to_dict
from poke2video.errors import UserError

# Inclusive bounds of FlowModelConfig's sizes (see config.check_bounds).
FLOW_MODEL_BOUNDS = {"resolution": (8, 1024), "frames": (1, 64), "time_basis": (1, 64), "drag_scale": (0.1, 10)}


@dataclass
class FlowModelConfig:
    """The flow UNet (model/flow_unet.py): one UNet block per entry of `unet_channels`, full resolution first,
    each scale half the one before; per pixel `time_basis` flow vectors combined over time, and a moves mask."""

    family: ClassVar[str] = "unet"
    render_options: ClassVar[tuple[str, ...]] = ("drag_scale", "mirror_average")   # read by Poker, not the network
    resolution: int = 64
    unet_channels: list[int] = field(default_factory=lambda: [24, 48, 96, 128])   # width per scale
    time_basis: int = 3           # curves over time that every pixel's flow combines
    frames: int = 10              # T: default number of generated frames
    pin_input: bool = False       # read pins as one more drawn channel (weights without it have none)
    drag_scale: float = 1.0       # `Poker` hands the network each drag times this (training never reads it): a
    #                               model that learned from drags shorter than where the pixel goes (the
    #                               estimated flow's) hears a user's whole drag as the drag it learned from
    mirror_average: bool = False  # `Poker` averages the flows for the image and for its left-right mirror
    #                               (pokes and pins mirrored, the flows mirrored back): one batch of two

    def validate(self) -> None:
        check_bounds("model", self, FLOW_MODEL_BOUNDS)
        for name in ("pin_input", "mirror_average"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"model.{name} must be true or false, got {getattr(self, name)!r}")
        if not 1 <= len(self.unet_channels) <= 8 or not 1 <= min(self.unet_channels) <= max(self.unet_channels) <= 4096:
            raise UserError(f"model.unet_channels must hold 1 to 8 widths between 1 and 4096, got {self.unet_channels}")
        if self.resolution % (2 ** (len(self.unet_channels) - 1)):
            raise UserError(f"model.resolution {self.resolution} must be divisible by "
                            f"2^{len(self.unet_channels) - 1} (one halving per unet_channels entry after the first)")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


@dataclass
class FlowTrainConfig(TrainConfig):
    """How the flow UNet trains (train/flow_steps.py): every frame's flow against the clip's, no critics."""

    flow_frames: str = "all"        # the loss reads every frame's flow: "all" is the one value
    moving_weight: float = 5.0      # a pixel that moves counts this many times a still one in the flow loss
    moves_weight: float = 1.0       # weight of the "moves" mask's cross-entropy
    still_clip_weight: float = 1.0  # every pixel of a clip where nothing moves (a background poke) counts
    #                                 this many times in the flow loss
    flip: bool = False              # mirror half of the clips left-right (image, poke, flows)

    def validate(self) -> None:
        super().validate()
        if self.flow_frames != "all":
            raise UserError(f"train.flow_frames must be all for a unet model: it trains on every frame's flow, "
                            f"got {self.flow_frames!r}")
        if self.moving_weight < 1 or self.moves_weight < 0 or self.still_clip_weight < 1:
            raise UserError("train.moving_weight and train.still_clip_weight must be at least 1 and "
                            "train.moves_weight not negative")
