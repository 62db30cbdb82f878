"""Movable poke (model.movable_poke): one factor per video, how likely the poked point is to move at all."""
import dataclasses

import pytest
import torch

from poke2video.config import ModelConfig, TrainConfig, load_preset
from poke2video.data.pokes import make_poke_map
from poke2video.errors import UserError
from poke2video.model import PokeModel, save_model
from poke2video.model.blocks import OPEN_BIAS
from poke2video.model.movable import MovablePoke
from poke2video.poker import Poker
from poke2video.train import losses
from poke2video.train.steps import build_optimizers
from train_support import moving_warp_model, write_preset

torch.set_num_threads(1)
TINY = ModelConfig(resolution=16, stem_channels=4, channels=[4, 4], bottleneck_channels=4, levels=2, frames=3,
                   output="warp", movable_poke=True)


def poke_map_at(x: int, y: int, size: int = 16) -> torch.Tensor:
    """[1, 2, H, W]: a 3x3 poke centred on (x, y)."""
    poke_map = torch.zeros(1, 2, size, size)
    poke_map[:, 0, y - 1:y + 2, x - 1:x + 2] = 2.0
    return poke_map


def moving_model(movable: bool) -> PokeModel:
    return moving_warp_model(dataclasses.replace(TINY, movable_poke=movable))


def test_a_new_head_passes_every_poke_and_reads_only_under_the_footprint():
    head = MovablePoke()
    source = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.allclose(head(source, poke_map_at(5, 5)), torch.tensor([OPEN_BIAS]))
    # a trained-looking head: the logit is the mean of its map under the poke, so moving the poke changes it
    torch.manual_seed(1)
    torch.nn.init.normal_(head.net[-1].weight, 0, 1.0)
    logit_map = head.logit_map(source)[0, 0]
    assert torch.allclose(head(source, poke_map_at(5, 5)), logit_map[4:7, 4:7].mean(), atol=1e-5)
    assert torch.allclose(head(source, poke_map_at(10, 8)), logit_map[7:10, 9:12].mean(), atol=1e-5)
    assert head(source, torch.zeros(1, 2, 16, 16)).item() == 0.0          # no footprint: undecided


@pytest.mark.parametrize("poke_size", [3, 9, 15])
def test_the_window_gives_the_whole_frames_logits_anywhere_in_the_image(poke_size):
    """forward reads a window around the footprint; at image borders and corners, and for any footprint
    that fits it, the logit equals the whole frame's map averaged under the footprint."""
    torch.manual_seed(0)
    head = MovablePoke()
    torch.nn.init.normal_(head.net[-1].weight, 0, 1.0)
    points = [(0, 0), (63, 63), (5, 60), (32, 32), (14.6, 2.2), (63, 0), (40, 20), (1, 33)]
    source = torch.rand(len(points), 3, 64, 64) * 2 - 1
    poke_map = torch.stack([torch.from_numpy(make_poke_map(64, xy, (2.0, -1.0), poke_size)) for xy in points])
    footprint = (poke_map.abs().sum(1, keepdim=True) > 0).float()
    whole = (head.logit_map(source) * footprint).sum((1, 2, 3)) / footprint.sum((1, 2, 3))
    windowed = head(source, poke_map)
    if poke_size <= 9:                                                  # fits the window: the same logits
        assert torch.allclose(windowed, whole, atol=1e-5)
    else:                                                               # wider: read where it fits only
        assert not torch.allclose(windowed, whole, atol=1e-5)


def test_predict_scales_each_videos_flows_by_its_probability():
    with_head, plain = moving_model(True), moving_model(False)
    plain.load_state_dict({k: v for k, v in with_head.state_dict().items() if not k.startswith("movable_poke.")})
    source = torch.rand(2, 3, 16, 16) * 2 - 1
    poke_map = torch.cat([poke_map_at(5, 5), poke_map_at(10, 8)])
    with torch.no_grad():
        with_head.movable_poke.net[-1].bias.fill_(0.0)
        with_head.movable_poke.net[-1].weight.zero_()
        with_head.movable_poke.net[-1].weight[0, 0] = 1.0
        prediction = with_head.predict(source, poke_map)
        unscaled = plain.predict(source, poke_map).backward_flow
    assert unscaled.abs().mean() > 0.5
    probability = torch.sigmoid(prediction.movable_logit)
    assert not torch.allclose(probability[0], probability[1])
    assert torch.allclose(prediction.backward_flow, unscaled * probability.view(2, 1, 1, 1, 1), atol=1e-5)


def test_a_background_poke_the_head_rejects_leaves_the_frame_still(tmp_path):
    model = moving_model(True)
    with torch.no_grad():
        model.movable_poke.net[-1].bias.fill_(-30.0)
    path = tmp_path / "model.safetensors"
    save_model(path, model, {"step": 1})
    poker = Poker.load(path)
    assert poker.model.cfg.movable_poke
    image = (torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(2)) * 255).byte().numpy()
    with torch.no_grad():
        prediction = poker.model.predict(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1,
                                         poke_map_at(7, 7))
    assert prediction.backward_flow.abs().max() < 1e-9
    video = poker.animate(image, (7, 7), (10, 8))
    eager = Poker.load(path, trace=False).animate(image, (7, 7), (10, 8))
    assert (abs(video.astype(int) - eager.astype(int)) <= 1).all()


def test_movable_loss_follows_the_pokes_label():
    confident = torch.tensor([6.0, -6.0])
    assert losses.movable_loss(confident, torch.tensor([0.0, 1.0])).item() < 0.01   # object, background
    assert losses.movable_loss(confident, torch.tensor([1.0, 0.0])).item() > 5.0


def test_the_dynamics_stage_trains_the_head_and_the_switch_needs_warp(tmp_path):
    model = moving_model(True)
    owned = {name: {id(p) for group in opt.param_groups for p in group["params"]}
             for name, opt in build_optimizers(model, None, TrainConfig()).items()}
    head = {id(p) for p in model.movable_poke.parameters()}
    assert head <= owned["stage2"] and not head & owned["stage1"]
    with pytest.raises(UserError, match="movable_poke needs model.output: warp"):
        ModelConfig(output="pixels", movable_poke=True).validate()
    preset = write_preset(tmp_path / "p.yaml", model={"output": "warp"}, flow_weight=1.0, movable_weight=1.0)
    with pytest.raises(UserError, match="movable_weight needs model.movable_poke"):
        load_preset(str(preset))
