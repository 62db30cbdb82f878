"""FlowUNet (family unet): shapes, the poke's channels, the time basis, and that it can fit."""
import dataclasses

import numpy as np
import pytest
import torch

from poke2video.errors import UserError
from poke2video.flow_config import FlowModelConfig
from poke2video.model import build_model, load_model, save_model
from poke2video.model.flow_unet import FlowUNet, poke_channels
from poke2video.preset import load_preset
from poke2video.train.batch import Batch
from poke2video.train.flow_steps import cosine_lr, flow_endpoint_loss, mirror, moves_loss

torch.set_num_threads(1)
RES = 32


def tiny_config(**changes) -> FlowModelConfig:
    return dataclasses.replace(FlowModelConfig(resolution=RES, unet_channels=[8, 16, 16], time_basis=2, frames=4),
                               **changes)


def test_a_fresh_model_moves_nothing_and_returns_the_source():
    model = build_model(tiny_config()).eval()
    assert isinstance(model, FlowUNet)
    source = torch.rand(2, 3, RES, RES) * 2 - 1
    prediction = model.predict(source, None, poke=torch.tensor([[10.0, 12, 3, -2], [5, 5, 0, 4]]))
    assert prediction.forward_flow.shape == (2, 4, 2, RES, RES) and prediction.forward_flow.abs().max() == 0
    assert torch.equal(prediction.video, source[:, None].expand(-1, 4, -1, -1, -1))


