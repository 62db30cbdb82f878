"""A video store's motion truth tracked on larger frames (`prepare --tracked-truth`): the grid tracker with known
flows, what `prepare` stores for a moving square, and `evaluate` scoring against it."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import textured_background, write_video
from poke2video import metrics
from poke2video.data import prepare as prepare_module
from poke2video.data.flow import FineFarneback, get_flow_estimator
from poke2video.data.prepare import prepare_dataset
from poke2video.data.store import Store
from poke2video.evaluate.evaluator import EvalOptions, baseline_methods, evaluate
from poke2video.errors import UserError
from poke2video.evaluate.report import summarize, write_report
from poke2video.evaluate.truth import TRACKED_LARGER, TRACKED_REAL_CLIP

OFFLINE = dict(lpips="off", fvd=False, structure_clips=0)


def test_the_grid_tracker_averages_a_large_frames_motion_down_in_small_pixels():
    steps = np.zeros((3, 2, 32, 32), np.float32)
    steps[:, 0], steps[:, 1] = 2.0, -1.0                      # every large pixel moves (2, -1) per step
    steps[:, :, :, 24:] = 0.0                                  # except a still strip on the right
    motion = metrics.tracked_grid_motion(steps, 8)             # 4x smaller
    assert motion.shape == (3, 2, 8, 8) and motion.dtype == np.float32
    for t in range(3):                                         # (0.5, -0.25) small px per step, away from the edges
        assert np.allclose(motion[t, 0, 2:6, 1:4], 0.5 * (t + 1))
        assert np.allclose(motion[t, 1, 2:6, 1:4], -0.25 * (t + 1))
    assert not motion[:, :, :, 7].any()                        # the strip's block stays


def square_video(tmp_path, frames=8, size=128, side=32, speed=8):
    """A textured square moving `speed` px right per frame over a still textured background, as an mp4 of
    `size` px: at a quarter of the size, `speed / 4` px per frame."""
    background, patch = textured_background(size, size, 3), textured_background(side, side, 4) // 2 + 128
    video = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        x = 16 + speed * t
        video[t, 48:48 + side, x:x + side] = patch
    return write_video(tmp_path / "in" / "square.mp4", video)


def tracked_store(tmp_path, **options):
    square_video(tmp_path)
    return Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "d", resolution=32, clip_length=4,
                                      flow_method="dis", flow_scale=4, **options))


def test_prepare_stores_each_clips_tracked_motion_at_the_stores_size(tmp_path):
    store = tracked_store(tmp_path, tracked_truth=True)
    assert store.manifest["tracked_truth"] == {"tracker": metrics.TRACKER, "scale": 4, "levels": 5}
    motion = np.asarray(store.array(0, "tracked_motion"), np.float32)
    assert motion.shape == (len(store.starts(0)), 4, 2, 32, 32)
    for row, start in enumerate(store.starts(0)):
        x = (16 + 8 * start) // 4                               # the square's left edge at 32 px in the clip's frame 0
        inside = motion[row, :, :, 14:18, x + 2:x + 6]          # its middle: 2 px per frame to the right
        assert np.allclose(inside[:, 0], np.arange(1, 5)[:, None, None] * 2.0, atol=0.4), row
        assert np.abs(inside[:, 1]).max() < 0.4
        assert np.abs(motion[row, :, :, 2:8]).max() < 0.3       # background well above the square stays


def test_the_truth_follows_a_step_as_long_as_the_tracker_does_at_the_stores_size(tmp_path):
    """A pan of 4 px a frame at 64 px is 16 px a frame on the 256 px frames, beyond the tracker's own pyramid
    there; the truth's tracker, its pyramid deepened, follows it."""
    big = textured_background(768, 768, seed=5)
    pan = [big[100:356, 100 + 16 * t:356 + 16 * t] for t in range(6)]
    write_video(tmp_path / "in" / "pan.mp4", np.stack(pan))
    store = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "d", resolution=64, clip_length=4,
                                       flow_scale=4, tracked_truth=True))
    assert store.manifest["tracked_truth"]["levels"] == 5
    motion = np.asarray(store.array(0, "tracked_motion"), np.float32)[:, :, :, 8:56, 8:56]
    for t in range(4):
        assert np.median(motion[:, t, 0]) == pytest.approx(-4.0 * (t + 1), abs=0.3)
        assert np.median(np.abs(motion[:, t, 1])) < 0.3
    shallow = FineFarneback(levels=FineFarneback.LEVELS)
    assert np.median(shallow(pan[0], pan[1])[0]) > -8.0   # the tracker's own pyramid falls short of -16 px there


