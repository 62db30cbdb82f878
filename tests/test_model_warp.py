"""The warp output (model.output: warp), the poke at every level, and the flow loss that trains them."""

import pytest
import torch

from poke2video.model import PokeModel
from poke2video.model.warping import backward_flow_target, sample_points, warp
from poke2video.train.losses import frame_flow_loss
from model_support import small_gru_config

torch.set_num_threads(1)


def test_warp_with_zero_flow_is_the_identity_and_an_integer_flow_shifts():
    image = torch.rand(2, 3, 16, 16)
    assert torch.allclose(warp(image, torch.zeros(2, 2, 16, 16)), image, atol=1e-4)
    flow = torch.zeros(2, 2, 16, 16)
    flow[:, 0], flow[:, 1] = -3.0, 2.0        # each output pixel comes from 3 px left, 2 px down
    shifted = warp(image, flow)
    assert torch.allclose(shifted[:, :, 4:14, 3:], image[:, :, 6:16, :13], atol=1e-4)


def test_points_are_read_like_warp_reads_pixels():
    image = torch.rand(2, 3, 16, 16)
    xy = torch.tensor([[4.0, 9.0], [2.5, 3.0]])                 # a pixel centre; halfway between two
    read = sample_points(image, xy)
    assert torch.allclose(read[0], image[0, :, 9, 4], atol=1e-6)
    assert torch.allclose(read[1], (image[1, :, 3, 2] + image[1, :, 3, 3]) / 2, atol=1e-6)
    flow = torch.zeros(2, 2, 16, 16)
    flow[:, 0], flow[:, 1] = xy[:, 0].view(2, 1, 1), xy[:, 1].view(2, 1, 1)   # pixel (0, 0) reads xy
    assert torch.allclose(warp(image, flow)[:, :, 0, 0], read, atol=1e-6)


def test_backward_target_of_a_moving_square():
    forward = torch.zeros(1, 2, 20, 20)
    forward[0, 0, 5:9, 4:8], forward[0, 1, 5:9, 4:8] = 3.0, -2.0     # a 4x4 square moves (3, -2)
    target, valid = backward_flow_target(forward)
    assert torch.equal(target[0, :, 3:7, 7:11], torch.tensor([-3.0, 2.0])[:, None, None].expand(2, 4, 4))
    assert target[0, :, 15:, 15:].abs().max() == 0 and valid[0, 0, 15:, 15:].all()  # still background
    assert not valid[0, 0, 7:9, 4:7].any()      # uncovered by the square and not covered again: unknown
    assert valid.sum() == 20 * 20 - (16 - 2)  # all but the 14 old square pixels the new one does not cover


def test_flow_loss_is_zero_at_the_target_and_weighs_moving_pixels_like_still_ones():
    forward = torch.zeros(1, 2, 20, 20)
    forward[0, 0, 5:7, 5:7] = 4.0
    target, _ = backward_flow_target(forward)
    assert frame_flow_loss(target, forward) == 0
    # predicting no motion at all costs half the moving pixels' squared error, though they are 1% of the image
    assert frame_flow_loss(torch.zeros_like(target), forward) == pytest.approx(4.0 ** 2 / 2)


def test_flow_endpoint_term_adds_the_plain_error_and_keeps_pulling_when_close():
    forward = torch.zeros(1, 2, 20, 20)
    forward[0, 0, 5:7, 5:7] = 4.0
    target, _ = backward_flow_target(forward)
    still = torch.zeros_like(target)
    assert frame_flow_loss(still, forward, endpoint_weight=2.0) == pytest.approx((4.0 ** 2 + 2.0 * 4.0) / 2, abs=0.01)
    pulls = []
    for weight in (0.0, 1.0):
        close = (target * 0.975).requires_grad_(True)                # 0.1 px short on the moving pixels
        frame_flow_loss(close, forward, endpoint_weight=weight).backward()
        pulls.append(close.grad.abs().sum().item())
    assert pulls[1] > 5 * pulls[0]           # the squared error's pull fades near the target; the plain one's does not


def test_fresh_warp_model_starts_from_the_source_frame():
    cfg = small_gru_config(output="warp")
    torch.manual_seed(0)
    model = PokeModel(cfg)
    source = torch.rand(2, 3, 64, 64) * 2 - 1
    poke_map = torch.zeros(2, 2, 64, 64)
    poke_map[:, :, 30:33, 30:33] = 5.0
    prediction = model.predict(source, poke_map, steps=3)
    assert prediction.backward_flow.shape == (2, 3, 2, 64, 64) and prediction.backward_flow.abs().max() == 0
    assert (prediction.video - source[:, None]).abs().mean() < 0.05  # 98% warped source at the start
    assert model.decode(model.encode_object(source)).shape == source.shape
    prediction.video.square().mean().backward()
    assert model.decoder.to_rgb.weight.grad[3:].abs().sum() > 0        # the flow and mask maps learn


@pytest.mark.parametrize("poke_input", ["coarsest", "every_level"])
def test_poke_reaches_the_finest_level_only_through_the_hierarchy_unless_every_level(poke_input):
    cfg = small_gru_config(poke_input=poke_input)
    torch.manual_seed(0)
    model = PokeModel(cfg)
    source = torch.rand(1, 3, 64, 64) * 2 - 1
    poke_map = torch.zeros(1, 2, 64, 64, requires_grad=True)
    states = model.dynamics(model.encode_object(source), model.encode_poke(poke_map), 1)
    finest = states[0][-1]
    # gradient of the finest state's corner with respect to the poke map: only every_level
    # connects them without passing through the 8x8 bottleneck; both paths exist there.
    finest[0, :, 0, 0].sum().backward()
    has_direct = len(model.dynamics.poke_projections) > 0
    assert has_direct == (poke_input == "every_level")
    assert poke_map.grad.abs().sum() > 0


def test_bounded_state_keeps_encoded_levels_in_the_gru_range():
    cfg = small_gru_config(bounded_state=True)
    torch.manual_seed(0)
    model = PokeModel(cfg)
    frames = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        for p in model.object_encoder.parameters():
            p.mul_(4.0)                          # an encoder whose features grew large in training
        bounded = model.encode_object(frames)
        raw = model.object_encoder(frames)[: cfg.levels]
    assert all(level.abs().max() <= 1 for level in bounded)
    assert any(level.abs().max() > 1 for level in raw)
    assert all(torch.allclose(b, torch.tanh(r)) for b, r in zip(bounded, raw))
