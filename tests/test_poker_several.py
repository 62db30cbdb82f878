"""Poker with several pokes and pins: the two forms, limits and errors, the poke map and channels of several
pokes, pinned pixels held at any image size, and `poke2video poke --poke ... --pin ...`."""
import numpy as np
import pytest
import torch

from poke2video.cli import main
from poke2video.errors import UserError
from poke2video.flow_config import FlowModelConfig
from poke2video.model import FlowUNet
from poke2video.model.flow_unet import poke_channels
from poke2video.poker import Poker
from poke2video.poking.pins import PIN_HOLD_PX, hold_factor, pin_reach
from poke2video.poking.request import MAX_PINS, MAX_POKES
from test_poker import TINY as TINY_GRU, RecordingModel

torch.set_num_threads(1)


class EverythingMoves(FlowUNet):
    """A flow model whose every pixel moves 3 px right by frame T: what a pin has to hold against."""

    def forward_flows(self, source_frame, poke, steps=None, with_logit=False, pins=None):
        steps = steps or self.cfg.frames
        batch, _, height, width = source_frame.shape
        flows = torch.zeros(batch, steps, 2, height, width)
        flows[:, :, 0] = 3.0 * torch.arange(1, steps + 1).view(1, -1, 1, 1) / steps
        return flows


