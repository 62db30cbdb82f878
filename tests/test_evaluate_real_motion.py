"""Motion metrics on stores without ground truth (made by `prepare`): the real clip tracked as the truth, with
known answers on a store whose block moves by a known shift, in the evaluator, the report and the command."""
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from conftest import moving_square_frames, write_video
from eval_support import BLOCK_T, block_mask, make_block_store, make_tiny_checkpoint, sim  # noqa: F401 (fixture)
from poke2video.data.store import Store
from poke2video import metrics
from poke2video.evaluate import truth
from poke2video.evaluate.cases import load_cases
from poke2video.evaluate.evaluator import EvalOptions, Method, baseline_methods, evaluate, score_clip
from poke2video.evaluate.report import motion_truth_source, summarize, write_report
from poke2video.evaluate.sheets import example_sheet

OFFLINE = dict(lpips="off", fvd=False, structure_clips=0)
TRACKED = ("motion_error", "motion_error_moving", "motion_error_still", "moving_iou")
SHIFT = (1, 0)   # the block's motion per frame


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    return Store.open(make_block_store(tmp_path_factory.mktemp("blocks") / "store", speed=SHIFT))


def replay_of(store: Store):
    """A method that makes exactly the store's true frames after the source frame it is handed."""
    frames = np.asarray(store.frames(0))

    def replay(source_frame, source_xy, target_xy, count):
        first = next(k for k in range(len(frames)) if np.array_equal(frames[k], source_frame))
        return frames[first + 1:first + 1 + count]

    return Method("replay", replay)


def object_clips(result) -> list[int]:
    return [k for k, clip in enumerate(result.clips) if not clip["is_background"]]


def test_the_tracked_real_clip_finds_the_block_and_its_shift(blocks):
    case = next(c for c in load_cases(blocks, "test") if not c.is_background)
    found = truth.motion_truth(case)
    assert found.source == truth.TRACKED_REAL_CLIP and found.scored.all()        # every pixel is scored
    assert found.displacement.shape == (BLOCK_T, 2, *case.source_frame.shape[:2])
    start = case.clip[1]                                     # clip row = first frame = the block's offset in px
    block = block_mask((start * SHIFT[0], start * SHIFT[1]))
    inner = ndimage.binary_erosion(block, iterations=4)                          # away from the block's edges
    at_T = found.displacement[-1]
    np.testing.assert_allclose(np.median(at_T[:, inner], axis=1), np.multiply(SHIFT, BLOCK_T), atol=0.3)
    moves = np.hypot(*at_T) > metrics.MOVES_PX
    assert moves[inner].all() and not moves[:8].any()                             # far background stays
    assert (moves & block).sum() / (moves | block).sum() > 0.6                    # the tracker drags its edges


def test_background_pokes_and_pokesim_keep_their_truth(sim, blocks):
    case = next(iter(load_cases(blocks, "test")))
    still = np.repeat(case.source_frame[None], BLOCK_T + 1, axis=0)
    background = dataclasses.replace(case, is_background=True, expected_video=still)
    assert truth.motion_truth(background) is None                                  # no real clip to track
    scores = score_clip(background, still[1:], against_real=True, truth=None)
    assert scores["background_change"] == 0.0 and not set(scores) & {*TRACKED, "endpoint_error"}
    assert truth.motion_truth(next(iter(load_cases(sim, "test")))) is None         # PokeSim's background poke
    poked = list(load_cases(sim, "test"))[1]
    exact = truth.motion_truth(poked)
    assert exact.source == truth.EXACT and exact.displacement is poked.gt_flow
    assert np.array_equal(exact.scored, poked.object_mask)


def test_known_answers_for_a_method_that_replays_the_truth_and_for_static(blocks):
    result = evaluate(blocks, "test", [replay_of(blocks), *baseline_methods("static")], EvalOptions(**OFFLINE))
    scores, cases = result.per_clip, list(load_cases(blocks, "test"))
    assert not any(case.is_background for case in cases)
    for k, case in enumerate(cases):
        reference = truth.tracked_real_clip(case.expected_video)
        speed = np.hypot(*np.moveaxis(reference.displacement, 1, 0))                # [T, H, W]
        moving = speed[-1] > metrics.MOVES_PX
        assert scores["replay"]["motion_error"][k] == pytest.approx(0.0, abs=1e-9)
        assert scores["replay"]["moving_iou"][k] == 1.0
        assert result.per_frame["replay"]["motion_error"][k] == pytest.approx([0.0] * BLOCK_T, abs=1e-9)
        assert scores["static"]["moving_iou"][k] == 0.0                            # nothing moves
        assert scores["static"]["motion_error_moving"][k] == pytest.approx(speed[:, moving].mean())
        assert scores["static"]["motion_error_moving"][k] > 0.7 * np.hypot(*SHIFT) * (BLOCK_T + 1) / 2
        assert scores["static"]["motion_error_still"][k] == pytest.approx(speed[:, ~moving].mean())
        assert scores["static"]["motion_error_still"][k] < 0.1
        assert scores["static"]["endpoint_error"][k] == pytest.approx(case.poke_length, abs=1e-6)


