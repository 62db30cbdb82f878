"""Motion as a user sees it, with known answers: tracked displacement fields, the moving region (moving IoU),
motion error split by pixels that move and stay, the baselines' flows, the oracle rows and flow error, in the
metrics, the evaluator, the report and the `evaluate` command."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import moving_square_frames
from eval_support import SIM_FRAMES, SIM_RES, checkpoint, sim  # noqa: F401 (fixtures)
from poke2video import metrics
from poke2video.data.store import Store
from poke2video.evaluate import baselines
from poke2video.errors import UserError
from poke2video.evaluate.cases import EvalCase, load_cases
from poke2video.evaluate.evaluator import EvalOptions, Method, baseline_methods, evaluate, real_clip_method
from poke2video.evaluate.methods import model_method, oracle_method, poked_part, render_flow, render_true_fill
from poke2video.evaluate.report import summarize, write_report
from poke2video.evaluate.truth import (TRACKED_REAL_CLIP, MotionTruth, motion_scores, scores_of_motion,
                                       tracked_video)
from poke2video.flow_config import FlowModelConfig
from train_support import make_tiny_store

OFFLINE = dict(lpips="off", fvd=False, structure_clips=0)
SHIFT_PER_FRAME = (0.4, 0.3)  # px: the whole frame's motion per frame in `shift_everything` (0.5 px long)


def square_scene(steps: int = 10):
    """A 16 px textured square moving 1 px right per frame over a still background: the video [T+1, 64, 64, 3],
    its true displacement [T, 2, 64, 64] and the mask of the square (x 16..31, y 24..39) plus still background
    above it that nothing covers."""
    video = moving_square_frames(count=steps + 1, size=64, speed=(1, 0), seed=2)
    square = np.zeros((64, 64), bool)
    square[24:40, 16:32] = True
    truth = np.zeros((steps, 2, 64, 64))
    truth[:, 0, square] = np.arange(1, steps + 1)[:, None]
    mask = square.copy()
    mask[8:20, 16:44] = True
    return video, truth, mask, square


def test_a_real_moving_part_is_found_by_the_tracker():
    video, truth, mask, square = square_scene()
    motion = metrics.tracked_motion(video, mask)
    assert motion.shape == truth.shape and not motion[:, :, ~mask].any()
    assert metrics.moving_iou(motion[-1], truth[-1], mask) > 0.9
    split = metrics.motion_split(motion, truth, mask)
    assert split["moving"] < 1.0 and split["still"] < 0.3                       # no motion: 5.5 px moving
    assert split["all"] == pytest.approx(metrics.motion_error(video, truth, mask))


def test_no_motion_scores_zero_iou_and_the_true_motion_as_moving_error():
    video, truth, mask, square = square_scene()
    still = np.zeros_like(truth)
    assert metrics.moving_iou(still[-1], truth[-1], mask) == 0.0
    split = metrics.motion_split(still, truth, mask)
    assert split["moving"] == pytest.approx(5.5) and split["still"] == 0.0   # mean of 1..10 px on the square
    np.testing.assert_allclose(metrics.error_per_frame(still, truth, square), np.arange(1, 11))


def test_moving_everything_shows_in_the_still_error_and_the_iou():
    video, truth, mask, square = square_scene()
    everything = np.broadcast_to(truth[:, :, 24:25, 16:17], truth.shape)      # the square's motion everywhere
    split = metrics.motion_split(everything, truth, mask)
    assert split["moving"] == 0.0 and split["still"] == pytest.approx(5.5)
    assert metrics.moving_iou(everything[-1], truth[-1], mask) == pytest.approx(square.sum() / mask.sum())


def test_a_video_tracked_once_scores_any_subset_of_its_pixels_as_tracking_that_subset_does():
    video, truth, mask, square = square_scene()
    everywhere = MotionTruth(truth, np.ones(mask.shape, bool), TRACKED_REAL_CLIP)
    poked_end, motion = tracked_video(everywhere, video, (20.0, 30.0))
    subset = MotionTruth(truth, mask, TRACKED_REAL_CLIP)
    once = scores_of_motion(subset, motion, poked_end, (30.0, 30.0))
    again = motion_scores(subset, video, (20.0, 30.0), (30.0, 30.0))
    assert once == again                     # tracking is per pixel: the same numbers, to the bit
    assert once["motion_error_moving"] < 1.0 and once["endpoint_error"] < 1.0   # the square is followed
    assert once["motion_error"] != scores_of_motion(everywhere, motion, poked_end, (30.0, 30.0))["motion_error"]


def test_motion_field_places_displacements_on_the_mask():
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = mask[2, 0] = True
    field = metrics.motion_field(np.array([[[1.0, 2.0], [3.0, 4.0]]]), mask)
    assert field.shape == (1, 2, 3, 4) and field[0, :, 1, 2].tolist() == [1, 2] and field[0, :, 2, 0].tolist() == [3, 4]
    assert np.abs(field).sum() == 10
    with pytest.raises(ValueError, match="do not fit"):
        metrics.motion_field(np.zeros((1, 3, 2)), mask)


def texture(size: int) -> np.ndarray:
    return moving_square_frames(count=1, size=size, seed=5)[0]


def test_static_flow_is_zero_and_the_warp_follows_its_own_flow():
    frame = texture(48)
    source, target = (20, 24), (25, 22)
    assert not baselines.baseline_flow(baselines.static_baseline)(frame, source, target, 5).any()
    warp = baselines.WarpBaseline()
    flow = baselines.baseline_flow(warp)(frame, source, target, 5)
    assert flow.shape == (5, 2, 48, 48) and flow.dtype == np.float32
    np.testing.assert_allclose(flow[:, :, 24, 20], np.outer(np.arange(1, 6) / 5, [5, -2]), atol=1e-5)
    assert np.abs(flow[-1, :, 0, 47]).max() < 0.1                                   # far from the poke: still
    mask = np.zeros((48, 48), bool)
    mask[8:40, 8:40] = True
    video = np.concatenate([frame[None], warp(frame, source, target, 5)])
    own, none = metrics.motion_error(video, flow, mask), metrics.motion_error(video, np.zeros_like(flow), mask)
    assert own < 0.2 * none                                                         # its frames move as it says


def test_the_oracles_render_the_true_flow_one_fills_from_the_truth():
    video, truth, mask, square = square_scene()
    frame, true_frames = video[0], video[1:]
    assert np.array_equal(render_flow(frame, np.zeros_like(truth)), np.repeat(frame[None], 10, axis=0))
    filled = render_true_fill(frame, truth, true_frames).astype(int)
    assert np.abs(filled[1:] - true_frames[1:]).max() <= 1                       # a rigid whole-pixel motion
    assert np.abs(filled[0] - true_frames[0]).mean() < 1
    plate = render_flow(frame, truth).astype(int)
    uncovered = (slice(24, 40), slice(16, 26))                                    # the square has left it by t = 10
    assert np.array_equal(filled[-1][uncovered], true_frames[-1][uncovered])
    assert np.abs(plate[-1][uncovered] - true_frames[-1][uncovered]).mean() > 5   # the plate only guesses it


def shift_everything(frame, source, target, frames):
    """Every pixel moves by SHIFT_PER_FRAME each frame, whatever the poke."""
    shifts = [np.float32([[1, 0, SHIFT_PER_FRAME[0] * t], [0, 1, SHIFT_PER_FRAME[1] * t]]) for t in range(1, frames + 1)]
    return np.stack([cv2.warpAffine(frame, m, frame.shape[1::-1], flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE) for m in shifts])


def moves(case) -> bool:
    return bool((np.hypot(*case.gt_flow[-1])[case.object_mask] > metrics.MOVES_PX).any())


@pytest.mark.parametrize("split", ["test", "test_unseen"])
def test_evaluator_known_answers_on_pokesim(sim, split):
    cases = list(load_cases(sim, split))
    methods = [*baseline_methods("static,oracle"), Method("shift", shift_everything), real_clip_method()]
    result = evaluate(sim, split, methods, EvalOptions(**OFFLINE))
    scores = result.per_clip
    moving = [k for k, case in enumerate(cases) if not case.is_background and moves(case)]
    assert moving
    for k in moving:
        assert scores["static"]["moving_iou"][k] == 0.0                              # nothing moves
        assert scores["oracle"]["flow_error"][k] == 0.0                              # the true flow itself
        assert scores["oracle"]["flow_error_moving"][k] == 0.0
        assert scores["static"]["flow_error"][k] == pytest.approx(scores["static"]["motion_error"][k])
        assert scores["shift"]["motion_error_still"][k] == pytest.approx(np.hypot(*SHIFT_PER_FRAME) * 5.5, abs=0.4)
        assert scores["shift"]["motion_error_still"][k] > 10 * scores["static"]["motion_error_still"][k]
        assert scores["shift"]["flow_error"][k] is None                              # it gives no flow
        per_frame = result.per_frame["static"]["motion_error"][k]
        assert len(per_frame) == SIM_FRAMES and np.mean(per_frame) == pytest.approx(scores["static"]["motion_error"][k])
    assert all(scores["real clip"][m][0] is None for m in ("moving_iou", "flow_error"))   # clip 0: background
    summary = summarize(result)
    assert summary["real clip"]["flow_error"]["reason"] == "gives frames, no forward flow"
    assert summary["oracle"]["structure_auc"]["status"] == "not applicable"
    assert summary["oracle"]["motion_error"]["mean"] < summary["static"]["motion_error"]["mean"]


def tiny_flow_model(path, resolution: int = SIM_RES):
    """An untrained FlowUNet's weights file (a model that gives forward flows)."""
    import torch

    from poke2video.model import build_model, save_model

    cfg = FlowModelConfig(resolution=resolution, unet_channels=[4, 4], time_basis=2, frames=SIM_FRAMES)
    torch.manual_seed(0)
    save_model(path, build_model(cfg), {"step": 0})
    return path


