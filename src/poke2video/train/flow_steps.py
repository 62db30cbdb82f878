"""One training iteration of a flow model (model.architecture: unet): predicted flows against the clip's.

The loss is the plain (unsquared) endpoint error of every frame's forward flow, averaged over pixels with
the pixels that truly move (over `MOVING_PX` at that frame) weighted `train.moving_weight` times a still
one, plus `train.moves_weight` times the cross-entropy of the "moves" mask against the pixels that move at
any frame. With `train.flip`, half of the clips are mirrored left-right (image, poke and flows), which
physics allows: nothing in a clip knows left from right.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from poke2video.config import TrainConfig
from poke2video.model.render import MOVING_PX
from poke2video.train.distributed import DistContext, average_gradients
from poke2video.train.steps import Batch


def flow_endpoint_loss(predicted: torch.Tensor, target: torch.Tensor, moving_weight: float) -> torch.Tensor:
    """predicted, target [B, T, 2, H, W] px -> weighted mean endpoint error (moving pixels x moving_weight)."""
    error = (predicted - target).square().sum(dim=2).add(1e-6).sqrt()          # [B, T, H, W]
    moving = torch.hypot(target[:, :, 0], target[:, :, 1]) > MOVING_PX
    weight = 1.0 + (moving_weight - 1.0) * moving.to(error.dtype)
    return (weight * error).sum() / weight.sum()


def moves_loss(moves_logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """moves_logit [B, 1, H, W], target flows [B, T, 2, H, W] -> cross-entropy against "moves at any frame"."""
    moves = (torch.hypot(target[:, :, 0], target[:, :, 1]).amax(dim=1, keepdim=True) > MOVING_PX)
    return F.binary_cross_entropy_with_logits(moves_logit, moves.to(moves_logit.dtype))


def mirror(batch: Batch, flip: torch.Tensor) -> Batch:
    """The clips where `flip` [B] is True mirrored left-right: image, poke (x, dx) and flows (x component)."""
    width = batch.source.shape[-1]
    pick = flip.view(-1, 1, 1, 1)
    source = torch.where(pick, batch.source.flip(-1), batch.source)
    poke = batch.poke.clone()
    poke[flip, 0] = width - 1 - poke[flip, 0]
    poke[flip, 2] = -poke[flip, 2]
    flows = batch.flow.flip(-1) * torch.tensor([-1.0, 1.0], device=batch.flow.device).view(1, 1, 2, 1, 1)
    flows = torch.where(flip.view(-1, 1, 1, 1, 1), flows, batch.flow)
    return Batch(source, batch.poke_map, batch.target, poke, flows)


class FlowStepRunner:
    """Runs one iteration on a batch (one Adam optimizer over the whole model) and returns its losses."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, ctx: DistContext, generator: torch.Generator):
        self.model, self.cfg, self.ctx, self.generator = model, cfg, ctx, generator
        self.optimizers = {"flow": torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)}

    def autocast(self):
        if not self.cfg.bf16:
            return nullcontext()
        return torch.autocast(device_type=self.ctx.device.type, dtype=torch.bfloat16)

    def set_lr_for_epoch(self, epoch: int) -> None:
        decays = sum(epoch >= e for e in self.cfg.lr_decay_epochs)
        for group in self.optimizers["flow"].param_groups:
            group["lr"] = self.cfg.lr * self.cfg.lr_decay ** decays

    def __call__(self, batch: Batch, step: int) -> dict[str, float]:
        cfg = self.cfg
        if batch.flow.dim() != 5:
            raise ValueError("a flow model trains on the flow of every frame (train.flow_frames: all or auto)")
        if cfg.flip:
            flip = torch.rand(batch.source.shape[0], generator=self.generator) < 0.5
            batch = mirror(batch, flip.to(batch.source.device))
        with self.autocast():
            flows, moves_logit = self.model.forward_flows(batch.source, batch.poke, batch.flow.shape[1],
                                                          with_logit=True)
        endpoint = flow_endpoint_loss(flows.float(), batch.flow, cfg.moving_weight)
        moves = moves_loss(moves_logit.float(), batch.flow)
        loss = endpoint + cfg.moves_weight * moves
        optimizer = self.optimizers["flow"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(list(self.model.parameters()), self.ctx)
        optimizer.step()
        return {"loss/flow_endpoint": endpoint.item(), "loss/moves": moves.item(), "loss/total": loss.item()}
