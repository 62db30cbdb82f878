"""Property-based tests of data/pokes.py: sampling training pokes from flow, and the poke map.

What the code promises (its docstrings): a sampled poke lies inside the image and, where the image leaves
room, at least `poke_size` from the border; a foreground poke is a moving pixel (magnitude above the mean,
or the largest when nothing is) carrying its own flow; a background poke is a pixel at or below the
`background_percentile` of the inner magnitudes carrying the flow of a foreground pixel. The poke map is
float32 [2, R, R], zero except the odd `poke_size` square around the rounded source, clipped at the border.
"""
import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fuzz_support import fuzz
from poke2video.data.pokes import impulse_vector, inner_region, make_poke_map, sample_poke

F32_MAX = float(np.finfo(np.float32).max)
odd_sizes = st.sampled_from([1, 3, 5, 7])



@st.composite
def flows(draw):
    """[2, H, W] flows: float32 or float16 (as the store keeps them), sparse or dense, small or huge values."""
    height, width = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    dtype = draw(st.sampled_from([np.float32, np.float16, np.float64]))
    bound = float(np.finfo(dtype).max) if draw(st.booleans()) else 50.0
    values = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=np.finfo(dtype).bits)
    flow = draw(hnp.arrays(dtype, (2, height, width), elements=values))
    if draw(st.booleans()):                                   # mostly still, as a real clip's flow is
        still = draw(hnp.arrays(bool, (height, width)))
        flow[:, still] = 0
    return flow


def magnitude64(flow) -> np.ndarray:
    """|F| as the sampler sees it (float32, capped at its max), in float64 for the checks."""
    flow = np.asarray(flow, np.float64)
    with np.errstate(over="ignore"):
        return np.minimum(np.hypot(flow[0], flow[1]), F32_MAX).astype(np.float32).astype(np.float64)


@fuzz(150)
@given(flow=flows(), poke_size=odd_sizes, seed=st.integers(0, 2**32), background=st.booleans())
@example(flow=np.full((2, 8, 8), 3e38, np.float32), poke_size=3, seed=0, background=True)   # was: ValueError high <= 0
@example(flow=np.full((2, 1, 1), 2.0, np.float16), poke_size=7, seed=0, background=False)
def test_sampled_pokes_follow_the_rules(flow, poke_size, seed, background):
    (x, y), (dx, dy) = sample_poke(flow, poke_size, np.random.default_rng(seed), background=background)
    height, width = flow.shape[1:]
    assert isinstance(x, int) and isinstance(y, int) and 0 <= x < width and 0 <= y < height
    assert math.isfinite(dx) and math.isfinite(dy)
    region = inner_region((height, width), poke_size)
    assert region[y, x]
    if 2 * poke_size < min(height, width):
        assert poke_size <= x < width - poke_size and poke_size <= y < height - poke_size
    magnitude = magnitude64(flow)
    vectors = {(float(a), float(b)) for a, b in zip(flow[0][region], flow[1][region])}
    assert (dx, dy) in vectors                                   # the flow of an inner pixel, as is
    if background:
        threshold = float(np.percentile(magnitude[region].astype(np.float32), 10.0))
        assert magnitude[y, x] <= threshold * (1 + 1e-6) + 1e-30
    else:
        assert (dx, dy) == (float(flow[0, y, x]), float(flow[1, y, x]))
        top = magnitude[region].max()
        assert magnitude[y, x] > magnitude.mean() * (1 - 1e-6) or magnitude[y, x] >= top * (1 - 1e-6)
        if top > 0:
            assert magnitude[y, x] > 0                            # a moving pixel whenever one moves
    again = sample_poke(flow, poke_size, np.random.default_rng(seed), background=background)
    assert again == ((x, y), (dx, dy))                           # the seed decides


@fuzz(40)
@given(shape=st.tuples(st.integers(0, 3), st.integers(0, 6), st.integers(0, 6)), bad=st.sampled_from(
    [np.nan, np.inf, -np.inf, None]))
