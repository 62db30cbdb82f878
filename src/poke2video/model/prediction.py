"""What a generator of either family returns for a batch of pokes (`predict`)."""
from __future__ import annotations

from typing import NamedTuple

import torch


class Prediction(NamedTuple):
    video: torch.Tensor                      # [B, T, 3, H, W] in [-1, 1]
    states: list[list[torch.Tensor]]         # [t][level] [B, C_n, H_n, W_n] (gru); [] (unet)
    forward_flow: torch.Tensor | None = None   # [B, T, 2, H, W] px: where each source pixel is at frame t (unet)
