"""Training losses (docs/architecture.md, "Losses and stages"): reconstruction, L_traj, hinge GAN terms and
penalties.

Images are float tensors in [-1, 1], frames flattened to [N, 3, H, W]. Every loss returns a scalar that is
a mean over frames (and pixels), so a video loss does not grow with T.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from poke2video.gru_config import GRUTrainConfig

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


def make_reconstruction_loss(cfg: GRUTrainConfig) -> ReconstructionLoss:
    """The configured reconstruction loss; `vgg` loads VGG19 (WeightsUnavailable names --vgg-weights)."""
    if cfg.recon_loss == "vgg":
        from poke2video.pretrained.perceptual import load_vgg19

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