def test_a_flow_models_flow_error_is_its_forward_flow_against_the_truth(sim, tmp_path):
    from poke2video.poker import Poker

    model = model_method(str(tiny_flow_model(tmp_path / "flow.safetensors")))
    assert model.gives_flow
    result = evaluate(sim, "test", [model], EvalOptions(**OFFLINE))
    case = list(load_cases(sim, "test"))[1]
    flow = Poker.load(tmp_path / "flow.safetensors").forward_flow(case.source_frame, case.poke_source, case.poke_target)
    expected = metrics.motion_split(flow, case.gt_flow, case.object_mask)
    assert result.per_clip["model"]["flow_error"][1] == pytest.approx(expected["all"])
    assert result.per_clip["model"]["flow_error_still"][1] == pytest.approx(expected["still"])
    assert summarize(result)["model"]["flow_error"]["status"] == "ok"


def test_the_model_row_runs_the_network_once_for_its_frames_and_its_flow(sim, tmp_path, monkeypatch):
    from poke2video.poker import Poker
    from poke2video.poking.flow import FlowPoking

    path = tiny_flow_model(tmp_path / "flow.safetensors")
    case = list(load_cases(sim, "test"))[1]
    poker = Poker.load(path)
    video, flow = poker.animate_with_flow(case.source_frame, case.poke_source, case.poke_target)
    assert np.array_equal(video, poker.animate(case.source_frame, case.poke_source, case.poke_target))
    assert np.array_equal(flow, poker.forward_flow(case.source_frame, case.poke_source, case.poke_target))
    runs = []
    original = FlowPoking.flows
    monkeypatch.setattr(FlowPoking, "flows", lambda self, *args: runs.append(1) or original(self, *args))
    model = model_method(str(path))
    video, flow = model.video_and_flow(case, with_flow=True)
    assert len(runs) == 1 and flow.shape == (case.frames, 2, *case.source_frame.shape[:2])
    assert model.video_and_flow(case, with_flow=False)[1] is None and len(runs) == 2


