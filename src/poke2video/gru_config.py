"""The paper's Conv-GRU model's configs (`model.architecture: gru`): its sizes, its critics, how it trains.

Presets paper-64 and paper-128 (docs/architecture.md "The paper's model").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from poke2video.config import TrainConfig, check_bounds, to_dict
from poke2video.errors import UserError

# Inclusive bounds of GRUModelConfig's and DiscriminatorConfig's sizes (see config.check_bounds).
GRU_MODEL_BOUNDS = {"resolution": (8, 1024), "frames": (1, 64), "stem_channels": (1, 4096),
                    "bottleneck_channels": (1, 4096), "encoder_blocks": (0, 16), "decoder_blocks": (0, 16),
                    "skip_blocks": (0, 16), "rnn_cells": (1, 16), "gru_kernel": (1, 15)}
DISCRIMINATOR_BOUNDS = {"patch_channels": (1, 4096), "patch_layers": (1, 8), "temporal_channels": (1, 4096),
                        "temporal_blocks": (1, 16)}
TRAIN_SCHEDULES = ("alternate", "sequential", "single")
RECON_LOSSES = ("l1_gradient", "vgg")


@dataclass
class DiscriminatorConfig:
    """GAN critics (docs/architecture.md, "Adversarial losses"); used by training, not saved with the generator."""

    patch_channels: int = 64       # pix2pix PatchGAN width of the first layer
    patch_layers: int = 3          # strided layers of the PatchGAN
    temporal_channels: int = 64    # 3D ResNet-18 width of the first stage (doubles per stage)
    temporal_blocks: int = 2       # basic blocks per stage (2 = ResNet-18)


@dataclass
class GRUModelConfig:
    """The paper's generator (docs/architecture.md). Levels are numbered coarse -> fine: level 0 is the bottleneck.

    Encoder: a stride-1 stem at full resolution, one stride-2 stage per entry of `channels` (fine ->
    coarse), then a stride-1 bottleneck of `bottleneck_channels`. Its levels are [bottleneck, last stage,
    ..., first stage]; the dynamics and the decoder skips use the `levels` (K) coarsest of them.
    """

    family: ClassVar[str] = "gru"
    render_options: ClassVar[tuple[str, ...]] = ()   # every option shapes the network or its training
    resolution: int = 64
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
        check_bounds("model", self, GRU_MODEL_BOUNDS)
        check_bounds("model.discriminator", self.discriminator, DISCRIMINATOR_BOUNDS)
        if len(self.channels) > 8 or max(self.channels) > 4096:
            raise UserError(f"model.channels must hold 1 to 8 widths of at most 4096, got {len(self.channels)} "
                            f"up to {max(self.channels)}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


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
class GRUTrainConfig(TrainConfig):
    """How the paper's model trains (train/gru_steps.py): two stages, a reconstruction loss, L_traj, critics."""

    schedule: str = "alternate"     # alternate: stage-1 step then stage-2 step per iteration (authors' code);
    #                                 sequential: stage1_steps of stage 1, then stage 2; single: all jointly
    stage1_steps: int = 0           # sequential schedule only
    recon_loss: str = "l1_gradient"  # l1_gradient (needs no weights) | vgg (VGG19 perceptual, Eq. 6)
    vgg_weights: str | None = None  # VGG19 file; None: the torch hub cache (see pretrained/perceptual.py)
    rec_weight: float = 1.0         # stage-1 frame reconstruction
    dynamics_rec_weight: float = 5.0  # reconstruction of the predicted video
    traj_weight: float = 0.1        # L_traj (Eq. 7); 0 is the "without L_traj" ablation
    gan: GanConfig = field(default_factory=GanConfig)

    def validate(self) -> None:
        if self.schedule not in TRAIN_SCHEDULES:
            raise UserError(f"train.schedule must be one of {', '.join(TRAIN_SCHEDULES)}, got {self.schedule!r}")
        if self.recon_loss not in RECON_LOSSES:
            raise UserError(f"train.recon_loss must be one of {', '.join(RECON_LOSSES)}, got {self.recon_loss!r}")
        super().validate()
        if min(self.traj_weight, self.stage1_steps) < 0:
            raise UserError("train.traj_weight and stage1_steps must not be negative")
