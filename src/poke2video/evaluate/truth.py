"""What a video's motion is scored against, and the motion scores of one video.

A clip's motion truth says where every scored pixel of the source frame is at frames 1..T:
- PokeSim stores: the simulator's exact flow from frame 0, over the object's pixels (its segment map).
- Any other store (made by `prepare`): the real clip, the store's own frames 1..T, tracked pixel by pixel
  with the same tracker as the generated videos. Real footage has no object mask, so every pixel is
  scored and the split into pixels that move (over `metrics.MOVES_PX` at frame T) and pixels that stay
  does the work. The tracker's own error is part of this truth. A store made with `--tracked-truth` holds
  the real clip tracked on its larger frames (the ones its flow was estimated on, every frame of the source
  with `--flow-every-frame`) by the tracker its header names, and averaged down (`tracked_motion`), where a
  thin moving part smears less into its surroundings; that is used instead.
Background pokes have no motion truth: they are scored by how still the video stays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poke2video.data.flow import FlowEstimator
from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video import metrics
from poke2video.evaluate.cases import EvalCase, tracked_truth

EXACT, TRACKED_REAL_CLIP = "ground-truth flow, object pixels", "real clip tracked, every pixel"
TRACKED_LARGER = "real clip tracked on larger frames, every pixel"


@dataclass(frozen=True)
class MotionTruth:
    displacement: np.ndarray  # float [T, 2, H, W]: where each frame-0 pixel is at frames 1..T, minus where it was
    scored: np.ndarray        # bool [H, W]: the frame-0 pixels the motion metrics average over
    source: str               # EXACT, TRACKED_REAL_CLIP or TRACKED_LARGER


def truth_source(store: Store, pokesim: bool) -> str:
    """What a store's motion metrics are scored against: EXACT, TRACKED_LARGER (a store made with
    `--tracked-truth`) or TRACKED_REAL_CLIP."""
    if pokesim:
        return EXACT
    return TRACKED_LARGER if tracked_truth(store) is not None else TRACKED_REAL_CLIP


def check_tracker(store: Store, tracker: str) -> None:
    """A UserError when `tracker` is not the one that tracked the store's stored truth (`tracked_motion`)."""
    stored = (tracked_truth(store) or {}).get("tracker")
    if stored is not None and stored != tracker:
        raise UserError(f"{store.root}'s motion truth was tracked with {stored}; evaluate it with --tracker {stored} "
                        "(rows and truth must be tracked alike)")


def motion_truth(case: EvalCase, tracker: FlowEstimator | None = None) -> MotionTruth | None:
    """The motion `case`'s videos are scored against (see the module docstring); None for a background poke
    or a PokeSim clip without object pixels. On a store without ground truth this tracks the real clip:
    make it once per clip and hand it to every row."""
    if case.is_background:
        return None
    if case.gt_flow is not None:
        object_pixels = case.object_mask
        return MotionTruth(case.gt_flow, object_pixels, EXACT) if object_pixels.any() else None
    if case.tracked_motion is not None:
        return MotionTruth(case.tracked_motion, np.ones(case.tracked_motion.shape[2:], bool), TRACKED_LARGER)
    return tracked_real_clip(case.expected_video, tracker)


def true_motion(case: EvalCase, truth: MotionTruth | None, tracker: FlowEstimator | None = None) -> np.ndarray:
    """float [T, 2, H, W]: where every frame-0 pixel of `case` really goes, for the oracles: the ground-truth
    flow on PokeSim, else the tracked real clip (`truth`'s when it was made, tracked here when not)."""
    if case.gt_flow is not None:
        return case.gt_flow
    if truth is not None:
        return truth.displacement
    return tracked_real_clip(case.expected_video, tracker).displacement


def tracked_real_clip(real_video_with_source: np.ndarray, tracker: FlowEstimator | None = None) -> MotionTruth:
    """Every pixel of frame 0 of the real clip uint8 [T+1, H, W, 3] followed by `tracker` (None:
    `metrics.TRACKER`) through frames 1..T."""
    every_pixel = np.ones(real_video_with_source.shape[1:3], bool)
    displacement = metrics.tracked_motion(real_video_with_source, every_pixel, flow=tracker)
    return MotionTruth(displacement, every_pixel, TRACKED_REAL_CLIP)


def tracked_video(truth: MotionTruth, video_with_source: np.ndarray, poke_source,
                  tracker: FlowEstimator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One tracking pass of a video uint8 [T+1, H, W, 3] (frame 0 the source): (where the poked pixel is at
    frame T [2], the motion of every scored pixel [T, 2, H, W], zero elsewhere)."""
    start_xy = metrics.mask_points(truth.scored)                                                 # [N, 2]
    positions = metrics.track_points(video_with_source, np.concatenate([[poke_source], start_xy]), tracker)
    return positions[-1, 0], metrics.motion_field(positions[1:, 1:] - start_xy, truth.scored)


def scores_of_motion(truth: MotionTruth, motion: np.ndarray, poked_end, true_target) -> dict:
    """The motion scores of a tracked video (`tracked_video`): its motion [T, 2, H, W] is read on
    `truth.scored` only, so a truth scoring a subset of the pixels it was tracked on scores that subset."""
    split = metrics.motion_split(motion, truth.displacement, truth.scored)
    return {"endpoint_error": float(np.hypot(*(np.asarray(poked_end) - np.asarray(true_target, np.float64)))),
            "motion_error": split["all"], "motion_error_moving": split["moving"],
            "motion_error_still": split["still"],
            "moving_iou": metrics.moving_iou(motion[-1], truth.displacement[-1], truth.scored),
            "motion_error_per_frame": metrics.error_per_frame(motion, truth.displacement, truth.scored).tolist()}


def motion_scores(truth: MotionTruth, video_with_source: np.ndarray, poke_source, true_target,
                  tracker: FlowEstimator | None = None) -> dict:
    """Endpoint error, motion error (all, moving, still, per frame) and moving IoU of one video uint8
    [T+1, H, W, 3] (frame 0 the source), from one tracking pass of the poked pixel and every scored pixel."""
    poked_end, motion = tracked_video(truth, video_with_source, poke_source, tracker)
    return scores_of_motion(truth, motion, poked_end, true_target)