def test_report_names_the_rows_and_the_new_metrics_and_plots_them_per_frame(sim, checkpoint, tmp_path):
    methods = [model_method(str(checkpoint)), *baseline_methods("static,oracle-true-fill"),
               real_clip_method()]
    out = write_report(evaluate(sim, "test", methods, EvalOptions(**OFFLINE)), tmp_path / "r")
    document = json.loads((out / "metrics.json").read_text())
    new = ("moving_iou", "motion_error_moving", "motion_error_still", "flow_error", "flow_error_moving",
           "flow_error_still")
    assert all(document["definitions"][m] for m in new)
    assert set(document["rows"]) == {"model", "static", "oracle-true-fill", "real clip"}
    assert document["motion_truth"] == "ground-truth flow, object pixels"
    assert "nothing after the network reads the poke's target" in document["rows"]["model"]
    per_frame = document["per_frame"]["motion_error"]
    assert set(per_frame) == set(document["methods"]) and all(len(r["mean"]) == SIM_FRAMES for r in per_frame.values())
    report = (out / "report.md").read_text()
    assert "## Rows" in report and "- **oracle-true-fill**: the true motion drawn as by `oracle`" in report
    assert all(f"**{label}**" in report for label in ("moving IoU", "motion error, still", "flow error, moving"))
    assert (out / "plots" / "motion_error_per_frame.png").is_file() and (out / "plots" / "moving_iou.png").is_file()


