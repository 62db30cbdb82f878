"""Optical flow estimators scored against PokeSim's exact flow, through the path a video takes in `prepare`.

    python benchmarks/flow_estimators.py --clips 60 --seed 777 dis-fine@1 dis@4

Each clip is a made-up-species object of the train split, rendered at --video-res, written as an H.264 file
(what `simulate --as-videos` writes) and read back at the store's resolution times the estimator's scale
(`METHOD@SCALE`, as `prepare --flow METHOD --flow-scale SCALE`). The per-step flows are averaged down to
--res, chained over the clip (as `prepare` does) and compared with the truth (the simulator's flow at
--video-res, averaged down the same way) at every frame. Printed per estimator, means over clips:

    moving   end-point error over pixels that truly move over 1 px by frame T
    still    end-point error over pixels that truly move under 0.5 px
    false    share of those still pixels the estimate moves over 0.5 px at frame T
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

from poke2video.data.flow import chained_flows, downscale_flow, get_flow_estimator
from poke2video.data.video import Sampling, read_frames
from poke2video.export import write_video
from poke2video.sim.bodies import species_for
from poke2video.sim.generate import _scene_config
from poke2video.sim.scene import ClipSpec, render_chunk
from poke2video.sim.videos import VIDEO_FPS


def render_clips(clips: int, seed: int, video_res: int, res: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames [N, T+1, V, V, 3] at the video resolution and the true flow float32 [N, T, 2, res, res]."""
    pool = tuple(species_for("mixed", held_out=False))
    specs = [ClipSpec((seed, 0, j), pool, False, procedural=True) for j in range(clips)]
    arrays = render_chunk(specs, _scene_config(video_res))
    frames = arrays["frames"].reshape(clips, -1, video_res, video_res, 3)
    truth = arrays["gt_flow"].astype(np.float32)[:, 1:]
    return frames, np.stack([[downscale_flow(step, res) for step in clip] for clip in truth])


def through_h264(frames: np.ndarray, size: int) -> np.ndarray:
    """A clip written as the project's H.264 file and read back square at `size` px, as `prepare` reads it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        write_video(path, frames, VIDEO_FPS)
        return read_frames(path, Sampling(size))


def score(estimator, videos: list[np.ndarray], truth: np.ndarray, res: int) -> dict[str, float]:
    moving, still, false, seconds, pairs = [], [], [], 0.0, 0
    for video, true_flows in zip(videos, truth):
        start = time.perf_counter()
        steps = np.stack([downscale_flow(estimator(a, b), res) for a, b in zip(video[:-1], video[1:])])
        seconds, pairs = seconds + time.perf_counter() - start, pairs + len(steps)
        chained = chained_flows(steps)                                    # [T, 2, res, res]
        last = np.hypot(true_flows[-1, 0], true_flows[-1, 1])
        error = np.hypot(*(chained - true_flows).transpose(1, 0, 2, 3))   # [T, res, res]
        if (last > 1).any():
            moving.append(error[:, last > 1].mean())
        still.append(error[:, last <= 0.5].mean())
        false.append((np.hypot(chained[-1, 0], chained[-1, 1])[last <= 0.5] > 0.5).mean())
    return {"moving": float(np.mean(moving)), "still": float(np.mean(still)), "false": float(np.mean(false)),
            "flows_per_s": pairs / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("estimators", nargs="+", metavar="METHOD@SCALE", help="e.g. dis-fine@1 dis@4")
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--seed", type=int, default=777, help="PokeSim seed of the clips (default 777)")
    parser.add_argument("--res", type=int, default=64, help="the store's resolution")
    parser.add_argument("--video-res", type=int, default=256, help="the resolution the clips are rendered at")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    frames, truth = render_clips(args.clips, args.seed, args.video_res, args.res)
    print(f"{args.clips} clips of seed {args.seed} at {args.video_res} px, scored at {args.res} px")
    print(f"{'estimator':20s} {'moving':>7s} {'still':>6s} {'false':>6s} {'flows/s':>8s}")
    for spec in args.estimators:
        method, _, scale = spec.partition("@")
        size = args.res * int(scale or 1)
        videos = [through_h264(clip, size) for clip in frames]
        result = score(get_flow_estimator(method), videos, truth, args.res)
        print(f"{spec:20s} {result['moving']:7.3f} {result['still']:6.3f} {100 * result['false']:5.1f}% "
              f"{result['flows_per_s']:8.0f}", flush=True)


if __name__ == "__main__":
    main()
