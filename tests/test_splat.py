"""The renderer (model/render.py, model/splat.py): still pixels stay exact, moved pixels land, uncovered ones
are filled, at the flow's size and at any other."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from poke2video.model.render import BOX_MARGIN, _upscaled_fields, render_upscaled, render_video
from poke2video.model.splat import background_plate, extend_field, splat

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


def test_splat_spreads_moving_pixels_bilinearly_and_the_faster_one_wins_where_two_land():
    values = torch.zeros(1, 1, 8, 8)
    values[0, 0, 2, 2], values[0, 0, 2, 4] = 1.0, 5.0
    flow = torch.zeros(1, 2, 8, 8)
    flow[0, 0, 2, 2] = 2.0                                       # lands on (2, 4) ...
    flow[0, 0, 2, 5] = 0.5                                       # ... and half of this one too
    moving = flow.norm(dim=1) > 0
    mean, coverage = splat(values, flow, moving, front_per_px=4.0)
    assert coverage[0, 0, 2, 4] == 1 and coverage[0, 0, 2, 5] == 0.5 and coverage[0, 0, 2, 2] == 0
    assert mean[0, 0, 2, 4] > 0.95 and mean[0, 0, 2, 2] == 0   # (2, 4)'s own value did not move: not there


def test_plate_fills_holes_from_known_pixels_and_keeps_them():
    image = torch.rand(1, 3, 16, 16)
    still = torch.ones(1, 1, 16, 16)
    still[..., 5:9, 5:9] = 0
    plate = background_plate(image, still)
    assert torch.allclose(plate[..., still[0, 0] > 0], image[..., still[0, 0] > 0])
    hole = plate[0, :, 5:9, 5:9]
    assert (hole >= image.min() - 1e-6).all() and (hole <= image.max() + 1e-6).all()


def test_pixels_beyond_the_box_around_the_motion_are_the_image_s_own():
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


def test_an_image_smaller_than_the_flow_draws_a_moved_part_opaque():
    """A 32 px photo under a 64 px flow: the block lands with its full colour, as at the flow's own size."""
    image = np.zeros((32, 32, 3), np.uint8)
    image[8:16, 8:16] = 255
    flows = torch.zeros(1, 2, 64, 64)
    flows[0, 0, 12:36, 12:36] = 8.0                                 # the block (and a rim) 8 flow px right
    box, frames = render_upscaled(image, flows)
    last = image.copy()
    last[box[0], box[1]] = frames[-1]
    assert last[10:14, 14:18].min() == 255                          # 4 image px right, fully drawn


@pytest.mark.parametrize("size", [(64, 65), (65, 64), (66, 66), (512, 512), (480, 640)])
def test_the_backward_field_is_read_at_the_full_size_pixel_centres(size):
    height, width = size
    planes = np.random.default_rng(0).normal(size=(2, 64, 64)).astype(np.float32)
    for box in ((slice(3, height - 2), slice(1, width - 4)), (slice(20, 30), slice(20, 30))):  # a whole and a small crop
        fields = _upscaled_fields(planes, (width / 64, height / 64), box)
        ys = (torch.arange(box[0].start, box[0].stop) + 0.5) / height * 2 - 1        # align_corners False
        xs = (torch.arange(box[1].start, box[1].stop) + 0.5) / width * 2 - 1
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
        exact = F.grid_sample(torch.from_numpy(planes)[None], grid, align_corners=False, padding_mode="border")[0]
        assert np.abs(np.stack(fields) - exact.numpy()).max() < 1e-3


def test_the_background_plate_fills_a_wide_crop_and_a_crop_with_nothing_still():
    image, still = torch.ones(1, 1, 4, 16), torch.ones(1, 1, 4, 16)
    still[..., :8] = 0                                              # the left half unknown, twice as wide as tall
    assert torch.allclose(background_plate(image, still), image)
    image = torch.rand(1, 3, 8, 8)
    plate = background_plate(image, torch.zeros(1, 1, 8, 8))      # everything moves: the image's mean colour
    assert torch.allclose(plate, image.mean(dim=(-2, -1), keepdim=True).expand_as(image))


def test_flows_with_nan_are_refused_with_a_clear_error():
    flows = torch.zeros(1, 2, 2, 16, 16)
    flows[0, 1, 0, 4, 4] = float("nan")
    with pytest.raises(ValueError, match="must be finite"):
        render_video(torch.rand(1, 3, 16, 16), flows)
    with pytest.raises(ValueError, match="must be finite"):
        render_upscaled(np.zeros((32, 32, 3), np.uint8), flows[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_flow_is_extended_past_a_part_on_the_gpu():
    field, known = torch.zeros(1, 2, 16, 16), torch.zeros(1, 1, 16, 16)
    field[..., 6:10, 6:10], known[..., 6:10, 6:10] = 1.0, 1.0
    on_gpu = extend_field(field.cuda(), known.cuda())
    assert torch.allclose(on_gpu.cpu(), extend_field(field, known))
