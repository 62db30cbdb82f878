"""An exponential moving average of the generator's weights (`train.ema`), the weights a run exports.

At a constant learning rate the weights wander around a minimum from step to step; their average over the
last few hundred steps sits closer to it. After step s the average moves towards the trained weights by
1 - min(decay, (1 + s) / (10 + s)): early on it follows the fast-changing weights closely, later it
averages over about 1 / (1 - decay) steps. Buffers (none in the presets' models) are copied.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)   # the averaged generator

    def rate(self, step: int) -> float:
        """Weight of the trained model's newest parameters in the average after step `step` (1-based)."""
        return 1.0 - min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        rate = self.rate(step)
        for averaged, trained in zip(self.model.parameters(), model.parameters()):
            averaged.lerp_(trained.detach(), rate)
        for averaged, trained in zip(self.model.buffers(), model.buffers()):
            averaged.copy_(trained)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
