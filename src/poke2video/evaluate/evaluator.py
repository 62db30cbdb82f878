"""`poke2video evaluate`: the model, its ablations, the baselines and the real clip, scored by one code path.

Every method turns an `EvalCase` (a clip's source frame and poke, see `cases.py`) into T frames; every
method's frames (and its forward flow, if it has one) then go through `score_clip`, the same for all (the
methods, their rows, are in `methods.py`). Per-clip metrics (means with seeded 95% bootstrap intervals in
the summary):
- psnr, ssim, lpips: against the expected video (the real clip; for a background poke on a flow store
  the source frame repeated), frame-averaged. Not for the real clip itself.
- endpoint_error (object pokes): the poked pixel tracked through the video (flow chained frame to frame by
  the `tracker`, default `metrics.TRACKER`), its distance at frame T to where the pixel really is.
- motion_error (object pokes): tracked motion of every scored pixel vs the clip's motion truth (`truth.py`:
  on PokeSim the ground-truth flow over object pixels; on other stores the real clip tracked the same way,
  every pixel, once per clip for all rows); motion_error_moving / motion_error_still: the same over the
  scored pixels whose true displacement at frame T exceeds `metrics.MOVES_PX` / the others; moving_iou: IoU
  of the scored pixels that move (tracked) and those that truly do. Per frame too (`Evaluation.per_frame`).
  One tracking pass per video feeds them all and the endpoint error.
- flow_error, flow_error_moving, flow_error_still (PokeSim object pokes, methods that give a forward flow):
  the flow against the ground truth on object pixels, every frame; no tracker.
- background_change (background pokes): mean absolute change from the source frame, in units of 255.
- structure_auc (PokeSim, the first `structure_clips` object pokes): the correlation map's AUC.
- pin_motion (object pokes with pins, PokeSim stores made with --max-pins): every pinned pixel tracked
  through the video, its distance at frame T from where it started, mean over the pins; pin_flow: the same
  read from the method's forward flow at frame T, for methods that give one.
- ms_per_video: wall-clock milliseconds to make the video (batch 1).
Set metric: fvd, generated videos (source + T frames) against the expected videos.
LPIPS and FVD need pretrained networks; when they cannot be had they are reported "unavailable" with
the reason, never replaced.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from poke2video import metrics
from poke2video.data.flow import FlowEstimator, get_flow_estimator
from poke2video.data.store import Store
from poke2video.errors import UserError, WeightsUnavailable
from poke2video.evaluate.cases import EvalCase, is_pokesim, load_cases, split_size, subtree_mask
from poke2video.evaluate.correlate import correlation_map, structure_auc
from poke2video.evaluate.methods import (REAL_CLIP, Method, baseline_methods, model_method,  # noqa: F401
                                         real_clip_method)
from poke2video.evaluate.report import write_report
from poke2video.evaluate.results import CLIP_METRICS, PER_FRAME, EvalOptions, Evaluation
from poke2video.evaluate.sheets import Example
from poke2video.evaluate.truth import (TRACKED_REAL_CLIP, MotionTruth, check_tracker, motion_scores, motion_truth,
                                      true_motion, truth_source)

def load_judges(options: EvalOptions):
    """(LPIPS network or None, I3D network or None, {metric: why unavailable}).

    A file named on the command line that cannot be read is the user's error; a network that is neither
    cached nor downloadable is reported unavailable."""
    from poke2video.pretrained.i3d import load_i3d
    from poke2video.pretrained.perceptual import load_lpips

    unavailable, lpips_model, i3d = {}, None, None
    if options.lpips not in ("vgg", "alex", "off"):
        raise UserError(f"--lpips must be vgg, alex or off, got {options.lpips!r}")
    if options.lpips == "off":
        unavailable["lpips"] = "turned off (--lpips off)"
    else:
        try:
            lpips_model = load_lpips(options.lpips, options.lpips_backbone, options.lpips_heads)
        except WeightsUnavailable as exc:
            if options.lpips_backbone or options.lpips_heads:
                raise
            unavailable["lpips"] = str(exc)
    if not options.fvd:
        unavailable["fvd"] = "turned off (--no-fvd)"
    else:
        try:
            i3d = load_i3d(options.i3d_weights)
        except WeightsUnavailable as exc:
            if options.i3d_weights:
                raise
            unavailable["fvd"] = str(exc)
    return lpips_model, i3d, unavailable


def score_clip(case: EvalCase, generated: np.ndarray, against_real: bool, truth: MotionTruth | None,
               lpips_model=None, tracker: FlowEstimator | None = None, flow: np.ndarray | None = None) -> dict:
    """The per-clip metrics of one video `generated` uint8 [T, H, W, 3] for `case` (see the module docstring);
    `truth`: the clip's motion truth (`truth.motion_truth`, made once per clip), None for no motion metrics;
    `tracker` follows pixels (None: `metrics.TRACKER`); `flow` float [T, 2, H, W]: the forward flow the video
    follows, if the method gives one. Per-frame values come as "<metric>_per_frame" lists."""
    with_source = np.concatenate([case.source_frame[None], generated])
    scores: dict = {}
    if against_real:
        expected = case.expected_video[1:]
        scores["psnr"] = metrics.psnr(generated, expected)
        scores["ssim"] = metrics.ssim(generated, expected)
        if lpips_model is not None:
            from poke2video.pretrained.perceptual import lpips_distance

            scores["lpips"] = lpips_distance(generated, expected, lpips_model)
    if case.is_background:
        scores["background_change"] = metrics.background_stillness(with_source)
        return scores
    if truth is None:
        scores["endpoint_error"] = metrics.poke_endpoint_error(with_source, case.poke_source, case.true_target, tracker)
    else:
        scores.update(motion_scores(truth, with_source, case.poke_source, case.true_target, tracker))
    if flow is not None and case.gt_flow is not None and case.object_mask.any():
        split = metrics.motion_split(flow, case.gt_flow, case.object_mask)
        scores.update({f"flow_error{'' if part == 'all' else '_' + part}": value for part, value in split.items()})
    scores.update(pin_scores(case, with_source, flow, tracker))
    return {name: value for name, value in scores.items() if value is not None}


def pin_scores(case: EvalCase, video_with_source: np.ndarray, flow: np.ndarray | None,
               tracker: FlowEstimator | None = None) -> dict[str, float]:
    """{"pin_motion": mean px the pinned pixels moved by frame T, tracked through `video_with_source`
    [T+1, H, W, 3]; "pin_flow": the same from `flow` [T, 2, H, W] at frame T, when given}; {} without pins."""
    if not case.pins or case.is_background:
        return {}
    pins = np.asarray(case.pins, np.float64)                                   # [P, 2]
    tracked = metrics.track_points(video_with_source, pins, tracker)[-1]       # [P, 2] at frame T
    scores = {"pin_motion": float(np.hypot(*(tracked - pins).T).mean())}
    if flow is not None:
        scores["pin_flow"] = float(np.hypot(*metrics.sample_flow(flow[-1], pins).T).mean())
    return scores


def structure_score(method: Method, case: EvalCase, options: EvalOptions, tracker: FlowEstimator | None = None,
                    progress=None) -> float:
    """AUC of the method's correlation map at the case's poke against the poked segment's subtree."""
    result = correlation_map(method.animate, case.source_frame, case.poke_source, case.frames,
                             options.structure_pokes, options.seed, flow=tracker, progress=progress)
    return structure_auc(result.inverse_variance, subtree_mask(case), among=case.object_mask)


