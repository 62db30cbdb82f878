"""Poke maps and sampling pokes from flow (foreground, background, margin, impulse)."""
import numpy as np
import pytest

from poke2video.config import poke_size_for
from poke2video.data.pokes import (background_mask, foreground_mask, impulse_vector, make_poke_map, motion_onset,
                                   sample_poke)


def square_flow(size=32, box=(12, 20), vector=(2.0, -1.0)):
    """float32 [2, size, size]: `vector` on the box rows/cols [a, b), zero elsewhere."""
    flow = np.zeros((2, size, size), np.float32)
    a, b = box
    flow[0, a:b, a:b], flow[1, a:b, a:b] = vector
    return flow


def test_poke_map_square_and_values():
    poke_map = make_poke_map(16, (5, 9), (1.5, -2.0), 3)
    assert poke_map.shape == (2, 16, 16) and poke_map.dtype == np.float32
    ys, xs = np.nonzero(poke_map[0])
    assert set(xs.tolist()) == {4, 5, 6} and set(ys.tolist()) == {8, 9, 10}
    assert (poke_map[0, 8:11, 4:7] == 1.5).all() and (poke_map[1, 8:11, 4:7] == -2.0).all()
    assert np.count_nonzero(poke_map) == 18


def test_poke_map_clips_at_border_and_sizes_follow_resolution():
    poke_map = make_poke_map(16, (0, 15), (1.0, 1.0), 5)
    assert np.count_nonzero(poke_map[0]) == 9  # 3 x 3 of the 5 x 5 square lies inside
    assert (poke_size_for(64), poke_size_for(128)) == (3, 5)


def test_foreground_thresholds_fall_back_and_respect_margin():
    magnitude = np.zeros((16, 16), np.float32)
    magnitude[1, 1] = 100.0  # inside the margin: never a poke location
    magnitude[8, 6:10] = 1.0
    mask = foreground_mask(magnitude, margin=3)
    assert not mask[1, 1]
    assert mask.sum() == 4 and mask[8, 6:10].all()  # mean + 2 std leaves only (1, 1): fell back
    uniform = np.ones((16, 16), np.float32)
    mask = foreground_mask(uniform, margin=3)
    assert mask.sum() == 100 and not mask[:3].any()  # nothing above the mean: all inner pixels


def test_background_mask_is_low_magnitude():
    magnitude = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    mask = background_mask(magnitude, margin=3, percentile=10)
    inner = magnitude[3:-3, 3:-3]
    assert mask.any() and magnitude[mask].max() <= np.percentile(inner, 10) + 1e-6
    assert not mask[:3].any() and not mask[:, -3:].any()


def test_sampled_pokes_sit_on_moving_and_still_pixels():
    flow = square_flow()
    moving = np.hypot(flow[0], flow[1]) > 0
    rng = np.random.default_rng(1)
    for _ in range(50):
        (x, y), (dx, dy) = sample_poke(flow, 3, rng, background=False)
        assert moving[y, x] and (dx, dy) == (2.0, -1.0)
        (x, y), (dx, dy) = sample_poke(flow, 3, rng, background=True)
        assert not moving[y, x] and (dx, dy) == (2.0, -1.0)  # vector borrowed from the foreground
        assert 3 <= x < 29 and 3 <= y < 29


def test_impulse_vector_keeps_direction_and_clips_strength():
    dx, dy = impulse_vector((3.0, 4.0), 0.5)
    assert (dx, dy) == pytest.approx((0.3, 0.4))
    assert np.hypot(*impulse_vector((3.0, 4.0), 7.0)) == pytest.approx(1.0)
    assert impulse_vector((0.0, 0.0), 0.5) == (0.0, 0.0)


