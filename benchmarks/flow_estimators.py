"""Optical flow estimators scored against PokeSim's exact flow, through the path a video takes in `prepare`.

    python benchmarks/flow_estimators.py --clips 60 --seed 777 dis-fine@1 dis@4 dis@4+changed
    python benchmarks/flow_estimators.py --clips 60 --seed 777 --frames-per-step 2 dis-full@4+changed

Each clip is a made-up-species object of the train split, rendered at --video-res, written as an H.264 file
(what `simulate --as-videos` writes) and read back at the store's resolution times the estimator's scale
(`METHOD@SCALE`, as `prepare --flow METHOD --flow-scale SCALE`; `+changed` adds `--flow-mask changed`). The
per-step flows are averaged down to --res, chained over the clip (as `prepare` does) and compared with the
truth (the simulator's flow at --video-res, averaged down the same way) at every frame. With
`--frames-per-step K` the videos hold K frames per step (`simulate --as-videos --frames-per-step K`) and
the flow runs between every two of them, chained over each kept step (`prepare --stride K
--flow-every-frame`). With `--as-truth` each estimator is scored as a video's motion truth instead: every
pixel followed at the frames' own size through every video frame and averaged down at the end
(`metrics.tracked_grid_motion`, as `prepare --tracked-truth METHOD --flow-every-frame` makes it); METHOD
`tracker` is that option's default tracker. Printed per estimator, means over clips:

    moving   end-point error over pixels that truly move over 1 px by frame T
    still    end-point error over pixels that truly move under 0.5 px
    false    share of those still pixels the estimate moves over 0.5 px at frame T
    IoU      of the pixels the estimate and the truth move over 1 px at frame T (a blob around a thin part: low)
    area     the estimate's moving area at frame T over the truth's (median over clips; 1 is right)
    flows/s  frame pairs per second, one thread, decoding excluded

Use a seed no model was trained or chosen on to compare estimators fairly.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from poke2video.data.flow import chained_flows, downscale_flow, get_flow_estimator, still_where_unchanged
from poke2video.data.prepare import kept_steps, truth_tracker
from poke2video.data.video import Sampling, read_frames
from poke2video.export import write_video
from poke2video.metrics import TRACKER, endpoint_errors, tracked_grid_motion
from poke2video.sim.bodies import species_for
from poke2video.sim.generate import _scene_config
from poke2video.sim.scene import ClipSpec, render_chunk, render_video_frames
from poke2video.sim.videos import VIDEO_FPS


def render_clips(clips: int, seed: int, video_res: int, res: int,
                 frames_per_step: int = 1) -> tuple[list[np.ndarray], np.ndarray]:
    """uint8 frames [T K + 1, V, V, 3] of each clip at the video resolution (K frames per step) and the true
    flow float32 [N, T, 2, res, res] to the store's frames."""
    pool = tuple(species_for("mixed", held_out=False))
    specs = [ClipSpec((seed, 0, j), pool, False, procedural=True) for j in range(clips)]
    arrays = render_chunk(specs, _scene_config(video_res))
    frames = render_video_frames(specs, _scene_config(video_res), frames_per_step)
    truth = arrays["gt_flow"].astype(np.float32).reshape(clips, -1, 2, video_res, video_res)[:, 1:]
    return frames, np.stack([[downscale_flow(step, res) for step in clip] for clip in truth])


