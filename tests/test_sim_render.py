"""PokeSim frames against their ground truth: flow, tracks, segments, background pokes, framing."""
import cv2
import numpy as np
import pytest

from poke2video.sim.bodies import species_for
from poke2video.sim.scene import POKE_COLUMNS, ClipSpec, SceneConfig, render_chunk

T1 = 11   # frames per clip
COL = {name: i for i, name in enumerate(POKE_COLUMNS)}


@pytest.fixture(scope="module")
def chunk():
    pool = tuple(species_for("mixed", held_out=False))
    specs = [ClipSpec((7, 0, j), pool, background=j in (0, 5)) for j in range(10)]
    return render_chunk(specs, SceneConfig(resolution=64))


def warp_back(frame_t, flow):
    """Sample frame t at p + flow(p): frame 0 as predicted by the flow. flow [2, H, W]."""
    h, w = flow.shape[1:]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(frame_t, xs + flow[0], ys + flow[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def object_interior(segments):
    """Pixels whose 3x3 neighbourhood lies on one segment (edges are anti-aliased mixes)."""
    same = segments > 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            same &= np.roll(segments, (dy, dx), axis=(0, 1)) == segments
    return same


def test_ground_truth_flow_warps_frame_0_onto_every_frame_over_the_object(chunk):
    frames = chunk["frames"].reshape(10, T1, 64, 64, 3)
    warped_scores, still_scores = [], []
    for c in range(10):
        if chunk["gt_poke"][c, COL["is_background"]]:
            continue
        seg0 = chunk["gt_segments"][c, 0]
        for t in (3, 6, 10):
            flow = chunk["gt_flow"][c, t].astype(np.float32)
            ys, xs = np.nonzero(object_interior(seg0))
            tx = np.clip(np.round(xs + flow[0, ys, xs]).astype(int), 0, 63)
            ty = np.clip(np.round(ys + flow[1, ys, xs]).astype(int), 0, 63)
            visible = chunk["gt_segments"][c, t, ty, tx] == seg0[ys, xs]   # not hidden at frame t
            ys, xs = ys[visible], xs[visible]
            if len(ys) < 10:
                continue
            predicted = warp_back(frames[c, t], flow)
            warped_scores.append(psnr(predicted[ys, xs], frames[c, 0][ys, xs]))
            still_scores.append(psnr(frames[c, t][ys, xs], frames[c, 0][ys, xs]))
    assert np.median(warped_scores) > 30
    assert min(warped_scores) > 22
    assert np.median(warped_scores) > np.median(still_scores) + 5


def test_track_starts_at_the_poke_and_ends_at_the_stored_target(chunk):
    poke, track, flow = chunk["gt_poke"], chunk["gt_track"], chunk["gt_flow"]
    source = poke[:, [COL["x"], COL["y"]]]
    target = poke[:, [COL["target_x"], COL["target_y"]]]
    np.testing.assert_allclose(track[:, 0], source, atol=1e-3)
    np.testing.assert_array_equal(track[:, -1], target)
    xs, ys = source[:, 0].astype(int), source[:, 1].astype(int)
    flow_at_poke = flow[np.arange(10), -1, :, ys, xs].astype(np.float32)
    np.testing.assert_allclose(source + flow_at_poke, target, atol=0.02)
    objects = poke[:, COL["is_background"]] == 0
    poked = chunk["gt_segments"][np.arange(10), 0, ys, xs]
    np.testing.assert_array_equal(poked[objects], poke[objects, COL["segment"]] + 1)
    drag = poke[:, [COL["drag_x"], COL["drag_y"]]]
    np.testing.assert_allclose(drag[objects], (target - source)[objects], atol=1e-4)
    assert (np.linalg.norm(drag[objects], axis=1) > 0.3).all()


def test_background_pokes_hit_the_background_and_nothing_moves(chunk):
    frames = chunk["frames"].reshape(10, T1, 64, 64, 3)
    for c in (0, 5):
        poke = chunk["gt_poke"][c]
        x, y = int(poke[COL["x"]]), int(poke[COL["y"]])
        assert chunk["gt_segments"][c, 0, y, x] == 0
        assert np.linalg.norm(poke[[COL["drag_x"], COL["drag_y"]]]) > 1.0
        assert np.array_equal(frames[c], np.repeat(frames[c, :1], T1, axis=0))
        assert not chunk["gt_flow"][c].any()


def test_motion_is_zero_between_clips_and_positive_while_moving(chunk):
    motion = chunk["motion"].reshape(-1)
    assert motion.shape == (10 * T1 - 1,)
    between = np.arange(T1 - 1, 10 * T1 - 1, T1)
    assert (motion[between] == 0).all()
    moving = [c for c in range(10) if c not in (0, 5)]
    assert all(motion[c * T1:c * T1 + T1 - 1].max() > 0 for c in moving)
    np.testing.assert_array_equal(chunk["flow"], chunk["gt_flow"][:, -1])
    np.testing.assert_array_equal(chunk["starts"], np.arange(10) * T1)


def test_objects_stay_inside_the_frame_and_the_root_never_moves(chunk):
    segments = chunk["gt_segments"]
    border = np.concatenate([segments[:, :, 0], segments[:, :, -1], segments[:, :, :, 0], segments[:, :, :, -1]],
                            axis=-1)
    assert not border.any()
    for c in range(10):
        ys, xs = np.nonzero(segments[c, 0] == 1)
        assert not chunk["gt_flow"][c][:, :, ys, xs].any()
