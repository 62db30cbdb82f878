"""PokeModel: object encoder, poke encoder, GRU dynamics and skip decoder assembled (docs/architecture.md).

    model = PokeModel(cfg)
    object_state = model.encode_object(frames)             # K tensors, coarse -> fine
    frame = model.decode(object_state)                     # [B, 3, H, W] in [-1, 1]
    video, predicted_states = model(source, poke_map, steps=T)   # [B, T, 3, H, W]; T lists of K tensors
    prediction = model.predict(source, poke_map, steps=T)  # the same as a Prediction

Every frame is decoded from its predicted state.

Parameter groups for the two training stages: `object_encoder` + `decoder` (stage 1),
`poke_encoder` + `dynamics` (+ `decoder`) (stage 2).
"""
from __future__ import annotations

import torch
from torch import nn

from poke2video.gru_config import GRUModelConfig
from poke2video.model.decoder import Decoder
from poke2video.model.dynamics import build_dynamics
from poke2video.model.encoders import Encoder
from poke2video.model.prediction import Prediction


class PokeModel(nn.Module):
    def __init__(self, cfg: GRUModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.object_encoder = Encoder(3, cfg, norm="instance")
        self.poke_encoder = Encoder(2, cfg, norm="none")
        self.dynamics = build_dynamics(cfg)
        self.decoder = Decoder(cfg)

    def encode_object(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """frames [B, 3, H, W] in [-1, 1] -> object_state: K tensors [B, C_n, H_n, W_n], coarse -> fine."""
        return self.object_encoder(frames)[: self.cfg.levels]

    def encode_poke(self, poke_map: torch.Tensor) -> list[torch.Tensor]:
        """poke_map [B, 2, H, W] (pixels) -> poke_code: K tensors [B, C_n, H_n, W_n], coarse -> fine."""
        return self.poke_encoder(poke_map)[: self.cfg.levels]

    def decode(self, object_state: list[torch.Tensor]) -> torch.Tensor:
        """K tensors coarse -> fine -> frame [B, 3, H, W] in [-1, 1]."""
        return torch.tanh(self.decoder(object_state))

    def predict(self, source_frame: torch.Tensor, poke_map: torch.Tensor, steps: int | None = None,
                poke: torch.Tensor | None = None, pins: torch.Tensor | None = None) -> Prediction:
        """source [B, 3, H, W], poke_map [B, 2, H, W] -> Prediction for frames 1..T (`poke`, the poke as numbers,
        and `pins` are read by flow models only; several pokes reach this model through the poke map)."""
        steps = self.cfg.frames if steps is None else steps
        predicted_states = self.dynamics(self.encode_object(source_frame), self.encode_poke(poke_map), steps)
        batch = source_frame.shape[0]
        # Decode all T frames in one batch: per level, stack time into the batch axis -> [T*B, C, h, w].
        stacked = [torch.cat([state[level] for state in predicted_states]) for level in range(self.cfg.levels)]
        frames = self.decode(stacked)                                     # [T*B, 3, H, W]
        video = frames.view(steps, batch, *frames.shape[1:]).transpose(0, 1)
        return Prediction(video, predicted_states)

    def forward(self, source_frame: torch.Tensor, poke_map: torch.Tensor, steps: int | None = None,
                poke: torch.Tensor | None = None) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """source [B, 3, H, W], poke_map [B, 2, H, W] -> (video [B, T, 3, H, W], predicted_states[t][level])."""
        prediction = self.predict(source_frame, poke_map, steps, poke)
        return prediction.video, prediction.states


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