def through_h264(frames: np.ndarray, size: int) -> np.ndarray:
    """A clip written as the project's H.264 file and read back square at `size` px, as `prepare` reads it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        write_video(path, frames, VIDEO_FPS)
        return read_frames(path, Sampling(size))


def step_flows(estimator, video: np.ndarray, res: int, mask: bool, frames_per_step: int = 1) -> np.ndarray:
    """[T, 2, res, res]: each kept step's flow averaged down (chained over the frames in between), zero where
    the store's frames did not change with `mask` (as `prepare --flow-mask changed`)."""
    small = [cv2.resize(frame, (res, res), interpolation=cv2.INTER_AREA) for frame in video[::frames_per_step]]
    pairs = [(small[i // frames_per_step] if i % frames_per_step == 0 else None, frame) for i, frame in enumerate(video)]
    steps = [step for _, step, _ in kept_steps(pairs, estimator, res)][1:]
    if not mask:
        return np.stack(steps)
    return np.stack([still_where_unchanged(f, a, b) for f, a, b in zip(steps, small[:-1], small[1:])])


def truth_motion(estimator, video: np.ndarray, res: int, frames_per_step: int = 1) -> np.ndarray:
    """[T, 2, res, res]: every pixel of the first frame followed through every frame at the video's size, its
    displacement at the store's frames averaged down (a motion truth, as `prepare --tracked-truth` makes)."""
    steps = np.stack([estimator(a, b) for a, b in zip(video[:-1], video[1:])])
    return tracked_grid_motion(steps, res)[frames_per_step - 1::frames_per_step]


def score(estimator, videos: list[np.ndarray], truth: np.ndarray, res: int, mask: bool,
          frames_per_step: int = 1, as_truth: bool = False) -> dict[str, float]:
    moving, still, false, iou, area, seconds, pairs = [], [], [], [], [], 0.0, 0
    for video, true_flows in zip(videos, truth):
        start = time.perf_counter()
        if as_truth:
            chained = truth_motion(estimator, video, res, frames_per_step)     # [T, 2, res, res]
        else:
            chained = chained_flows(step_flows(estimator, video, res, mask, frames_per_step))
        seconds, pairs = seconds + time.perf_counter() - start, pairs + len(chained)
        last = np.hypot(true_flows[-1, 0], true_flows[-1, 1])
        error = endpoint_errors(chained, true_flows)                        # [T, res, res]
        if (last > 1).any():
            moving.append(error[:, last > 1].mean())
        still.append(error[:, last <= 0.5].mean())
        false.append((np.hypot(chained[-1, 0], chained[-1, 1])[last <= 0.5] > 0.5).mean())
        truly, estimated = last > 1, np.hypot(chained[-1, 0], chained[-1, 1]) > 1
        iou.append((truly & estimated).sum() / max(1, (truly | estimated).sum()))
        area.append(estimated.sum() / max(1, truly.sum()))
    return {"moving": float(np.mean(moving)), "still": float(np.mean(still)), "false": float(np.mean(false)),
            "iou": float(np.mean(iou)), "area": float(np.median(area)), "flows_per_s": pairs / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("estimators", nargs="+", metavar="METHOD@SCALE[+changed]", help="e.g. dis-fine@1 dis@4+changed")
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--seed", type=int, default=777, help="PokeSim seed of the clips (default 777)")
    parser.add_argument("--res", type=int, default=64, help="the store's resolution")
    parser.add_argument("--video-res", type=int, default=256, help="the resolution the clips are rendered at")
    parser.add_argument("--frames-per-step", type=int, default=1, metavar="K",
                        help="video frames per store frame step; the flow runs through all of them (default 1)")
    parser.add_argument("--as-truth", action="store_true",
                        help="score each estimator as a video's motion truth (every pixel followed at the video's "
                             "size); METHOD tracker is prepare --tracked-truth's tracker")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    frames, truth = render_clips(args.clips, args.seed, args.video_res, args.res, args.frames_per_step)
    print(f"{args.clips} clips of seed {args.seed} at {args.video_res} px, {args.frames_per_step} frame(s) per "
          f"step, scored at {args.res} px")
    print(f"{'estimator':20s} {'moving':>7s} {'still':>6s} {'false':>6s} {'IoU':>6s} {'area':>5s} {'flows/s':>8s}")
    for spec in args.estimators:
        flow, _, mask = spec.partition("+")
        if mask not in ("", "changed"):
            raise SystemExit(f"unknown mask {mask!r} in {spec!r}; the one mask is +changed")
        method, _, scale = flow.partition("@")
        if args.as_truth and mask:
            raise SystemExit(f"{spec!r}: a truth follows every pixel; drop +{mask} with --as-truth")
        scale = int(scale or 1)
        videos = [through_h264(clip, args.res * scale) for clip in frames]
        estimator = truth_tracker(TRACKER, scale) if method == "tracker" else get_flow_estimator(method)
        result = score(estimator, videos, truth, args.res, mask == "changed", args.frames_per_step, args.as_truth)
        print(f"{spec:20s} {result['moving']:7.3f} {result['still']:6.3f} {100 * result['false']:5.1f}% "
              f"{result['iou']:6.3f} {result['area']:5.2f} {result['flows_per_s']:8.0f}", flush=True)


if __name__ == "__main__":
    main()
