"""A part that turns keeps its shape through the renderer: a rigid bar turned 60 degrees about one end and a
thin limb swung about its root, given as exact forward flows, come out whole (no holes inside the part's
true footprint) and leave nothing behind (no part-coloured pixels outside it beyond an edge tolerance), at
the flow's own size (64 px, `render_uint8` splatting at the image's size) and at a 512 px output (the
64 px flow applied to a 512 px image, the way `Poker` renders a photo larger than the model)."""
import math

import numpy as np
import pytest
import torch

from poke2video.model.render import STILL_PX
from poke2video.poking.flow import render_uint8

torch.set_num_threads(1)

GRID = 64                                  # the flow's grid (the model's resolution)
FRAMES = 10
BACKGROUND = np.array([40, 90, 150], np.float64)
PART = np.array([235, 70, 40], np.float64)
# the edge tolerance, in pixels of the output: how far inside the footprint a pixel must lie to be required
# to show the part, and how far outside it to be required not to
EDGE_PX = {GRID: 1.0, 512: 4.0}


def cells(box) -> torch.Tensor:
    """bool [GRID, GRID]: the grid pixels whose centres lie in `box` (x0, y0, x1, y1; grid px)."""
    ys, xs = np.mgrid[0:GRID, 0:GRID]
    return torch.from_numpy((xs >= box[0]) & (xs <= box[2]) & (ys >= box[1]) & (ys <= box[3]))


def rotation_flows(box: tuple[float, float, float, float], pivot: tuple[float, float],
                   angles: list[float]) -> torch.Tensor:
    """Exact forward flows [T, 2, GRID, GRID] (grid px) of the pixels whose centres lie in `box` (x0, y0, x1,
    y1; grid px), turned by angles[t] (radians, y down) about `pivot`; every other pixel stays."""
    ys, xs = np.mgrid[0:GRID, 0:GRID].astype(np.float64)
    inside = cells(box).numpy()
    flows = np.zeros((len(angles), 2, GRID, GRID), np.float32)
    for t, angle in enumerate(angles):
        new_x, new_y = _turn(xs, ys, pivot, angle)
        flows[t, 0] = np.where(inside, new_x - xs, 0.0)
        flows[t, 1] = np.where(inside, new_y - ys, 0.0)
    return torch.from_numpy(flows)


def _turn(xs, ys, pivot, angle):
    """Points (xs, ys) turned by `angle` about `pivot`."""
    cos, sin = math.cos(angle), math.sin(angle)
    dx, dy = xs - pivot[0], ys - pivot[1]
    return pivot[0] + cos * dx - sin * dy, pivot[1] + sin * dx + cos * dy


def to_output(value: float, size: int) -> float:
    """A coordinate in grid px -> the same point in px of a size x size output (pixel centres at integers)."""
    return (value + 0.5) * size / GRID - 0.5


