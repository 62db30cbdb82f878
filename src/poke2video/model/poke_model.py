"""PokeModel: object encoder, poke encoder, GRU dynamics and skip decoder assembled (PAPER.md, "Model").

    model = PokeModel(cfg)
    object_state = model.encode_object(frames)             # K tensors, coarse -> fine
    frame = model.decode(object_state)                     # [B, 3, H, W] in [-1, 1]
    video, predicted_states = model(source, poke_map, steps=T)   # [B, T, 3, H, W]; T lists of K tensors
    prediction = model.predict(source, poke_map, steps=T)  # the same plus the warp flows (output: warp)
    prediction = model.predict(source, poke_map, steps=T, poke=poke)   # anchored (model.poke_anchor)

`output: pixels` (the paper) decodes every frame from the predicted state. `output: warp` also decodes a
backward flow and a mask per frame: frame_t = mask * source(p + flow_t(p)) + (1 - mask) * rgb_t, so a
part moves by moving pixels rather than by redrawing them, and newly seen pixels come from rgb_t.
With `movable_poke`, a small full-resolution network says how likely the poked point is to move at
all and scales the video's flows by it (model/movable.py); with `flow_gate`, another decides which
pixels take part in the motion and scales their flow (model/gate.py). With `poke_anchor`, `predict`
given the poke itself ([B, 4] = x, y, dx, dy) turns and stretches each video's flows so the poked pixel
ends on the target (model/anchor.py); training never passes it, so the losses see the model's own flows.

Parameter groups for the two training stages: `object_encoder` + `decoder` (stage 1),
`poke_encoder` + `dynamics` (+ `decoder`, `flow_gate`, `movable_poke`) (stage 2).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from poke2video.config import ModelConfig
from poke2video.model.anchor import anchor_flows
from poke2video.model.decoder import Decoder
from poke2video.model.dynamics import build_dynamics
from poke2video.model.encoders import Encoder
from poke2video.model.gate import FlowGate
from poke2video.model.movable import MovablePoke
from poke2video.model.warping import warp

FLOW_SCALE = 4.0   # pixels per unit of the decoder's flow maps
DRAG_UNIT = 5.0    # px: with model.flow_per_drag, a drag this long leaves the decoded flows as they are
MASK_BIAS = 4.0    # a fresh warp model takes 98% of each pixel from the warped source


class Prediction(NamedTuple):
    video: torch.Tensor                      # [B, T, 3, H, W] in [-1, 1]
    states: list[list[torch.Tensor]]         # [t][level] [B, C_n, H_n, W_n]
    backward_flow: torch.Tensor | None       # [B, T, 2, H, W] px: where each pixel of frame t comes from
    #                                          in the source (output: warp; None for pixels)
    gate: torch.Tensor | None = None         # [B, 1, H, W] in [0, 1]: the flow gate (model.flow_gate)
    movable_logit: torch.Tensor | None = None  # [B]: that the poked point moves (model.movable_poke)


class PokeModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.object_encoder = Encoder(3, cfg, norm=cfg.norm)
        self.poke_encoder = Encoder(2, cfg, norm="none")
        self.dynamics = build_dynamics(cfg)
        self.decoder = Decoder(cfg)
        self.flow_gate = FlowGate() if cfg.flow_gate else None
        self.movable_poke = MovablePoke() if cfg.movable_poke else None

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
        """source [B, 3, H, W], poke_map [B, 2, H, W] -> Prediction for frames 1..T. `poke` [B, 4] (x, y, dx,
        dy in pixels, the poke the map was drawn from) anchors the flows when the config asks for it."""
        steps = self.cfg.frames if steps is None else steps
        predicted_states = self.dynamics(self.encode_object(source_frame), self.encode_poke(poke_map), steps)
        batch = source_frame.shape[0]
        # Decode all T frames in one batch: per level, stack time into the batch axis -> [T*B, C, h, w].
        stacked = [torch.cat([state[level] for state in predicted_states]) for level in range(self.cfg.levels)]
        head = self.decoder(stacked)                                     # [T*B, 3 or 6, H, W]
        frames = torch.tanh(head[:, :3])
        flow = gate = movable_logit = None
        if self.cfg.output == "warp":
            flow_by_time = FLOW_SCALE * head[:, 3:5].unflatten(0, (steps, batch))   # [T, B, 2, H, W]
            if self.cfg.flow_per_drag:
                flow_by_time = flow_by_time * drag_units(poke_map).view(1, -1, 1, 1, 1)
            flow_by_time, gate, movable_logit = self._scale_flows(flow_by_time, source_frame, poke_map)
            if self.cfg.poke_anchor and poke is not None:
                flow_by_time = anchor_flows(flow_by_time, poke, self.cfg.anchor_max_gain,
                                            self.cfg.anchor_min_share())
            mask = torch.sigmoid(head[:, 5:6] + MASK_BIAS)
            warped = warp(source_frame.repeat(steps, 1, 1, 1), flow_by_time.flatten(0, 1))
            frames = mask * warped + (1.0 - mask) * frames
            flow = flow_by_time.transpose(0, 1)                                      # [B, T, 2, H, W]
        video = frames.view(steps, batch, *frames.shape[1:]).transpose(0, 1)
        return Prediction(video, predicted_states, flow, gate, movable_logit)

    def _scale_flows(self, flows: torch.Tensor, source_frame: torch.Tensor, poke_map: torch.Tensor):
        """flows [T, B, 2, H, W] -> (flows scaled by the movable head and the flow gate where the config has
        them, gate [B, 1, H, W] or None, movable logit [B] or None)."""
        gate = movable_logit = None
        if self.movable_poke is not None:      # one factor per video
            movable_logit = self.movable_poke(source_frame, poke_map)
            flows = flows * torch.sigmoid(movable_logit).view(1, -1, 1, 1, 1)
        if self.flow_gate is not None:         # one map per video, from its last frame's flow
            gate = self.flow_gate(source_frame, flows[-1].detach())
            flows = flows * gate
        return flows, gate, movable_logit

    def forward(self, source_frame: torch.Tensor, poke_map: torch.Tensor, steps: int | None = None,
                poke: torch.Tensor | None = None) -> tuple[torch.Tensor, list[list[torch.Tensor]]]:
        """source [B, 3, H, W], poke_map [B, 2, H, W] -> (video [B, T, 3, H, W], predicted_states[t][level])."""
        prediction = self.predict(source_frame, poke_map, steps, poke)
        return prediction.video, prediction.states


def drag_units(poke_map: torch.Tensor) -> torch.Tensor:
    """poke_map [B, 2, H, W] -> [B]: the drag's length (the map's largest vector) in units of DRAG_UNIT."""
    return poke_map.float().norm(dim=1).flatten(1).amax(dim=1) / DRAG_UNIT


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