def test_fastest_fraction_keeps_pokes_off_parts_that_move_little():
    # a part moving 6 px right and a larger one moving 2.5 px (moved along, say): both are foreground
    flow = np.zeros((2, 64, 64), np.float32)
    flow[0, 8:14, 8:14] = 6.0
    flow[0, 30:40, 30:40] = 2.5
    rng = np.random.default_rng(0)
    anywhere = [sample_poke(flow, 3, rng, background=False)[1][0] for _ in range(200)]
    fastest = [sample_poke(flow, 3, rng, background=False, fastest_fraction=0.5)[1][0] for _ in range(200)]
    assert 2.5 in anywhere and 6.0 in anywhere
    assert set(fastest) == {6.0}
    still = [sample_poke(flow, 3, rng, background=True, fastest_fraction=0.5) for _ in range(50)]
    assert all(flow[0, y, x] == 0 and dx == 6.0 for (x, y), (dx, _) in still)


def test_a_poke_placed_at_the_onset_sits_on_the_part_that_leads_the_first_step_with_its_flow_at_T():
    # a stem pushed at (20, 30) swings a leaf that ends up faster: the leaf wins at T, the stem leads step 1
    flow_T, flow_1 = np.zeros((2, 64, 64), np.float32), np.zeros((2, 64, 64), np.float32)
    flow_T[0, 28:33, 18:23], flow_T[0, 5:15, 40:50] = 3.0, 6.0
    flow_1[0, 28:33, 18:23], flow_1[0, 5:15, 40:50] = 0.8, 0.3
    flow_1[0, 30, 20] = 0.9
    rng = np.random.default_rng(0)
    assert {sample_poke(flow_T, 3, rng, background=False)[1][0] for _ in range(100)} == {3.0, 6.0}
    placed = {sample_poke(flow_T, 3, rng, background=False, start_flow=flow_1) for _ in range(300)}
    assert {xy for xy, _ in placed} == {(x, y) for x in range(18, 23) for y in range(28, 33)}  # the whole stem
    assert {d for _, d in placed} == {(3.0, 0.0)}
    (x, y), (dx, _) = sample_poke(flow_T, 3, rng, background=True, start_flow=flow_1)
    assert flow_T[0, y, x] == 0 and dx == 3.0      # a background poke borrows the stem's vector
    flow_1[:] = 0.0                                # nothing moves in step 1: the moving foreground at T
    assert {sample_poke(flow_T, 3, rng, background=False, start_flow=flow_1)[1][0] for _ in range(100)} == {3.0, 6.0}


def test_the_onset_region_is_connected_to_the_fastest_pixel_moving_its_way_at_a_quarter_of_its_speed():
    flow_1 = np.zeros((2, 32, 32), np.float32)
    flow_1[0, 10, 5:20] = np.linspace(0.3, 2.0, 15)     # a limb turning about x = 5: slow near the joint
    flow_1[0, 20, 5:20] = 2.0                           # as fast, but not touching it
    flow_1[1, 11, 10:20] = -2.0                         # touching it, moving across it
    flow_1[0, 0, 0] = 9.0                               # on the border, outside the margin
    region = motion_onset(flow_1, 3)
    ys, xs = np.nonzero(region)
    assert set(ys.tolist()) == {10} and xs.min() > 5 and xs.max() == 19
    assert flow_1[0, 10, xs.min()] >= 0.25 * 2.0 > flow_1[0, 10, xs.min() - 1]
    assert not motion_onset(np.zeros((2, 16, 16), np.float32), 3).any()
    nearer = motion_onset(flow_1, 3, speed_fraction=0.1)          # lower: nearer the limb's joint
    ys, xs_near = np.nonzero(nearer)
    assert set(ys.tolist()) == {10} and xs_near.max() == 19 and xs_near.min() < xs.min()
    assert flow_1[0, 10, xs_near.min()] >= 0.1 * 2.0 > flow_1[0, 10, xs_near.min() - 1]
    with pytest.raises(ValueError, match="start_flow must be a finite"):
        motion_onset(np.full((2, 16, 16), np.nan), 3)
    with pytest.raises(ValueError, match="start_flow must be a finite"):
        motion_onset(np.zeros((16, 16)), 3)
