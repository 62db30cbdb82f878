"""GAN critics (docs/architecture.md, "Adversarial losses"): a PatchGAN on single frames and a 3D-ResNet on videos.

Both are built from the GRUModelConfig (its `discriminator` section) and return (logits, features); `features` is the list of intermediate activations for feature matching.
"""
from __future__ import annotations

import torch
from torch import nn

from poke2video.gru_config import GRUModelConfig


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN: `patch_layers` stride-2 4x4 convs, one stride-1 conv, a 1-channel patch map.

    frames [B, 3, H, W] in [-1, 1] -> logits [B, 1, h, w] (one per overlapping patch).
    InstanceNorm replaces BatchNorm so that the R1 penalty sees each sample on its own.
    """

    def __init__(self, model_cfg: GRUModelConfig):
        super().__init__()
        cfg = model_cfg.discriminator
        widths = [cfg.patch_channels * 2 ** min(i, 3) for i in range(cfg.patch_layers + 1)]
        layers = [nn.Sequential(nn.Conv2d(3, widths[0], 4, 2, 1), nn.LeakyReLU(0.2))]
        for i in range(1, cfg.patch_layers + 1):
            stride = 2 if i < cfg.patch_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1),
                                        nn.InstanceNorm2d(widths[i], affine=True), nn.LeakyReLU(0.2)))
        self.layers = nn.ModuleList(layers)
        self.to_logits = nn.Conv2d(widths[-1], 1, 4, 1, 1)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        x = frames
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return self.to_logits(x), features


class BasicBlock3d(nn.Module):
    """ResNet basic block in 3D: two 3x3x3 convs, projection shortcut when shape changes."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(in_channels, channels, 3, stride, 1), nn.InstanceNorm3d(channels, affine=True),
            nn.LeakyReLU(0.2),
            nn.Conv3d(channels, channels, 3, 1, 1), nn.InstanceNorm3d(channels, affine=True))
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == channels
                         else nn.Conv3d(in_channels, channels, 1, stride))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + self.body(x))


class TemporalDiscriminator(nn.Module):
    """3D ResNet-18 layout: stem, four stages of `temporal_blocks` blocks (widths c, 2c, 4c, 8c), pooled logit.

    video [B, T, 3, H, W] in [-1, 1] -> logits [B], features: the stem's and each stage's activations.
    """

    def __init__(self, model_cfg: GRUModelConfig):
        super().__init__()
        base = model_cfg.discriminator.temporal_channels
        self.stem = nn.Sequential(nn.Conv3d(3, base, (3, 7, 7), (1, 2, 2), (1, 3, 3)), nn.LeakyReLU(0.2))
        widths = [base, base, 2 * base, 4 * base, 8 * base]
        self.stages = nn.ModuleList()
        for stage, (in_ch, ch) in enumerate(zip(widths, widths[1:])):
            blocks = [BasicBlock3d(in_ch, ch, 1 if stage == 0 else 2)]
            blocks += [BasicBlock3d(ch, ch, 1) for _ in range(model_cfg.discriminator.temporal_blocks - 1)]
            self.stages.append(nn.Sequential(*blocks))
        self.to_logit = nn.Linear(widths[-1], 1)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.stem(video.transpose(1, 2))          # [B, C, T, H/2, W/2]
        features = [x]
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return self.to_logit(x.mean(dim=(2, 3, 4))).squeeze(1), features