def test_a_named_estimator_can_track_the_truth_instead(tmp_path):
    store = tracked_store(tmp_path, tracked_truth="dis-full")
    assert store.manifest["tracked_truth"] == {"tracker": "dis-full", "scale": 4}
    motion = np.asarray(store.array(0, "tracked_motion"), np.float32)
    x = 16 // 4
    inside = motion[0, :, :, 14:18, x + 2:x + 6]                 # the square's middle: 2 px per frame to the right
    assert np.allclose(inside[:, 0], np.arange(1, 5)[:, None, None] * 2.0, atol=0.5)
    with pytest.raises(UserError, match="--tracker dis-full"):   # rows are tracked as the truth was
        evaluate(store, "train", baseline_methods("static"), EvalOptions(**OFFLINE))
    scored = evaluate(store, "train", baseline_methods("static"), EvalOptions(**OFFLINE, tracker="dis-full"))
    assert scored.truth == TRACKED_LARGER


def test_with_every_frame_the_truth_follows_the_frames_the_stride_skips(tmp_path, monkeypatch):
    """A square 6 px a frame at 128 px, kept every second frame: 3 px a kept step at 32 px, tracked through
    the frame in between (one tracker call per frame pair) and read at the kept frames."""
    square_video(tmp_path, frames=12, speed=6)
    calls = []

    class Counting:
        name = "dis-full"

        def __init__(self):
            self.inner = get_flow_estimator("dis-full")

        def __call__(self, a, b):
            calls.append(1)
            return self.inner(a, b)

    monkeypatch.setattr(prepare_module, "truth_tracker", lambda method, scale: Counting())
    store = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "d", resolution=32, clip_length=4, stride=2,
                                       flow_method="dis", flow_scale=4, tracked_truth="dis-full",
                                       flow_every_frame=True))
    assert store.manifest["tracked_truth"]["every_frame"] is True
    motion = np.asarray(store.array(0, "tracked_motion"), np.float32)
    assert motion.shape == (len(store.starts(0)), 4, 2, 32, 32)
    inside = motion[0, :, :, 14:18, 6:10]                          # the square's middle in the first clip
    assert np.allclose(inside[:, 0], np.arange(1, 5)[:, None, None] * 3.0, atol=0.5)
    assert np.abs(motion[0, :, :, 2:8]).max() < 0.3
    assert len(calls) == 10            # frames 0..10 in pairs; the 5 kept steps alone would be 5 calls


def test_without_the_option_no_truth_is_stored_and_the_header_is_unchanged(tmp_path):
    store = tracked_store(tmp_path)
    assert not store.has_array(0, "tracked_motion") and "tracked_truth" not in store.manifest


def test_evaluate_scores_motion_against_the_stored_truth(tmp_path):
    store = tracked_store(tmp_path, tracked_truth=True)
    result = evaluate(store, "train", baseline_methods("static"), EvalOptions(**OFFLINE))
    assert result.truth == TRACKED_LARGER
    truth = np.asarray(store.array(0, "tracked_motion"), np.float32)
    objects = [clip for clip in result.clips if not clip["is_background"]]
    assert objects
    scores = result.per_clip["static"]["motion_error"]
    for clip, score in zip(result.clips, scores):
        if clip["is_background"]:
            assert score is None
        else:                                                   # static stays put: its error is the truth's length
            assert score == pytest.approx(np.hypot(*truth[clip["row"]].transpose(1, 0, 2, 3)).mean(), abs=1e-3)
    document = json.loads((write_report(result, tmp_path / "r") / "metrics.json").read_text())
    assert document["motion_truth"] == TRACKED_LARGER
    assert "larger frames" in (tmp_path / "r" / "report.md").read_text()
    assert summarize(result)["static"]["motion_error"]["n"] == len(objects)