def image(height=40, width=56) -> np.ndarray:
    ys, xs = np.mgrid[:height, :width]
    return np.stack([xs * 255 // width, ys * 255 // height, (xs * ys) % 255], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def bundled():
    return Poker.load()


def test_one_poke_as_a_list_is_the_same_as_source_and_target(bundled):
    picture = image()
    single = bundled.forward_flow(picture, source=(20, 18), target=(26, 14))
    listed = bundled.forward_flow(picture, pokes=[((20, 18), (26, 14))])
    np.testing.assert_array_equal(single, listed)
    two = bundled.forward_flow(picture, pokes=[((20, 18), (26, 14)), ((40, 30), (36, 34))])
    assert two.shape == single.shape and not np.array_equal(two, single)


@pytest.mark.parametrize("kwargs, message", [
    ({"source": (1, 1), "target": (2, 2), "pokes": [((1, 1), (2, 2))]}, "not both"),
    ({}, "no poke"),
    ({"source": (1, 1)}, "needs both source= and target="),
    ({"pokes": []}, f"1 to {MAX_POKES}"),
    ({"pokes": [((1, 1), (2, 2))] * (MAX_POKES + 1)}, f"1 to {MAX_POKES} (source, target) pairs, got {MAX_POKES + 1}"),
    ({"pokes": [(1, 1, 2, 2)]}, "pokes[0] must be a (source, target) pair"),
    ({"pokes": "12"}, "pokes must be a list"),
    ({"pokes": [((1, 1), (2, 2)), ((1, 1), (99, 2))]}, "pokes[1] target (99, 2) is outside the 56x40 image"),
    ({"source": (1, 1), "target": (2, 2), "pins": [(3, 3)] * (MAX_PINS + 1)}, f"at most {MAX_PINS} pins"),
    ({"source": (1, 1), "target": (2, 2), "pins": [(3, -1)]}, "pins[0] (3, -1) is outside"),
    ({"source": (1, 1), "target": (2, 2), "pins": [(3, float("nan"))]}, "pins[0] must be finite"),
])
def test_bad_pokes_and_pins_are_one_user_error(bundled, kwargs, message):
    for call in (bundled.animate, bundled.forward_flow):
        with pytest.raises(UserError) as caught:
            call(image(), **kwargs)
        assert message in str(caught.value) and "\n" not in str(caught.value)


def test_several_pokes_share_one_poke_map_the_sum_of_their_squares():
    poker = Poker(RecordingModel(TINY_GRU))
    poker.animate(image(16, 16), pokes=[((4, 4), (6, 4)), ((5, 5), (5, 8)), ((12, 12), (10, 12))])
    poke_map = poker.model.poke_map[0].numpy()              # [2, 16, 16], poke_size 3 at 16 px
    assert poke_map[0, 4, 4] == pytest.approx(2) and poke_map[1, 5, 5] == pytest.approx(3)
    assert poke_map[0, 5, 5] == pytest.approx(2) and poke_map[1, 4, 4] == pytest.approx(3)   # the squares overlap
    assert poke_map[0, 12, 12] == pytest.approx(-2) and poke_map[1, 12, 12] == 0
    with pytest.raises(UserError, match="pins need a model that gives flows"):
        poker.animate(image(16, 16), source=(4, 4), target=(6, 4), pins=[(10, 10)])


def test_one_poke_draws_the_same_channels_in_either_form_and_padding_draws_nothing():
    poke = torch.tensor([[20.0, 30.0, 4.0, -2.0]])
    listed = torch.tensor([[[20.0, 30.0, 4.0, -2.0, 1.0], [50.0, 10.0, -3.0, 3.0, 0.0]]])   # second row: padding
    np.testing.assert_array_equal(poke_channels(poke, 64, 32, 32).numpy(), poke_channels(listed, 64, 32, 32).numpy())
    two = listed.clone()
    two[0, 1, 4] = 1.0
    channels = poke_channels(two, 64, 64, 64)[0]
    assert channels[0, 10, 50] > 0.99 and channels[6, 10, 50] * 8 == pytest.approx(-3.0)   # the nearest poke's drag
    assert channels[6, 30, 20] * 8 == pytest.approx(4.0)


@pytest.mark.parametrize("size", [(64, 64), (40, 56), (300, 200)])
def test_a_pinned_pixel_stays_within_half_a_pixel_in_every_frame(size):
    torch.manual_seed(0)
    poker = Poker(EverythingMoves(FlowModelConfig(resolution=16, unet_channels=[4, 8], time_basis=2, frames=4)))
    height, width = size
    pin = (width * 0.3, height * 0.6)
    free = poker.forward_flow(image(height, width), source=(2, 2), target=(4, 2))
    held = poker.forward_flow(image(height, width), source=(2, 2), target=(4, 2), pins=[pin])
    x, y = int(round(pin[0])), int(round(pin[1]))
    assert np.hypot(*free[:, :, y, x].T).min() > 0.5              # without the pin it would move
    assert np.hypot(*held[:, :, y, x].T).max() <= 0.5
    assert held[-1, 0].max() == pytest.approx(free[-1, 0].max())  # far from the pin the flow is the model's own
    video = poker.animate(image(height, width), source=(2, 2), target=(4, 2), pins=[pin])
    assert video.shape == (4, height, width, 3)


def test_the_pin_hold_is_zero_at_the_pin_and_one_beyond_its_reach():
    factor = hold_factor([(10.0, 20.0)], 64)
    assert factor[20, 10] == 0 and factor[21, 11] == 0 and factor[20, 11 + int(PIN_HOLD_PX)] > 0
    reach = int(np.ceil(pin_reach(64)))
    assert factor[20, 10 + reach] == 1 and factor[20 + reach, 10] == 1
    ring = factor[20, 10:10 + reach + 1].numpy()
    assert (np.diff(ring) >= 0).all()                              # rises smoothly, never back


def test_poke_command_takes_several_pokes_and_pins(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(image()).save(tmp_path / "in.png")
    args = ["poke", "--image", str(tmp_path / "in.png"), "--out", str(tmp_path / "out.gif")]
    assert main([*args, "--poke", "20", "18", "26", "14", "--poke", "40", "30", "36", "34", "--pin", "10", "10",
                 "--overlay"]) == 0
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.n_frames == 11 and gif.size == (56, 40)
    for extra, message in ([["--poke", "1", "1", "2", "2", "--source", "1", "1"], "not both"],
                           [[], "give --source and --target"],
                           [["--source", "1", "1", "--target", "2", "2", "--pin", "1", "99"], "pins[0] (1, 99)"]):
        assert main([*args, *extra]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1