def test_the_real_clip_is_tracked_once_per_clip_for_every_row(blocks, monkeypatch):
    calls = []
    original = truth.tracked_real_clip
    monkeypatch.setattr(truth, "tracked_real_clip", lambda *args: calls.append(1) or original(*args))
    result = evaluate(blocks, "test", baseline_methods("static,warp"), EvalOptions(**OFFLINE))
    assert len(calls) == len(object_clips(result))
    calls.clear()
    off = evaluate(blocks, "test", baseline_methods("static"), EvalOptions(motion=False, **OFFLINE))
    assert not calls and summarize(off)["static"]["moving_iou"]["reason"] == "turned off (--no-motion)"
    assert motion_truth_source(off) is None and motion_truth_source(result) == truth.TRACKED_REAL_CLIP


def test_report_gives_the_motion_keys_with_intervals_and_shows_the_real_clip(blocks, tmp_path):
    result = evaluate(blocks, "test", [*baseline_methods("static,warp"), replay_of(blocks)],
                      EvalOptions(example_clips=2, **OFFLINE))
    assert result.example_rows == ["static", "warp", "replay", "real clip"]
    first = next(iter(load_cases(blocks, "test")))
    assert np.array_equal(result.examples[0].videos["real clip"], first.expected_video[1:])
    out = write_report(result, tmp_path / "report")
    document = json.loads((out / "metrics.json").read_text())
    assert document["motion_truth"] == truth.TRACKED_REAL_CLIP and not document["pokesim"]
    for method in ("static", "warp", "replay"):
        for metric in TRACKED:
            entry = document["metrics"][method][metric]
            assert entry["status"] == "ok" and entry["n"] == len(object_clips(result)), (method, metric)
            assert entry["low"] <= entry["mean"] <= entry["high"]
        assert document["metrics"][method]["flow_error"]["reason"] == "needs PokeSim ground truth"
    assert document["metrics"]["warp"]["moving_iou"]["mean"] > document["metrics"]["static"]["moving_iou"]["mean"]
    report = (out / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| ")]
    assert "motion error, still" in table[0] and "moving IoU" in table[0]
    assert [line.split(" | ")[0] for line in table[1:]] == ["| static", "| warp", "| replay"]   # no real clip row
    assert "Motion truth: the real clip" in report
    with Image.open(out / "examples.png") as sheet:
        assert sheet.size == example_sheet(result.examples, result.example_rows).shape[1::-1]
        assert sheet.size != example_sheet(result.examples, result.methods).shape[1::-1]


def run(*args):
    return subprocess.run([sys.executable, "-m", "poke2video", *map(str, args)], capture_output=True, text=True)


@pytest.mark.slow
def test_evaluate_measures_motion_on_a_store_made_by_prepare(tmp_path):
    for k in range(2):
        write_video(tmp_path / "videos" / f"block{k}.mp4", moving_square_frames(count=16, size=32, seed=k))
    assert run("prepare", tmp_path / "videos", "--out", tmp_path / "store", "--res", 32).returncode == 0
    checkpoint = make_tiny_checkpoint(tmp_path / "model.safetensors")
    result = run("evaluate", "--checkpoint", checkpoint, "--data", tmp_path / "store", "--out", tmp_path / "report",
                 "--lpips", "off", "--no-fvd", "--examples", 1)
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert document["methods"] == ["model", "static", "warp"] and document["motion_truth"] == truth.TRACKED_REAL_CLIP
    for method in document["methods"]:
        for metric in TRACKED:
            assert document["metrics"][method][metric]["status"] == "ok", (method, metric)
    assert document["metrics"]["static"]["moving_iou"]["mean"] == 0.0
    assert (tmp_path / "report" / "examples.mp4").is_file()
