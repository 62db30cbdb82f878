"""Dynamics of the object state: a hierarchy of Conv-GRUs or the bottleneck-RNN ablation.

See docs/architecture.md, "Dynamics: a hierarchy of GRUs".

Both take the encoded object state of the source frame (list over levels, coarse -> fine, [B, C_n, H_n, W_n])
and the poke code [B, C_0, H_0, W_0], and return the predicted states: a list over steps t = 1..T of
lists over levels, same shapes as the input state.
"""
from __future__ import annotations

import torch
from torch import nn

from poke2video.gru_config import GRUModelConfig
from poke2video.model.blocks import ConvGRUCell, resample
from poke2video.model.encoders import level_geometry


class HierarchyDynamics(nn.Module):
    """sigma^0_{t+1} = F0(sigma^0_t, poke_code); sigma^n_{t+1} = Fn(sigma^n_t, Un(sigma^{n-1}_{t+1}))."""

    def __init__(self, cfg: GRUModelConfig):
        super().__init__()
        geometry = level_geometry(cfg)[: cfg.levels]
        coarse_channels = geometry[0][0]
        self.cells = nn.ModuleList([ConvGRUCell(coarse_channels, coarse_channels, cfg.gru_kernel)])
        self.upsamplers = nn.ModuleList()
        for (above_ch, above_down), (ch, down) in zip(geometry, geometry[1:]):
            self.upsamplers.append(resample(above_ch, ch, above_down // down))
            self.cells.append(ConvGRUCell(ch, ch, cfg.gru_kernel))

    def forward(self, object_state: list[torch.Tensor], poke_code: list[torch.Tensor],
                steps: int) -> list[list[torch.Tensor]]:
        """poke_code: the poke encoder's levels, coarse -> fine (only [0], the coarsest, is read)."""
        state = list(object_state)
        poke_drive = self.cells[0].project(poke_code[0])  # the same at every step: projected once
        predicted = []
        for _ in range(steps):
            new_state = [self.cells[0](poke_drive, state[0])]
            for level in range(1, len(state)):
                drive = self.cells[level].project(self.upsamplers[level - 1](new_state[level - 1]))
                new_state.append(self.cells[level](drive, state[level]))
            state = new_state
            predicted.append(new_state)
        return predicted


class BottleneckRNNDynamics(nn.Module):
    """Ablation "RNN": `rnn_cells` stacked Conv-GRUs at the bottleneck, each starting at sigma^0_0.

    Only level 0 evolves; finer levels (decoder skips when K > 1) stay at the source frame's features.
    """

    def __init__(self, cfg: GRUModelConfig):
        super().__init__()
        channels = cfg.bottleneck_channels
        self.cells = nn.ModuleList(ConvGRUCell(channels, channels, cfg.gru_kernel) for _ in range(cfg.rnn_cells))

    def forward(self, object_state: list[torch.Tensor], poke_code: list[torch.Tensor],
                steps: int) -> list[list[torch.Tensor]]:
        hidden = [object_state[0]] * len(self.cells)
        poke_drive = self.cells[0].project(poke_code[0])
        predicted = []
        for _ in range(steps):
            new_hidden = [self.cells[0](poke_drive, hidden[0])]
            for cell, h in zip(self.cells[1:], hidden[1:]):
                new_hidden.append(cell(cell.project(new_hidden[-1]), h))
            hidden = new_hidden
            predicted.append([hidden[-1], *object_state[1:]])
        return predicted


def build_dynamics(cfg: GRUModelConfig) -> nn.Module:
    return HierarchyDynamics(cfg) if cfg.dynamics == "hierarchy" else BottleneckRNNDynamics(cfg)
