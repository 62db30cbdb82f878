"""One training iteration of a flow model (model.architecture: unet): predicted flows against the clip's.

The loss is the plain (unsquared) endpoint error of every frame's forward flow, averaged over pixels with
the pixels that truly move (over `MOVING_PX` at that frame) weighted `train.moving_weight` times a still
one and every pixel of a clip where nothing moves (a background poke) `train.still_clip_weight` times,
plus `train.moves_weight` times the cross-entropy of the "moves" mask against the pixels that move at
any frame. The lr follows `train.lr_schedule` (cosine: recomputed every step). With `train.flip`, half of the clips are mirrored left-right (image, poke and flows), which
physics allows: nothing in a clip knows left from right. Validation scores the model's own flows against
the clip's on object pixels, no tracker in between.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from poke2video import metrics
from poke2video.flow_config import FlowTrainConfig
from poke2video.model.flow_unet import FlowUNet
from poke2video.model.mirror import mirror_maps, mirror_points
from poke2video.model.prediction import Prediction
from poke2video.model.render import MOVING_PX
from poke2video.train.batch import Batch
from poke2video.train.distributed import DistContext
from poke2video.train.runner import StepRunner, apply_loss


def flow_endpoint_loss(predicted: torch.Tensor, target: torch.Tensor, moving_weight: float,
                       still_clip_weight: float = 1.0) -> torch.Tensor:
    """predicted, target [B, T, 2, H, W] px -> weighted mean endpoint error (moving pixels x moving_weight,
    the pixels of a clip with no moving pixel x still_clip_weight)."""
    error = (predicted - target).square().sum(dim=2).add(1e-6).sqrt()          # [B, T, H, W]
    moving = torch.hypot(target[:, :, 0], target[:, :, 1]) > MOVING_PX
    weight = 1.0 + (moving_weight - 1.0) * moving.to(error.dtype)
    if still_clip_weight != 1.0:
        still_clip = ~moving.flatten(1).any(dim=1)                              # [B]
        weight = weight * torch.where(still_clip, still_clip_weight, 1.0).to(error.dtype).view(-1, 1, 1, 1)
    return (weight * error).sum() / weight.sum()


def moves_loss(moves_logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """moves_logit [B, 1, H, W], target flows [B, T, 2, H, W] -> cross-entropy against "moves at any frame"."""
    moves = (torch.hypot(target[:, :, 0], target[:, :, 1]).amax(dim=1, keepdim=True) > MOVING_PX)
    return F.binary_cross_entropy_with_logits(moves_logit, moves.to(moves_logit.dtype))


def cosine_lr(lr: float, final_factor: float, step: int, steps: int) -> float:
    """Half a cosine from `lr` at step 0 to `lr * final_factor` at `steps` (and after)."""
    progress = min(step / max(steps, 1), 1.0)
    return lr * (final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def mirror(batch: Batch, flip: torch.Tensor) -> Batch:
    """The clips where `flip` [B] is True mirrored left-right, every field alike: the source and target
    frames, the poke (x, dx), every poke and pin, and the poke map and flows with their x components negated."""
    def chosen(tensor: torch.Tensor, mirrored: torch.Tensor) -> torch.Tensor:
        return torch.where(flip.view(-1, *[1] * (tensor.dim() - 1)), mirrored, tensor)

    def maps(tensor: torch.Tensor, vectors: bool = False) -> torch.Tensor:
        return chosen(tensor, mirror_maps(tensor, vectors))

    width = batch.source.shape[-1]

    def points(rows: torch.Tensor | None, has_drag: bool) -> torch.Tensor | None:
        return None if rows is None else chosen(rows, mirror_points(rows, width, has_drag))

    return Batch(maps(batch.source), maps(batch.poke_map, vectors=True), maps(batch.target),
                 points(batch.poke, True), maps(batch.flow, vectors=True),
                 points(batch.pokes, True), points(batch.pins, False))


class FlowStepRunner(StepRunner):
    """One iteration of the flow UNet on a batch (one Adam optimizer over the whole model)."""

    selection_score = "val/flow_error"

    def __init__(self, model: FlowUNet, cfg: FlowTrainConfig, ctx: DistContext, generator: torch.Generator):
        super().__init__(model, cfg, ctx, generator)
        self.optimizers = {"flow": torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)}

    def set_lr_for_epoch(self, epoch: int) -> None:
        if self.cfg.lr_schedule == "epochs":
            self._set_lr(self.cfg.lr * self.epoch_decay(epoch))

    def _set_lr(self, lr: float) -> None:
        for group in self.optimizers["flow"].param_groups:
            group["lr"] = lr

    def __call__(self, batch: Batch, step: int) -> dict[str, float]:
        cfg = self.cfg
        if cfg.lr_schedule == "cosine":
            self._set_lr(cosine_lr(cfg.lr, cfg.lr_decay, step, cfg.steps))
        if batch.flow.dim() != 5:
            raise ValueError("a flow model trains on the flow of every frame (train.flow_frames: all)")
        if cfg.flip:
            flip = torch.rand(batch.source.shape[0], generator=self.generator) < 0.5
            batch = mirror(batch, flip.to(batch.source.device))
        with self.autocast():
            flows, moves_logit = self.model.forward_flows(batch.source, batch.network_poke, batch.flow.shape[1],
                                                          with_logit=True, pins=batch.pins)
        endpoint = flow_endpoint_loss(flows.float(), batch.flow, cfg.moving_weight, cfg.still_clip_weight)
        moves = moves_loss(moves_logit.float(), batch.flow)
        loss = endpoint + cfg.moves_weight * moves
        apply_loss(self.optimizers["flow"], loss, self.ctx)
        return {"loss/flow_endpoint": endpoint.item(), "loss/moves": moves.item(), "loss/total": loss.item()}

    def validation_scores(self, prediction: Prediction, batch: Batch, videos_with_source: list[np.ndarray],
                          object_masks: list[np.ndarray], impulse: bool) -> dict[str, list[float]]:
        """Object pokes: the predicted flows against the clip's flow of every frame over object pixels (all,
        moving, still), the moving pixels' IoU, and the error of no motion for reference."""
        scores = {name: [] for name in ("flow_error", "flow_error_moving", "flow_error_still", "static_flow_error",
                                        "moving_iou")}
        flows, truth = prediction.forward_flow.float().cpu().numpy(), batch.flow.cpu().numpy()
        for i, mask in enumerate(object_masks):
            if batch.poke[i, 4] or truth[i].ndim != 4:
                continue
            split = metrics.motion_split(flows[i], truth[i], mask)
            for part in ("all", "moving", "still"):
                if split[part] is not None:
                    scores["flow_error" if part == "all" else f"flow_error_{part}"].append(split[part])
            scores["static_flow_error"].append(metrics.motion_split(np.zeros_like(truth[i]), truth[i], mask)["all"])
            scores["moving_iou"].append(metrics.moving_iou(flows[i, -1], truth[i, -1], mask))
        return scores