def scene(box, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: the background with the part's pixels (those whose grid cell lies in `box`)."""
    image = np.empty((size, size, 3), np.uint8)
    image[:] = BACKGROUND.astype(np.uint8)
    rows = slice(_first_pixel(box[1] - 0.5, size), _first_pixel(box[3] + 0.5, size))
    cols = slice(_first_pixel(box[0] - 0.5, size), _first_pixel(box[2] + 0.5, size))
    image[rows, cols] = PART.astype(np.uint8)
    return image


def _first_pixel(edge: float, size: int) -> int:
    """The first output pixel whose centre lies past a cell edge at `edge` (grid px)."""
    return int(math.floor(to_output(edge, size) + 0.5))


def signed_distance(box, pivot, angle: float, size: int) -> np.ndarray:
    """[size, size]: each output pixel centre's distance (output px) outside the part's true footprint at
    `angle` (negative inside): the part's cells as a rectangle, turned back by the angle and measured there."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    centre = (to_output(pivot[0], size), to_output(pivot[1], size))
    back_x, back_y = _turn(xs, ys, centre, -angle)
    x0, x1 = to_output(box[0] - 0.5, size), to_output(box[2] + 0.5, size)
    y0, y1 = to_output(box[1] - 0.5, size), to_output(box[3] + 0.5, size)
    out_x, out_y = np.maximum(x0 - back_x, back_x - x1), np.maximum(y0 - back_y, back_y - y1)
    outside = np.hypot(np.maximum(out_x, 0), np.maximum(out_y, 0))
    return np.where((out_x > 0) | (out_y > 0), outside, np.maximum(out_x, out_y))


def partness(video: np.ndarray) -> np.ndarray:
    """[T, H, W]: where each pixel's colour lies between the background (0) and the part's colour (1)."""
    axis = PART - BACKGROUND
    return (video.astype(np.float64) - BACKGROUND) @ axis / (axis @ axis)


def check_whole(box, pivot, angles, size: int) -> None:
    """Render the turn at `size` px and assert: every pixel well inside the footprint shows the part, no pixel
    well outside it does."""
    video = render_uint8(scene(box, size), rotation_flows(box, pivot, angles), STILL_PX)
    assert video.shape == (len(angles), size, size, 3)
    edge = EDGE_PX[size]
    for t, angle in enumerate(angles):
        distance, part = signed_distance(box, pivot, angle, size), partness(video[t])
        inside, outside = distance < -edge, distance > edge
        holes = inside & (part < 0.8)
        left_behind = outside & (part > 0.2)
        assert not holes.any(), f"frame {t + 1}: {holes.sum()} of {inside.sum()} pixels inside the part are holes"
        assert not left_behind.any(), f"frame {t + 1}: {left_behind.sum()} part-coloured pixels outside it"


BAR = (20.0, 30.0, 41.0, 34.0)            # 22 x 5 grid px, turned about the middle of its left end
BAR_PIVOT = (19.5, 32.0)
LIMB = (32.0, 24.0, 49.0, 26.0)           # 18 x 3 grid px, swung out and partly back about its root
LIMB_PIVOT = (31.5, 25.0)


@pytest.mark.parametrize("size", [GRID, 512])
def test_a_bar_turned_60_degrees_about_one_end_stays_whole(size):
    angles = [math.radians(60.0) * (t + 1) / FRAMES for t in range(FRAMES)]
    check_whole(BAR, BAR_PIVOT, angles, size)


@pytest.mark.parametrize("size", [GRID, 512])
def test_a_thin_limb_swung_stays_whole(size):
    angles = [math.radians(-80.0) * math.sin(math.pi * 0.7 * (t + 1) / FRAMES) for t in range(FRAMES)]
    check_whole(LIMB, LIMB_PIVOT, angles, size)


def test_the_footprint_measure_finds_a_part_left_in_place():
    """The check itself: the unmoved image, compared with the turned footprint, has holes and leftovers."""
    image = scene(BAR, GRID)
    distance = signed_distance(BAR, BAR_PIVOT, math.radians(60.0), GRID)
    part = partness(image[None])[0]
    assert (part[distance < -1] < 0.8).any() and (part[distance > 1] > 0.2).any()
    assert np.allclose(part[signed_distance(BAR, BAR_PIVOT, 0.0, GRID) < -0.5], 1.0, atol=0.01)


def test_a_moved_part_keeps_a_crisp_edge_at_512_px():
    """A 64 px flow shown on a 512 px image: a block shifted right by 6.4 grid px (51 output px) keeps hard
    edges, at most one output pixel between background and part at each (the grid's moving mask is sharpened
    to the output's pixels; read as it is, each edge would blur over the 8 output px of a grid pixel)."""
    block = (20.0, 24.0, 35.0, 39.0)
    flows = torch.zeros(1, 2, GRID, GRID)
    flows[0, 0][cells(block)] = 6.4
    row = partness(render_uint8(scene(block, 512), flows, STILL_PX)[0])[256]
    assert row[:205].max() < 0.1 and row[220:330].min() > 0.9 and row[345:].max() < 0.1   # part at 211-339
    assert ((row > 0.1) & (row < 0.9)).sum() <= 2