def test_poke_channels_peak_at_the_poke_and_its_target_at_every_scale():
    poke = torch.tensor([[20.0, 8.0, -8.0, 16.0]])
    for size in (32, 16, 8):
        channels = poke_channels(poke, RES, size, size)
        step = RES / size
        source_cell = np.unravel_index(int(channels[0, 0].argmax()), (size, size))
        target_cell = np.unravel_index(int(channels[0, 1].argmax()), (size, size))
        assert source_cell == (int(8 // step), int(20 // step)) and target_cell == (int(24 // step), int(12 // step))
        assert torch.allclose(channels[0, 6], torch.full((size, size), -1.0))           # dx / 8 everywhere


def test_time_basis_resamples_to_other_frame_counts():
    model = build_model(tiny_config())
    assert torch.equal(model.time_basis(4), model.basis)
    eight = model.time_basis(8)
    assert eight.shape == (2, 8) and torch.allclose(eight[:, 1::2], model.basis, atol=1e-6)


def test_weights_round_trip_builds_the_same_architecture(tmp_path):
    model = build_model(tiny_config())
    torch.nn.init.normal_(model.head.weight, std=0.1)
    save_model(tmp_path / "m.safetensors", model)
    loaded, _ = load_model(tmp_path / "m.safetensors")
    source, poke = torch.rand(1, 3, RES, RES), torch.tensor([[10.0, 10, 2, 2]])
    assert isinstance(loaded, FlowUNet)
    assert torch.allclose(loaded.forward_flows(source, poke), model.eval().forward_flows(source, poke))


def test_config_checks_name_the_unet_options(tmp_path):
    with pytest.raises(UserError, match="unet_channels must hold"):
        tiny_config(unet_channels=[]).validate()
    with pytest.raises(UserError, match="divisible"):
        tiny_config(resolution=34).validate()
    tiny_config(resolution=18, unet_channels=[4, 8]).validate()      # two scales: 18 = 2 x 9 is enough
    bad = tmp_path / "p.yaml"
    bad.write_text("model: {architecture: unet, resolution: 18, unet_channels: [4, 8]}\n")
    assert load_preset(str(bad)).model == tiny_config(resolution=18, unet_channels=[4, 8], time_basis=3, frames=10)
    bad.write_text("model: {architecture: transformer}\n")
    with pytest.raises(UserError, match="architecture must be gru or unet, got 'transformer'"):
        load_preset(str(bad))
    bad.write_text("model: {architecture: unet}\ntrain: {flow_frames: last}\n")
    with pytest.raises(UserError, match="every frame"):
        load_preset(str(bad))
    bad.write_text("model: {architecture: unet}\ntrain: {still_clip_weight: 0.5}\n")
    with pytest.raises(UserError, match="still_clip_weight must be at least 1"):
        load_preset(str(bad))


def test_loss_weighs_moving_pixels_and_mask_loss_follows_the_truth():
    target = torch.zeros(1, 2, 2, 8, 8)
    target[0, :, 0, 2:4, 2:4] = 3.0                                   # 4 of 64 pixels move 3 px
    still_guess = torch.zeros_like(target)
    assert flow_endpoint_loss(target, target, 5.0) < 0.01
    still_pixel_error = 1e-3                                            # the loss's sqrt(0 + 1e-6)
    expected = (3.0 * 20 + still_pixel_error * 60) / (60 + 20)
    assert flow_endpoint_loss(still_guess, target, 5.0) == pytest.approx(expected, rel=1e-4)
    right = torch.full((1, 1, 8, 8), -9.0)
    right[..., 2:4, 2:4] = 9.0
    assert moves_loss(right, target) < 1e-3 < moves_loss(-right, target)


def test_still_clip_weight_counts_every_pixel_of_a_clip_where_nothing_moves():
    target = torch.zeros(2, 2, 2, 8, 8)
    target[0, :, 0, 2:4, 2:4] = 3.0               # clip 0: 4 of 64 pixels move 3 px; clip 1: nothing moves
    guess = target.clone()
    guess[1, :, 0] = 1.0                          # clip 1's guess moves everything 1 px
    error = lambda w: flow_endpoint_loss(guess, target, 5.0, still_clip_weight=w)  # noqa: E731
    eps = 1e-3                                    # the loss's sqrt(0 + 1e-6) where the guess is right
    moving, still = 2 * 4 * 5.0 + 2 * 60 * 1.0, 2 * 64 * 1.0     # clip 0's weights, clip 1's (w = 1)
    assert error(1.0) == pytest.approx((eps * moving + 1.0 * still) / (moving + still), rel=1e-4)
    assert error(4.0) == pytest.approx((eps * moving + 4.0 * still) / (moving + 4.0 * still), rel=1e-4)
    assert flow_endpoint_loss(guess[:1], target[:1], 5.0, still_clip_weight=4.0) < 0.01  # a moving clip: unweighted


def test_mirroring_flips_image_poke_and_flow_together():
    source = torch.rand(2, 3, 8, 8)
    flow = torch.zeros(2, 1, 2, 8, 8)
    flow[:, 0, 0, 1, 1] = 2.0                                        # pixel (1, 1) moves right
    poke = torch.tensor([[1.0, 1, 2, 0, 0], [1.0, 1, 2, 0, 0]])
    batch = Batch(source, torch.zeros(2, 2, 8, 8), torch.zeros(2, 1, 3, 8, 8), poke, flow)
    flipped = mirror(batch, torch.tensor([True, False]))
    assert torch.equal(flipped.source[0], source[0].flip(-1)) and torch.equal(flipped.source[1], source[1])
    assert flipped.poke[0].tolist() == [6.0, 1, -2, 0, 0] and flipped.poke[1].tolist() == poke[1].tolist()
    assert flipped.flow[0, 0, 0, 1, 6] == -2.0 and flipped.flow[1, 0, 0, 1, 1] == 2.0
    poke_map = torch.zeros(2, 2, 8, 8)
    poke_map[:, 0, 1, 1] = 2.0                                     # the map carries the same drag
    target = torch.rand(2, 1, 3, 8, 8)
    both = mirror(Batch(source, poke_map, target, poke, flow), torch.tensor([True, False]))
    assert both.poke_map[0, 0, 1, 6] == -2.0 and torch.equal(both.poke_map[1], poke_map[1])
    assert torch.equal(both.target[0], target[0].flip(-1)) and torch.equal(both.target[1], target[1])


@pytest.mark.slow
def test_the_architecture_fits_a_handful_of_clips():
    """Overfit: four clips of a square pushed right or down; the flow error falls far below no motion's."""
    torch.manual_seed(0)
    model = build_model(tiny_config())
    sources, pokes, flows = [], [], []
    for k, (dx, dy) in enumerate([(4, 0), (0, 4), (-4, 0), (0, -4)]):
        image = torch.full((3, RES, RES), -0.5)
        image[:, 12:20, 12:20] = 0.8
        sources.append(image)
        pokes.append(torch.tensor([15.5, 15.5, float(dx), float(dy)]))
        flow = torch.zeros(4, 2, RES, RES)
        for t in range(4):
            flow[t, 0, 12:20, 12:20], flow[t, 1, 12:20, 12:20] = dx * (t + 1) / 4, dy * (t + 1) / 4
        flows.append(flow)
    source, poke, flow = torch.stack(sources), torch.stack(pokes), torch.stack(flows)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(160):
        predicted, logit = model.forward_flows(source, poke, with_logit=True)
        loss = flow_endpoint_loss(predicted, flow, 5.0) + moves_loss(logit, flow)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        error = (model.eval().forward_flows(source, poke) - flow).norm(dim=2)[..., 12:20, 12:20].mean()
    static = flow.norm(dim=2)[..., 12:20, 12:20].mean()
    assert error < 0.25 * static


def test_cosine_lr_falls_from_the_lr_to_its_final_share_over_the_run():
    assert cosine_lr(2e-3, 0.02, 0, 1000) == pytest.approx(2e-3)
    assert cosine_lr(2e-3, 0.02, 500, 1000) == pytest.approx(2e-3 * 0.51)
    assert cosine_lr(2e-3, 0.02, 1000, 1000) == cosine_lr(2e-3, 0.02, 5000, 1000) == pytest.approx(4e-5)
    rates = [cosine_lr(1.0, 0.0, step, 100) for step in range(101)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
