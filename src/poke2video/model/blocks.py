"""Building blocks shared by the encoders, the dynamics and the decoder."""
from __future__ import annotations

import torch
from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """`instance`: InstanceNorm with affine (the paper); `none`: nothing (the poke encoder)."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def conv_norm_act(in_channels: int, out_channels: int, stride: int = 1, norm: str = "instance") -> nn.Sequential:
    """3x3 conv (stride 1 or 2), normalisation (`norm_layer`), ELU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), norm_layer(norm, out_channels),
                         nn.ELU())


class ResBlock(nn.Module):
    """Two 3x3 convs with InstanceNorm and ELU around an identity shortcut; keeps shape [B, C, H, W]."""

    def __init__(self, channels: int, norm: str = "instance"):
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, channels, norm=norm),
            nn.Conv2d(channels, channels, 3, 1, 1),
            norm_layer(norm, channels),
        )
        self.act = nn.ELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


def resample(in_channels: int, out_channels: int, scale: int) -> nn.Module:
    """Map a level onto the next finer one: transposed conv when the resolution doubles, else a 3x3 conv."""
    if scale == 2:
        return nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1)
    if scale == 1:
        return nn.Conv2d(in_channels, out_channels, 3, 1, 1)
    raise ValueError(f"levels differ by a factor of 1 or 2, got {scale}")


class ConvGRUCell(nn.Module):
    """Convolutional GRU (reset applied after the hidden projection, as in cuDNN's GRU).

    `project(drive [B, C_in, H, W]) -> [B, 3 C_h, H, W]` is split from the step so that a drive that is
    the same at every step (the poke code) is projected once; `forward(projected_drive, hidden)` -> new
    hidden [B, C_h, H, W].
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel: int = 3):
        super().__init__()
        pad = kernel // 2
        self.from_drive = nn.Conv2d(input_channels, 3 * hidden_channels, kernel, 1, pad)
        self.from_hidden = nn.Conv2d(hidden_channels, 3 * hidden_channels, kernel, 1, pad)

    def project(self, drive: torch.Tensor) -> torch.Tensor:
        return self.from_drive(drive)

    def forward(self, projected_drive: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        drive_reset, drive_update, drive_candidate = projected_drive.chunk(3, 1)
        hidden_reset, hidden_update, hidden_candidate = self.from_hidden(hidden).chunk(3, 1)
        reset_gate = torch.sigmoid(drive_reset + hidden_reset)
        update_gate = torch.sigmoid(drive_update + hidden_update)
        candidate = torch.tanh(drive_candidate + reset_gate * hidden_candidate)
        return hidden + update_gate * (candidate - hidden)
