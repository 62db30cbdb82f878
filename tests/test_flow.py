"""Optical flow convention: channel 0 = x (right), 1 = y (down), pixels, frame a -> frame b."""
import cv2
import numpy as np
import pytest

from conftest import textured_background
from poke2video.data.flow import (ESTIMATORS, chain_flows, changed_region, check_trackable, downscale_flow,
                                  estimate_flow, get_flow_estimator, still_where_unchanged)
from poke2video.errors import UserError


@pytest.mark.parametrize("method", sorted(ESTIMATORS))
@pytest.mark.parametrize("shift", [(3, -2), (-1, 4)])
def test_global_shift_gives_that_flow(shift, method):
    big = textured_background(96, 96, seed=3)
    dx, dy = shift
    frame_a = big[16:80, 16:80]
    frame_b = big[16 - dy:80 - dy, 16 - dx:80 - dx]  # content moves by (dx, dy)
    flow = estimate_flow(frame_a, frame_b, method)
    assert flow.shape == (2, 64, 64) and flow.dtype == np.float32
    inner = flow[:, 8:-8, 8:-8]
    assert np.median(inner[0]) == pytest.approx(dx, abs=0.2)
    assert np.median(inner[1]) == pytest.approx(dy, abs=0.2)


def test_unknown_method_is_a_user_error():
    with pytest.raises(UserError, match="unknown flow method 'raft'"):
        get_flow_estimator("raft")


