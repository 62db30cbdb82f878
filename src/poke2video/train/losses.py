"""Training losses (docs/architecture.md, "Losses and stages"): reconstruction, L_traj, hinge GAN terms and
penalties.

Images are float tensors in [-1, 1], frames flattened to [N, 3, H, W]. Every loss returns a scalar that is
a mean over frames (and pixels), so a video loss does not grow with T.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from poke2video.config import TrainConfig
from poke2video.model.warping import backward_flow_target

ReconstructionLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def l1_gradient_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Weight-free reconstruction: L1 on pixels plus L1 on horizontal and vertical image gradients.

    The gradient term rewards sharp edges where plain L1 settles for blur, which is what a perceptual
    loss buys in the paper presets, without any pretrained network.
    """
    pixel = (predicted - target).abs().mean()
    dx_pred, dx_true = predicted.diff(dim=-1), target.diff(dim=-1)
    dy_pred, dy_true = predicted.diff(dim=-2), target.diff(dim=-2)
    edges = (dx_pred - dx_true).abs().mean() + (dy_pred - dy_true).abs().mean()
    return pixel + edges


def changed_pixel_loss(video: torch.Tensor, target: torch.Tensor, source: torch.Tensor,
                       threshold: float = 0.04) -> torch.Tensor:
    """Mean L1 over the pixels of `target` [B, T, 3, H, W] that differ from `source` [B, 3, H, W].

    A poke moves a small part of the frame; a loss averaged over all pixels lets a model that keeps the
    source frame still score well. This term puts the moving pixels (where the part leaves and where it
    arrives) on an equal footing with the still ones. `threshold` is in [-1, 1] units (0.04 ~ 5/255).
    """
    changed = ((target - source.unsqueeze(1)).abs().amax(dim=2, keepdim=True) > threshold).to(video.dtype)
    return ((video - target).abs() * changed).sum() / (3 * changed.sum()).clamp(min=1.0)


def frame_flow_loss(predicted_backward: torch.Tensor, forward_flow: torch.Tensor,
                    moving_px: float = 0.5, endpoint_weight: float = 0.0) -> torch.Tensor:
    """Squared endpoint error (px^2) between the model's backward flow of frame t [N, 2, H, W] and the one
    the clip's flow F(0 -> t) implies (`backward_flow_target`), over the pixels where that is known: half
    the mean over the pixels that move (target longer than `moving_px`) plus half the mean over those
    that stay. A poke moves a few percent of the pixels; a plain mean would let a model that moves
    nothing score well.

    Squared, not L1: while the model cannot yet tell which pixels belong to the poked part, L1's best
    guess for a pixel that moves with probability below 1/2 is no motion at all, so it learns nothing;
    the squared error's best guess is the expected motion, which grows as the model learns.

    But the expected motion falls short wherever the model is unsure a pixel moves, and at the edges of a
    2-3 px part it always is a little: the poked pixel then stops short of its target. `endpoint_weight`
    adds that many times the plain endpoint error (px, not squared, balanced the same way), whose best
    guess is the likelier of moving and staying, so a pixel that probably moves moves all the way."""
    return flow_target_loss(predicted_backward, *backward_flow_target(forward_flow), moving_px, endpoint_weight)


def backward_targets(forward_flows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip's F(0 -> t) [B, T, 2, H, W] (T = 1: frame T's alone) -> the backward flow every frame should
    have [B, T, 2, H, W] and where that is known [B, T, 1, H, W] (`backward_flow_target` of all frames in
    one batch), computed once per step for the flow loss."""
    target, valid = backward_flow_target(forward_flows.flatten(0, 1))
    return target.unflatten(0, forward_flows.shape[:2]), valid.unflatten(0, forward_flows.shape[:2])


def flow_target_loss(predicted_backward: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                     moving_px: float = 0.5, endpoint_weight: float = 0.0) -> torch.Tensor:
    """`frame_flow_loss` against a backward flow target [N, 2, H, W] already made, known where valid [N, 1, H, W]."""
    squared = (predicted_backward - target).square().sum(1, keepdim=True)    # [B, 1, H, W] squared px
    error = squared
    if endpoint_weight > 0:
        error = squared + endpoint_weight * (squared + 1e-6).sqrt()          # the epsilon keeps 0 differentiable
    moving = (target.norm(dim=1, keepdim=True) > moving_px).float() * valid
    still = valid - moving
    return ((error * moving).sum() / moving.sum().clamp(min=1.0)
            + (error * still).sum() / still.sum().clamp(min=1.0)) / 2


class PerceptualLoss(torch.nn.Module):
    """Eq. 6: L1 on pixels plus L1 on each VGG19 feature map (relu1_2 ... relu5_2), weight 1 each.

    `features` maps images in [-1, 1] to a list of feature maps; its weights stay frozen.
    """

    def __init__(self, features: torch.nn.Module):
        super().__init__()
        self.features = features.eval().requires_grad_(False)

    def forward(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = (predicted - target).abs().mean()
        with torch.no_grad():
            target_features = self.features(target)
        for pred_map, true_map in zip(self.features(predicted), target_features):
            loss = loss + (pred_map - true_map).abs().mean()
        return loss


def make_reconstruction_loss(cfg: TrainConfig) -> ReconstructionLoss:
    """The configured reconstruction loss; `vgg` loads VGG19 (WeightsUnavailable names --vgg-weights)."""
    if cfg.recon_loss == "vgg":
        from poke2video.evaluate.perceptual import load_vgg19

        return PerceptualLoss(load_vgg19(cfg.vgg_weights))
    return l1_gradient_loss


def trajectory_loss(predicted_states: Sequence[Sequence[torch.Tensor]],
                    encoded_states: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """Eq. 7, L_traj: squared distance of predicted to encoded object states, summed over levels,
    averaged over time steps. Both are lists over t of lists over levels of [B, C_n, H_n, W_n]."""
    total = predicted_states[0][0].new_zeros(())
    for predicted_t, encoded_t in zip(predicted_states, encoded_states, strict=True):
        for predicted_level, encoded_level in zip(predicted_t, encoded_t, strict=True):
            total = total + F.mse_loss(predicted_level.float(), encoded_level.float())
    return total / len(predicted_states)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def real_gradient_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """R1: mean over samples of |d logits / d input|^2 on real data (`real_inputs` requires grad)."""
    (gradient,) = torch.autograd.grad(real_logits.float().sum(), real_inputs, create_graph=True)
    return gradient.pow(2).flatten(1).sum(1).mean()


def feature_matching_loss(real_features: Sequence[torch.Tensor],
                          fake_features: Sequence[torch.Tensor]) -> torch.Tensor:
    """L1 between discriminator features of real and generated videos, summed over layers."""
    total = fake_features[0].new_zeros((), dtype=torch.float32)
    for real, fake in zip(real_features, fake_features, strict=True):
        total = total + (real.detach().float() - fake.float()).abs().mean()
    return total
