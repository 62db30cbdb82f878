"""Forward splatting (model/splat.py): still pixels stay exact, moved pixels land, uncovered ones are filled."""
import numpy as np
import torch

from poke2video.model.render import BOX_MARGIN, render_video
from poke2video.model.splat import background_plate, splat

torch.set_num_threads(1)


def _square_flows(size: int = 24, frames: int = 2, shift=(3.0, 0.0)) -> torch.Tensor:
    """[1, T, 2, size, size]: a 4x4 square at rows/cols 8..11 moves by t/T of `shift`."""
    flows = torch.zeros(1, frames, 2, size, size)
    for t in range(frames):
        flows[0, t, 0, 8:12, 8:12] = shift[0] * (t + 1) / frames
        flows[0, t, 1, 8:12, 8:12] = shift[1] * (t + 1) / frames
    return flows


def test_zero_flow_returns_the_image_exactly():
    image = torch.rand(2, 3, 20, 30) * 255
    video = render_video(image, torch.zeros(2, 4, 2, 20, 30))
    assert video.shape == (2, 4, 3, 20, 30) and torch.equal(video, image[:, None].expand_as(video))


def test_a_moved_square_lands_at_its_target_and_the_rest_is_untouched():
    image = torch.rand(1, 3, 24, 24)
    video = render_video(image, _square_flows(shift=(3.0, 0.0)))
    last = video[0, -1]
    assert torch.allclose(last[:, 8:12, 11:15], image[0, :, 8:12, 8:12], atol=1e-5)   # moved 3 px right
    far = torch.ones(24, 24, dtype=torch.bool)
    far[4:16, 4:19] = False                                                          # around the square
    assert torch.equal(last[:, far], image[0][:, far])


def test_uncovered_pixels_come_from_the_background_not_the_old_copy():
    image = torch.zeros(1, 3, 24, 24)
    image[0, :, 8:12, 8:12] = 1.0                                  # a white square on black
    last = render_video(image, _square_flows(shift=(4.0, 0.0)))[0, -1]
    assert last[:, 8:12, 8:12].max() < 0.05                        # where it was: background again
    assert last[:, 8:12, 12:16].min() > 0.95                       # where it went


def test_a_moving_pixel_covers_a_still_one():
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 2, 2] = 1.0
    flow = torch.zeros(1, 2, 8, 8)
    flow[0, 0, 2, 2] = 2.0                                       # lands on (2, 4), which stays black itself
    colour, coverage = splat(image, flow, flow.norm(dim=1) == 0)
    assert colour[0, 0, 2, 4] > 0.95 and coverage[0, 0, 2, 4] == 1 and coverage[0, 0, 2, 2] == 0


def test_plate_fills_holes_from_known_pixels_and_keeps_them():
    image = torch.rand(1, 3, 16, 16)
    still = torch.ones(1, 1, 16, 16)
    still[..., 5:9, 5:9] = 0
    plate = background_plate(image, still)
    assert torch.allclose(plate[..., still[0, 0] > 0], image[..., still[0, 0] > 0])
    hole = plate[0, :, 5:9, 5:9]
    assert (hole >= image.min() - 1e-6).all() and (hole <= image.max() + 1e-6).all()


def test_rendering_a_box_is_the_same_as_rendering_everything():
    image = torch.rand(1, 3, 96, 96)
    flows = torch.zeros(1, 3, 2, 96, 96)
    flows[0, :, 0, 40:44, 40:44] = 1.5
    video = render_video(image, flows)
    outside = torch.ones(96, 96, dtype=torch.bool)
    reach = 2 + BOX_MARGIN
    outside[40 - reach:44 + reach, 40 - reach:44 + reach] = False
    assert torch.equal(video[0, :, :, outside], image[0][:, outside].expand(3, -1, -1))
    assert not torch.equal(video[0, -1], image[0])


def test_a_small_flow_moves_a_large_image_and_leaves_the_rest_exact():
    """render_upscaled: a flow on a 16 x 16 grid applied to a 64 x 64 image (4 px per grid cell)."""
    from poke2video.model.render import render_upscaled

    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    flows = torch.zeros(2, 2, 16, 16)
    flows[:, 0, 4:8, 4:8] = 2.0                                     # a block of the grid moves 2 cells right
    box, frames = render_upscaled(image, flows)
    assert frames.dtype == np.uint8 and frames.shape == (2, box[0].stop - box[0].start, box[1].stop - box[1].start, 3)
    last = image.copy()
    last[box[0], box[1]] = frames[-1]
    moved = np.abs(last[20:28, 28:36].astype(int) - image[20:28, 20:28].astype(int))
    assert moved.max() <= 1                                         # 8 px right, inside the block
    assert np.array_equal(last[48:, 48:], image[48:, 48:])         # far away: exact
    assert not np.array_equal(last[20:28, 20:28], image[20:28, 20:28])
    assert render_upscaled(image, torch.zeros(2, 2, 16, 16)) == (None, None)