class _ExampleCollector:
    """Keeps the videos of the first `count` clips, at most one of them a background poke."""

    def __init__(self, count: int):
        self.count, self.examples, self._has_background = count, [], False

    def wants(self, case: EvalCase) -> bool:
        if len(self.examples) >= self.count or (case.is_background and self._has_background):
            return False
        self._has_background |= case.is_background
        return True

    def add(self, case: EvalCase) -> Example:
        kind = "background poke" if case.is_background else "object poke"
        example = Example(f"clip {case.clip[0]}/{case.clip[1]}\n{kind}", case.source_frame,
                          case.poke_source, case.poke_target)
        self.examples.append(example)
        return example


def _check_frames(methods: list[Method], store: Store) -> None:
    for method in methods:
        if method.frames is not None and method.frames != store.clip_length:
            raise UserError(f"{method.name} makes {method.frames} frames but {store.root}'s clips have "
                            f"{store.clip_length}; evaluate on a store with the model's clip length")


def evaluate(store: Store, split: str, methods: list[Method], options: EvalOptions = EvalOptions()) -> Evaluation:
    """Score every method on the first `options.limit` clips of `split`."""
    names = [m.name for m in methods]
    if not methods or len(set(names)) != len(names):
        raise UserError(f"need at least one method, each named once; got {names}")
    count = split_size(store, split, options.limit)
    _check_frames(methods, store)
    lpips_model, i3d, unavailable = load_judges(options)
    tracker = get_flow_estimator(options.tracker)
    check_tracker(store, options.tracker)
    pokesim = is_pokesim(store)
    result = Evaluation(str(store.root), split, pokesim, names, options, unavailable=unavailable,
                        real_methods=[m.name for m in methods if m.is_real],
                        oracle_methods=[m.name for m in methods if m.oracle is not None],
                        flow_methods=[m.name for m in methods if m.gives_flow],
                        rows={m.name: m.about for m in methods},
                        per_clip={name: {metric: [] for metric in CLIP_METRICS} for name in names},
                        per_frame={name: {metric: [] for metric in PER_FRAME} for name in names},
                        example_rows=names if REAL_CLIP in names else [*names, REAL_CLIP],
                        truth=truth_source(store, pokesim))
    structure_left = options.structure_clips if pokesim else 0
    animated = sum(m.animate is not None for m in methods)
    total = count * len(methods) + min(structure_left, count) * animated * options.structure_pokes
    collector = _ExampleCollector(options.example_clips)
    fvd_videos: dict[str, list[np.ndarray]] | None = {name: [] for name in names} if i3d is not None else None
    expected_videos: list[np.ndarray] = []
    with tqdm(total=total, desc=f"evaluate {split}", unit="video") as bar:
        for case in load_cases(store, split, options.limit):
            with_structure = structure_left > 0 and not case.is_background
            structure_left -= with_structure
            example = collector.add(case) if collector.wants(case) else None
            result.clips.append(case.describe())
            if fvd_videos is not None:
                expected_videos.append(case.expected_video)
            truth = motion_truth(case, tracker) if options.motion else None
            motion = true_motion(case, truth, tracker) if result.oracle_methods else None
            for method in methods:
                scores, video = _score_method(method, case, truth, options, lpips_model, tracker, with_structure,
                                              bar.update, motion)
                for metric in CLIP_METRICS:
                    result.per_clip[method.name][metric].append(scores.get(metric))
                for metric in PER_FRAME:
                    result.per_frame[method.name][metric].append(scores.get(f"{metric}_per_frame"))
                if fvd_videos is not None:
                    fvd_videos[method.name].append(np.concatenate([case.source_frame[None], video]))
                if example is not None:
                    example.videos[method.name] = video
                bar.update(1)
            if example is not None and REAL_CLIP not in names:
                example.videos[REAL_CLIP] = case.expected_video[1:]   # shown beside the rows, not scored
    result.examples = collector.examples
    if fvd_videos is not None:
        result.fvd = _fvd_scores(methods, fvd_videos, expected_videos, i3d)
    return result