def test_unusable_flow_is_one_clear_value_error(shape, bad):
    flow = np.zeros(shape, np.float32)
    if bad is not None and flow.size:
        flow.flat[flow.size // 2] = bad
    usable = shape[0] == 2 and shape[1] >= 1 and shape[2] >= 1 and (bad is None)
    if usable:
        sample_poke(flow, 3, np.random.default_rng(0), background=False)
        return
    with pytest.raises(ValueError, match="flow"):
        sample_poke(flow, 3, np.random.default_rng(0), background=bool(shape[0] % 2))


coordinates = st.floats(-40, 80, allow_nan=False) | st.floats(-1e300, 1e300, allow_nan=False)
displacements = st.floats(-2.0**100, 2.0**100, width=32)


@fuzz(150)
@given(resolution=st.integers(1, 40), sx=coordinates, sy=coordinates, dx=displacements, dy=displacements,
       poke_size=odd_sizes)
@example(resolution=16, sx=0.0, sy=15.0, dx=1.0, dy=-1.0, poke_size=5)
@example(resolution=16, sx=2.5, sy=3.5, dx=1.0, dy=1.0, poke_size=3)
@example(resolution=16, sx=-5.0, sy=3.0, dx=1.0, dy=1.0, poke_size=3)    # was: a 3 x 13 band (slice wrapped)
def test_poke_map_is_the_square_around_the_source(resolution, sx, sy, dx, dy, poke_size):
    poke_map = make_poke_map(resolution, (sx, sy), (dx, dy), poke_size)
    assert poke_map.shape == (2, resolution, resolution) and poke_map.dtype == np.float32
    assert np.isfinite(poke_map).all()
    cx, cy, half = round(sx), round(sy), poke_size // 2
    assert abs(cx - sx) <= 0.5 and abs(cy - sy) <= 0.5
    cx, cy = (min(max(c, -100), 100) for c in (cx, cy))        # the same square for this resolution
    ys, xs = np.mgrid[:resolution, :resolution]
    square = (np.abs(xs - cx) <= half) & (np.abs(ys - cy) <= half)
    assert (poke_map[:, ~square] == 0).all()                    # zero away from the poke
    assert (poke_map[0, square] == np.float32(dx)).all() and (poke_map[1, square] == np.float32(dy)).all()
    inside = [max(0, min(resolution, c + half + 1) - max(0, c - half)) for c in (cx, cy)]
    assert square.sum() == inside[0] * inside[1]                # clipped at the border, never wrapped
    doubled = make_poke_map(resolution, (sx, sy), (2 * dx, 2 * dy), poke_size)
    assert np.array_equal(doubled, 2 * poke_map)                # linear in the displacement


@fuzz(60)
@given(source=st.tuples(st.floats(), st.floats()), displacement=st.tuples(st.floats(), st.floats()),
       poke_size=st.integers(-3, 8))
@example(source=(math.nan, 1.0), displacement=(1.0, 1.0), poke_size=3)   # was: "cannot convert float NaN"
@example(source=(5.0, 5.0), displacement=(1.0, 1.0), poke_size=4)        # was: a 5 x 5 square for size 4
@example(source=(5.0, 5.0), displacement=(1e39, 0.0), poke_size=3)       # was: inf in the map
def test_poke_map_refuses_what_it_cannot_draw(source, displacement, poke_size):
    with np.errstate(over="ignore"):
        fits = np.isfinite(np.float32(displacement)).all()
    drawable = all(math.isfinite(v) for v in source) and fits and poke_size >= 1 and poke_size % 2 == 1
    if drawable:
        assert np.isfinite(make_poke_map(12, source, displacement, poke_size)).all()
    else:
        with pytest.raises(ValueError, match="poke_size|finite|float32"):
            make_poke_map(12, source, displacement, poke_size)


@fuzz(100)
@given(dx=st.floats(-1e100, 1e100), dy=st.floats(-1e100, 1e100), strength=st.floats(-2, 3))
def test_impulse_keeps_the_direction_and_bounds_the_strength(dx, dy, strength):
    ix, iy = impulse_vector((dx, dy), strength)
    norm = math.hypot(ix, iy)
    assert math.isfinite(ix) and math.isfinite(iy) and norm <= 1 + 1e-9
    if math.hypot(dx, dy) > 0 and 0 < strength:
        assert norm == pytest.approx(min(strength, 1.0), rel=1e-6)
        if norm > 1e-300:                                          # the same direction
            length = math.hypot(dx, dy)
            assert (ix / norm, iy / norm) == pytest.approx((dx / length, dy / length), abs=1e-9)