def test_chained_clip_flow_follows_a_part_further_than_its_size():
    # A 16 px textured square moves (1, -0.5) px per frame for 10 frames over a textured background.
    rng = np.random.default_rng(3)
    background = cv2.GaussianBlur((rng.random((64, 64, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    square = cv2.GaussianBlur((rng.random((16, 16, 3)) * 255).astype(np.uint8), (0, 0), 1.0)
    frames = []
    for t in range(11):
        frame = background.copy()
        frame[24 - t // 2:40 - t // 2, 20 + t:36 + t] = square
        frames.append(frame)
    estimator = get_flow_estimator("dis-fine")
    steps = np.stack([estimator(a, b) for a, b in zip(frames, frames[1:])])
    chained = chain_flows(steps)
    assert chained.shape == (2, 64, 64)
    np.testing.assert_allclose(chained[:, 26:34, 22:30].mean(axis=(1, 2)), [10.0, -5.0], atol=0.5)
    assert np.abs(chained[:, :, 50:]).mean() < 0.2          # the background stays put
    direct = estimator(frames[0], frames[10])[:, 26:34, 22:30].mean(axis=(1, 2))
    assert np.hypot(*(direct - [10.0, -5.0])) > 2.0          # why prepare chains: one long flow misses it


def test_chain_of_still_steps_is_zero_and_of_one_step_is_that_step():
    step = np.random.default_rng(0).normal(size=(1, 2, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(chain_flows(step), step[0], atol=1e-5)
    np.testing.assert_array_equal(chain_flows(np.zeros((3, 2, 8, 8), np.float32)), 0)



@pytest.mark.slow
def test_fine_farneback_tracks_true_pokesim_clips_closer_than_fine_dis(tmp_path):
    # The metrics' tracker: on real PokeSim clips the poked pixel should end nearer its true place.
    from poke2video.data.store import Store
    from poke2video.metrics import TRACKER, track_point
    from poke2video.sim.generate import simulate_dataset

    store = Store.open(simulate_dataset(tmp_path / "sim", clips=40, resolution=64, seed=1, chunk_clips=20))
    errors = {"farneback-fine": [], "dis-fine": []}
    for video in range(len(store.videos)):
        starts, pokes = store.starts(video), store.array(video, "gt_poke")
        for row, poke in enumerate(pokes):
            if poke[9]:  # background poke: nothing to follow
                continue
            clip = np.asarray(store.frames(video)[starts[row]:starts[row] + store.clip_length + 1])
            for name in errors:
                end = track_point(clip, (float(poke[0]), float(poke[1])), get_flow_estimator(name))[-1]
                errors[name].append(np.hypot(end[0] - poke[2], end[1] - poke[3]))
    assert TRACKER == "farneback-fine" and len(errors[TRACKER]) >= 25
    assert np.mean(errors["farneback-fine"]) < 0.9 * np.mean(errors["dis-fine"])


def test_downscaled_flow_is_averaged_and_in_the_small_frames_pixels():
    large = np.zeros((2, 8, 8), np.float32)
    large[0, :4, :4] = 8.0          # the top-left quarter moves 8 px right at 8 px
    large[1, 4:, 4:] = -4.0         # the bottom-right one 4 px up
    large[0, 0, 4:] = 4.0           # one row of a still 4 x 4 block moves: a quarter of that block's average
    small = downscale_flow(large, 2)
    assert small.shape == (2, 2, 2) and small.dtype == np.float32
    assert small[0].tolist() == [[2.0, 0.25], [0.0, 0.0]]
    assert small[1].tolist() == [[0.0, 0.0], [0.0, -1.0]]
    assert np.array_equal(downscale_flow(small, 2), small)        # already at the resolution: unchanged


@pytest.mark.parametrize("method", sorted(ESTIMATORS))
def test_each_tracker_follows_frames_as_long_as_it_declares(method):
    """`max_side` is what OpenCV really takes: a frame that long works, and for the trackers that enlarge
    (farneback-fine) or refine (dis-fine) the frame one pixel longer fails in OpenCV."""
    estimator = get_flow_estimator(method)
    rng = np.random.default_rng(0)
    for shape in ((16, estimator.max_side, 3), (estimator.max_side, 16, 3)):   # DIS needs 12 px or so across
        frame = rng.integers(0, 255, shape, dtype=np.uint8)
        assert estimator(frame, np.roll(frame, 1, axis=1)).shape == (2, *shape[:2])
    if method != "dis":                          # DIS itself takes somewhat longer frames than remap's limit
        frame = rng.integers(0, 255, (16, estimator.max_side + 1, 3), dtype=np.uint8)
        with pytest.raises(cv2.error):
            estimator(frame, np.roll(frame, 1, axis=1))
    check_trackable("f.png", estimator.max_side, 1, estimator)
    with pytest.raises(UserError, match=f"f.png: 1x{estimator.max_side + 1} pixels; .* at most {estimator.max_side}"):
        check_trackable("f.png", 1, estimator.max_side + 1, estimator)


def test_changed_region_is_where_the_colours_change_with_closed_outlines_filled():
    before = np.full((40, 40, 3), 90, np.uint8)
    before[10:30, 10:30] = 200                       # a flat square with a dark one-pixel outline
    before[10, 10:30] = before[29, 10:30] = before[10:30, 10] = before[10:30, 29] = 20
    after = np.full_like(before, 90)
    after[11:31, 11:31] = 200                        # the same square one pixel down and right
    after[11, 11:31] = after[30, 11:31] = after[11:31, 11] = after[11:31, 30] = 20
    changed = changed_region(before, after)
    assert changed[12:28, 12:28].all()               # the flat inside changes nowhere, yet is enclosed: filled
    assert not changed[:8].any() and not changed[:, :8].any() and not changed[33:].any()
    noisy = np.clip(before.astype(int) + np.random.default_rng(0).integers(-6, 7, before.shape), 0, 255)
    assert not changed_region(before, noisy.astype(np.uint8)).any()     # compression noise below the level


def test_flow_is_kept_only_where_the_frames_changed():
    before = np.full((32, 32, 3), 120, np.uint8)
    before[4:8, 4:8] = 250                           # a small part that jumps right, past its own width
    after = np.full_like(before, 120)
    after[4:8, 10:14] = 250
    blob = np.zeros((2, 32, 32), np.float32)
    blob[0, :16, :20] = 6.0                          # an estimate that spread the part's motion around it
    kept = still_where_unchanged(blob, before, after)
    assert kept.dtype == np.float32 and kept.shape == blob.shape
    assert (kept[0, 4:8, 4:8] == 6.0).all()          # the part where it was
    assert (kept[:, 12:, :] == 0).all() and (kept[:, :, 16:] == 0).all() and (kept[0, 0, 0] == 0)
    assert np.array_equal(still_where_unchanged(blob, before, before), np.zeros_like(blob))