def run(*args):
    return subprocess.run([sys.executable, "-m", "poke2video", *map(str, args)], capture_output=True, text=True)


def test_the_poked_part_is_the_connected_region_that_moves_with_the_poked_pixel():
    motion = np.zeros((3, 2, 32, 32))
    motion[:, 0, 4:12, 4:12] = np.arange(1, 4)[:, None, None] * 2.0       # the poked block: 6 px right at T
    motion[:, 0, 4:12, 12:20] = np.arange(1, 4)[:, None, None] * -2.0     # touching it, moving the other way
    motion[:, 0, 20:28, 4:12] = np.arange(1, 4)[:, None, None] * 2.0      # moving the same way, apart from it
    motion[-1, 1, 6, 6] = 2.5                                             # inside the block, within tolerance
    part = poked_part(motion, (5.2, 5.4))
    expected = np.zeros((32, 32), bool)
    expected[4:12, 4:12] = True
    assert np.array_equal(part, expected)
    assert not poked_part(motion, (25.0, 25.0)).any()                     # a still pixel poked: no part
    edge = np.zeros((1, 2, 8, 8))
    edge[:, 0, :, 6:] = 3.0                                               # a strip on the right edge moving right
    assert np.array_equal(poked_part(edge, (12.0, 3.0)), edge[0, 0] > 0)   # a poke off the image: clipped onto it


def test_the_poked_part_oracle_moves_only_that_part():
    video, truth, mask, square = square_scene()
    other = np.zeros_like(truth)
    other[:, 1, 48:60, 40:52] = np.arange(1, 11)[:, None, None]           # a second block moving down
    both = truth + other
    case = EvalCase(clip=(0, 0), expected_video=video, poke_source=(20.0, 30.0), poke_target=(30.0, 30.0),
                    true_target=(30.0, 30.0), is_background=False)
    whole, part = (oracle_method(name).video_for(case, both) for name in ("oracle", "oracle-poked-part"))
    assert np.array_equal(part, render_flow(video[0], truth))              # the square moves, the block stays
    assert not np.array_equal(whole, part)
    with pytest.raises(ValueError, match="true motion"):
        oracle_method("oracle").video_for(case)


def test_the_oracles_on_a_store_without_ground_truth_draw_the_tracked_real_clip(tmp_path):
    store = Store.open(make_tiny_store(tmp_path / "flows"))
    result = evaluate(store, "test", baseline_methods("static,oracle,oracle-poked-part"), EvalOptions(**OFFLINE))
    summary = summarize(result)
    for name in ("oracle", "oracle-poked-part"):
        assert summary[name]["motion_error"]["n"] > 0
        assert summary[name]["motion_error"]["mean"] < 0.5 * summary["static"]["motion_error"]["mean"], name
        assert summary[name]["flow_error"]["status"] != "ok"                 # no ground truth to score a flow on
    with pytest.raises(UserError, match="unknown oracle"):
        oracle_method("oracle-everything")


@pytest.mark.slow
def test_evaluate_with_the_oracle_on_a_fresh_pokesim_store(tmp_path):
    data, out = tmp_path / "sim", tmp_path / "report"
    assert run("simulate", "--out", data, "--clips", 40, "--seed", 7).returncode == 0
    checkpoint = tiny_flow_model(tmp_path / "flow.safetensors", resolution=Store.open(data).resolution)
    result = run("evaluate", "--checkpoint", checkpoint, "--data", data, "--baselines", "static,warp,oracle",
                 "--out", out, "--lpips", "off", "--no-fvd", "--structure-clips", 0, "--examples", 1)
    assert result.returncode == 0, result.stderr
    document = json.loads((out / "metrics.json").read_text())
    assert document["methods"] == ["model", "static", "warp", "oracle", "real clip"]
    summary = document["metrics"]
    for method in ("model", "static", "warp", "oracle"):
        for metric in ("moving_iou", "motion_error_moving", "motion_error_still", "flow_error"):
            assert summary[method][metric]["status"] == "ok" and summary[method][metric]["n"] > 0, (method, metric)
    assert summary["oracle"]["flow_error"]["mean"] == 0.0 and summary["static"]["moving_iou"]["mean"] == 0.0
    assert summary["oracle"]["motion_error"]["mean"] < summary["static"]["motion_error"]["mean"]
    assert summary["real clip"]["moving_iou"]["mean"] > 0.6