def _score_method(method: Method, case: EvalCase, truth: MotionTruth | None, options: EvalOptions, lpips_model,
                  tracker: FlowEstimator, with_structure: bool, progress,
                  motion: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
    began = time.perf_counter()
    video, scored_flow = method.video_and_flow(case, with_flow=case.gt_flow is not None and not case.is_background,
                                               true_motion=motion)
    elapsed_ms = 1000.0 * (time.perf_counter() - began)
    scores = score_clip(case, video, against_real=not method.is_real, truth=truth, lpips_model=lpips_model,
                        tracker=tracker, flow=scored_flow)
    if method.animate is not None:
        scores["ms_per_video"] = elapsed_ms
        if with_structure:
            auc = structure_score(method, case, options, tracker, progress)
            if np.isfinite(auc):
                scores["structure_auc"] = auc
    return scores, video


def _fvd_scores(methods: list[Method], videos: dict[str, list[np.ndarray]], expected_videos: list[np.ndarray],
                i3d) -> dict[str, float]:
    """FVD of each method's videos [N, T+1, H, W, 3] against the expected ones (needs N >= 2)."""
    from poke2video.evaluate.fvd import fvd

    if len(expected_videos) < 2:
        return {}
    expected = np.stack(expected_videos)
    return {m.name: fvd(np.stack(videos[m.name]), expected, i3d) for m in methods if not m.is_real}


def check_output_dir(out: str | Path, overwrite: bool) -> Path:
    """The report folder `out`, refused up front (before any work) when it exists and is not empty."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"--out {out} is not empty; choose another folder or pass --overwrite")
    return out


def evaluate_to_dir(checkpoint: str | None, data: str, out: str, split: str = "test", baselines: str = "static,warp",
                    overwrite: bool = False, options: EvalOptions = EvalOptions(), command: str | None = None) -> Path:
    """`poke2video evaluate`: the model, the baselines and the real clip (where it is not its own truth: PokeSim,
    or a store with a truth tracked on larger frames) on `split`; report in `out`."""
    out_dir = check_output_dir(out, overwrite)
    store = Store.open(data)
    split_size(store, split, options.limit)
    methods = baseline_methods(baselines)
    methods.insert(0, model_method(checkpoint))
    if truth_source(store, is_pokesim(store)) != TRACKED_REAL_CLIP:
        methods.append(real_clip_method())
    return write_report(evaluate(store, split, methods, options), out_dir, overwrite=overwrite, command=command)