def test_another_tracker_is_refused_on_a_store_with_a_stored_truth(tmp_path):
    store = tracked_store(tmp_path, tracked_truth=True)
    with pytest.raises(UserError, match="--tracker farneback-fine"):
        evaluate(store, "train", baseline_methods("static"), EvalOptions(**OFFLINE, tracker="dis"))


def test_a_video_missing_its_stored_truth_is_one_clear_error(tmp_path):
    manifest = tracked_store(tmp_path, tracked_truth=True).root / "manifest.json"
    document = json.loads(manifest.read_text())
    del document["videos"][0]["arrays"]["tracked_motion"]     # a store whose header and video disagree
    manifest.write_text(json.dumps(document))
    store = Store.open(manifest.parent)
    with pytest.raises(UserError, match="no tracked_motion.npy, though the store was prepared with --tracked-truth"):
        evaluate(store, "train", baseline_methods("static"), EvalOptions(**OFFLINE))


def test_a_store_without_it_is_still_scored_by_tracking_its_own_frames(tmp_path):
    store = tracked_store(tmp_path)
    assert evaluate(store, "train", baseline_methods("static"), EvalOptions(**OFFLINE)).truth == TRACKED_REAL_CLIP


def test_the_prepare_command_takes_the_option(tmp_path):
    square_video(tmp_path)
    cli = Path(sys.executable).with_name("poke2video")
    done = subprocess.run([str(cli), "prepare", "in", "--out", "d", "--res", "32", "--clip-length", "4",
                           "--flow-scale", "4", "--tracked-truth"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    store = Store.open(tmp_path / "d")
    assert store.array(0, "tracked_motion").shape == (len(store.starts(0)), 4, 2, 32, 32)


def test_the_prepare_command_names_the_tracker_or_refuses_an_unknown_one(tmp_path):
    square_video(tmp_path)
    cli = Path(sys.executable).with_name("poke2video")
    base = [str(cli), "prepare", "in", "--out", "d", "--res", "32", "--clip-length", "4", "--flow-scale", "4"]
    bad = subprocess.run(base + ["--tracked-truth", "raft"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0 and "invalid choice: 'raft'" in bad.stderr and not (tmp_path / "d").exists()
    done = subprocess.run(base + ["--tracked-truth", "dis-full"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Store.open(tmp_path / "d").manifest["tracked_truth"]["tracker"] == "dis-full"


def test_the_real_clip_is_a_row_against_a_truth_tracked_on_larger_frames(tmp_path):
    from poke2video.evaluate.evaluator import evaluate_to_dir

    tracked, plain = tracked_store(tmp_path / "a", tracked_truth=True), tracked_store(tmp_path / "b")
    model, options = tiny_model(tmp_path / "m.safetensors"), EvalOptions(**OFFLINE, example_clips=0)
    summaries = {}
    for name, store in (("tracked", tracked), ("plain", plain)):
        out = evaluate_to_dir(model, str(store.root), str(tmp_path / name), split="train", baselines="static",
                              options=options)
        summaries[name] = json.loads((out / "metrics.json").read_text())["metrics"]
    assert "real clip" in summaries["tracked"] and "real clip" not in summaries["plain"]
    real, static = summaries["tracked"]["real clip"], summaries["tracked"]["static"]
    assert real["motion_error"]["mean"] < 0.5 * static["motion_error"]["mean"]   # a floor, far below no motion


def tiny_model(path):
    """An untrained flow model's weights for the square's store (32 px, T = 4)."""
    import torch

    from poke2video.flow_config import FlowModelConfig
    from poke2video.model import build_model, save_model

    torch.manual_seed(0)
    save_model(path, build_model(FlowModelConfig(resolution=32, unet_channels=[4, 4], time_basis=2, frames=4)),
               {"step": 0})
    return str(path)
