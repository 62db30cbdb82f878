"""PokeModel: object encoder, poke encoder, GRU dynamics and skip decoder assembled (docs/architecture.md).

    model = PokeModel(cfg)
    object_state = model.encode_object(frames)             # K tensors, coarse -> fine
    frame = model.decode(object_state)                     # [B, 3, H, W] in [-1, 1]
    video, predicted_states = model(source, poke_map, steps=T)   # [B, T, 3, H, W]; T lists of K tensors
    prediction = model.predict(source, poke_map, steps=T)  # the same plus the warp flows (output: warp)

`output: pixels` (the paper) decodes every frame from the predicted state. `output: warp` also decodes a
backward flow and a mask per frame: frame_t = mask * source(p + flow_t(p)) + (1 - mask) * rgb_t, so a
part moves by moving pixels rather than by redrawing them, and newly seen pixels come from rgb_t.

Parameter groups for the two training stages: `object_encoder` + `decoder` (stage 1),
`poke_encoder` + `dynamics` (+ `decoder`) (stage 2).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from poke2video.config import ModelConfig
from poke2video.model.decoder import Decoder
from poke2video.model.dynamics import build_dynamics
from poke2video.model.encoders import Encoder
from poke2video.model.warping import warp

FLOW_SCALE = 4.0   # pixels per unit of the decoder's flow maps
MASK_BIAS = 4.0    # a fresh warp model takes 98% of each pixel from the warped source


class Prediction(NamedTuple):
    video: torch.Tensor                      # [B, T, 3, H, W] in [-1, 1]
    states: list[list[torch.Tensor]]         # [t][level] [B, C_n, H_n, W_n]
    backward_flow: torch.Tensor | None       # [B, T, 2, H, W] px: where each pixel of frame t comes from
    #                                          in the source (output: warp; None for pixels)
    forward_flow: torch.Tensor | None = None   # [B, T, 2, H, W] px: where each source pixel is at frame t (unet)


class PokeModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.object_encoder = Encoder(3, cfg, norm=cfg.norm)
        self.poke_encoder = Encoder(2, cfg, norm="none")
        self.dynamics = build_dynamics(cfg)
        self.decoder = Decoder(cfg)

    def encode_object(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """frames [B, 3, H, W] in [-1, 1] -> object_state: K tensors [B, C_n, H_n, W_n], coarse -> fine.

        With `bounded_state` each level goes through tanh: a Conv-GRU's state stays in [-1, 1], so the
        encoder's states (its starting point and L_traj's targets) then live in the same range."""
        levels = self.object_encoder(frames)[: self.cfg.levels]
        return [torch.tanh(level) for level in levels] if self.cfg.bounded_state else levels

    def encode_poke(self, poke_map: torch.Tensor) -> list[torch.Tensor]:
        """poke_map [B, 2, H, W] (pixels) -> poke_code: K tensors [B, C_n, H_n, W_n], coarse -> fine."""
        return self.poke_encoder(poke_map)[: self.cfg.levels]

    def decode(self, object_state: list[torch.Tensor]) -> torch.Tensor:
        """K tensors coarse -> fine -> frame [B, 3, H, W] in [-1, 1] (drawn, never warped)."""
        return torch.tanh(self.decoder(object_state)[:, :3])

    def predict(self, source_frame: torch.Tensor, poke_map: torch.Tensor, steps: int | None = None,
                poke: torch.Tensor | None = None) -> Prediction:
        """source [B, 3, H, W], poke_map [B, 2, H, W] -> Prediction for frames 1..T (`poke`, the poke as numbers,
        is read by flow models only)."""
        steps = self.cfg.frames if steps is None else steps
        predicted_states = self.dynamics(self.encode_object(source_frame), self.encode_poke(poke_map), steps)
        batch = source_frame.shape[0]
        # Decode all T frames in one batch: per level, stack time into the batch axis -> [T*B, C, h, w].
        stacked = [torch.cat([state[level] for state in predicted_states]) for level in range(self.cfg.levels)]
        head = self.decoder(stacked)                                     # [T*B, 3 or 6, H, W]
        frames = torch.tanh(head[:, :3])
        flow = None
        if self.cfg.output == "warp":
            flow_by_time = FLOW_SCALE * head[:, 3:5].unflatten(0, (steps, batch))   # [T, B, 2, H, W]
            mask = torch.sigmoid(head[:, 5:6] + MASK_BIAS)
            warped = warp(source_frame.repeat(steps, 1, 1, 1), flow_by_time.flatten(0, 1))
            frames = mask * warped + (1.0 - mask) * frames
            flow = flow_by_time.transpose(0, 1)                                      # [B, T, 2, H, W]
        video = frames.view(steps, batch, *frames.shape[1:]).transpose(0, 1)
        return Prediction(video, predicted_states, flow)

    def forward(self, source_frame: torch.Tensor, poke_map: torch.Tensor, steps: int | None = None,
                poke: torch.Tensor | None = None) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """source [B, 3, H, W], poke_map [B, 2, H, W] -> (video [B, T, 3, H, W], predicted_states[t][level])."""
        prediction = self.predict(source_frame, poke_map, steps, poke)
        return prediction.video, prediction.states


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
