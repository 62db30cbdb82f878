"""Loss functions against values worked out by hand."""
import math

import pytest
import torch

from poke2video.gru_config import GRUTrainConfig
from poke2video.errors import WeightsUnavailable
from poke2video.train import losses


def test_l1_gradient_is_zero_for_equal_images_and_punishes_blur_more_than_l1():
    edge = torch.zeros(1, 3, 8, 8)
    edge[..., 4:] = 1.0
    assert losses.l1_gradient_loss(edge, edge).item() == 0.0
    blurred = edge.clone()
    blurred[..., 3:5] = 0.5           # the step spread over two columns
    pixel_only = (blurred - edge).abs().mean().item()
    assert pixel_only == pytest.approx(1 / 8)
    # column differences per row: edge 0 0 0 1 0 0 0, blurred 0 0 .5 0 .5 0 0 -> |difference| sums to 2 over 7
    assert losses.l1_gradient_loss(blurred, edge).item() == pytest.approx(pixel_only + 2 / 7)


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert losses.hinge_discriminator_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert losses.hinge_generator_loss(fake).item() == pytest.approx(1.0)


def test_real_gradient_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    weight = torch.tensor([3.0, -4.0])
    inputs = torch.randn(5, 2, requires_grad=True)
    logits = inputs @ weight
    assert losses.real_gradient_penalty(logits, inputs).item() == pytest.approx(25.0)


def test_trajectory_and_feature_matching_losses():
    predicted = [[torch.ones(2, 3, 4, 4), torch.zeros(2, 1, 8, 8)] for _ in range(2)]
    encoded = [[torch.zeros(2, 3, 4, 4), torch.full((2, 1, 8, 8), 2.0)] for _ in range(2)]
    assert losses.trajectory_loss(predicted, encoded).item() == pytest.approx(1.0 + 4.0)
    with pytest.raises(ValueError):
        losses.trajectory_loss(predicted, encoded[:1])
    real = [torch.zeros(3), torch.ones(2)]
    fake = [torch.full((3,), 0.5), torch.ones(2)]
    assert losses.feature_matching_loss(real, fake).item() == pytest.approx(0.5)


class _TwoTaps(torch.nn.Module):
    def forward(self, images):
        return [images * 2, images.mean(dim=1, keepdim=True)]


def test_perceptual_loss_adds_pixel_and_feature_l1():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.25)
    assert losses.PerceptualLoss(_TwoTaps())(a, b).item() == pytest.approx(0.25 + 0.5 + 0.25)


def test_vgg_loss_without_weights_names_the_option(tmp_path):
    cfg = GRUTrainConfig(recon_loss="vgg", vgg_weights=str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsUnavailable, match="--vgg-weights"):
        losses.make_reconstruction_loss(cfg)

