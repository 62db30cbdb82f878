"""The training iteration of a model family, as the loop (`loop.py`) drives it, and what both families share.

    runner = FlowStepRunner(model, cfg, ctx, generator)    # or GRUStepRunner: loop.make_step_runner picks
    losses = runner(batch, step)                           # one iteration: {"loss/total": ..., ...}

A family's runner holds its optimizers (and any critics trained beside the model: their state is part of
the resume state), sets its learning rate, and says how its validation is scored: `validation_scores`
adds its family's scores to the ones every model gets (`validate.py`), and `selection_score` names the
one that picks the best weights.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from poke2video.config import TrainConfig
from poke2video.model.prediction import Prediction
from poke2video.train.batch import Batch
from poke2video.train.distributed import DistContext, average_gradients


class StepRunner:
    """One training iteration on a batch, returning its losses as floats (a family's runner fills it in)."""

    selection_score: ClassVar[str]               # the validation scalar (lower is better) that picks best weights

    def __init__(self, model: nn.Module, cfg: TrainConfig, ctx: DistContext, generator: torch.Generator):
        self.model, self.cfg, self.ctx = model, cfg, ctx
        self.generator = generator  # random picks (frames, flips); its state is part of the resume state
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.discriminators: nn.ModuleDict | None = None   # critics trained beside the model

    def autocast(self):
        return autocast_for(self.cfg, self.ctx)

    def epoch_decay(self, epoch: int) -> float:
        """The lr factor of the `epochs` schedule at `epoch`: lr_decay once per epoch of lr_decay_epochs passed."""
        return self.cfg.lr_decay ** sum(epoch >= e for e in self.cfg.lr_decay_epochs)

    def set_lr_for_epoch(self, epoch: int) -> None:
        raise NotImplementedError

    def __call__(self, batch: Batch, step: int) -> dict[str, float]:
        raise NotImplementedError

    def validation_scores(self, prediction: Prediction, batch: Batch, videos_with_source: list[np.ndarray],
                          object_masks: list[np.ndarray], impulse: bool) -> dict[str, list[float]]:
        """The family's own validation scores of a prediction for `batch` (per clip, lists of floats):
        `videos_with_source` uint8 [T+1, H, W, 3] per clip, `object_masks` bool [H, W] per clip, `impulse`:
        the pokes are impulses (a direction and strength, no target)."""
        raise NotImplementedError


def _optimizer_parameters(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def apply_loss(optimizer: torch.optim.Optimizer, loss: torch.Tensor, ctx: DistContext) -> None:
    """One optimizer step on `loss`, gradients averaged over the processes (DDP)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(_optimizer_parameters(optimizer), ctx)
    optimizer.step()


def autocast_for(cfg: TrainConfig, ctx: DistContext):
    """bf16 autocast on the run's device when `train.bf16`, else nothing."""
    if not cfg.bf16:
        return nullcontext()
    return torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16)
