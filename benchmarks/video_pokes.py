"""Models compared on a prepared video store with pokes placed as a user places them.

    python benchmarks/video_pokes.py --data data/v106 --checkpoint from-video --checkpoint runs/x/best.safetensors \
        [--place onset] [--drag tracked] [--drag-scales 1 0.9] [--mirror off on] [--near 6] [--splits test train] \
        [--limit 200]

`evaluate` pokes a prepared store the way training does by default: a pixel anywhere on the moving
foreground, dragged by the store's flow. Here the pixel can instead be drawn where the clip's motion starts
(`--place onset`, `train.poke.place`), and the drag can be where the real clip's motion truth takes that
pixel (`--drag tracked`) rather than the store's flow, which falls short of it. The truth is the real clip
tracked by the metrics' tracker, on the store's frames or, in a store made with `prepare --tracked-truth`,
on the larger frames its flow was estimated on. The videos are scored as `evaluate` scores them (every
pixel) and also over the pixels within `--near` px of those that move over 1 px at frame T in the truth: a
stand-in for an object mask, so that pixels that should stay near the moving part count as much as on PokeSim.
A `--checkpoint` of the form A+B averages the forward flows of A and B before one render; `--mirror off on`
scores every model with its mirror averaging off and on (`model.mirror_average`); static and the
Gaussian warp are poked alike for reference (the real clip is the truth here). Printed: each row's means
(pooled over the splits, object pokes only) and its paired difference from the first model with a 95%
bootstrap interval (`compare_reports.paired_difference`).
"""
from __future__ import annotations

import argparse
import dataclasses
from collections import defaultdict

import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from compare_reports import paired_difference   # benchmarks/ is on sys.path as a script
from poke_kinds import scaled_case
from poke2video.config import PokeConfig, poke_size_for
from poke2video.data.dataset import PokeDataset
from poke2video.data.store import Store
from poke2video.evaluate.cases import dataset_case, is_pokesim
from poke2video.evaluate.methods import Method, baseline_methods, model_method
from poke2video.evaluate.truth import TRACKED_REAL_CLIP, MotionTruth, motion_truth, scores_of_motion, tracked_video
from poke2video.metrics import MOVES_PX
from poke2video.poker import Poker
from poke2video.poking.flow import STILL_PX, render_uint8

METRICS = ("motion_error", "motion_error_moving", "motion_error_still", "moving_iou", "near_motion_error",
           "near_motion_error_still")


def load_poker(name: str, mirror: bool | None) -> Poker:
    """The model `name`, with its config's `mirror_average` replaced when `mirror` is not None."""
    poker = Poker.load(name)
    if mirror is not None:
        poker.model.cfg = dataclasses.replace(poker.model.cfg, mirror_average=mirror)
    return poker


def row_method(checkpoint: str, mirror: bool | None = None) -> Method:
    """A row whose video is one render of the forward flow of a model, or the mean of several (`A+B`)."""
    names = checkpoint.split("+")
    if len(names) == 1 and mirror is None:
        return model_method(checkpoint, name=checkpoint)
    pokers = [load_poker(name, mirror) for name in names]

    def animate(frame, source, target, frames):
        flows = np.mean([poker.forward_flow(frame, source, target) for poker in pokers], axis=0)
        return render_uint8(frame, torch.from_numpy(flows), STILL_PX)

    return Method(checkpoint + ("" if mirror is None else f" (mirror {'on' if mirror else 'off'})"), animate)


def scores_near(truth: MotionTruth, video: np.ndarray, source, target, near_px: int) -> dict:
    """`evaluate`'s motion scores, and motion error (all, still) over the pixels within `near_px` of motion,
    from one tracking pass of the video."""
    poked_end, motion = tracked_video(truth, video, source)
    scores = scores_of_motion(truth, motion, poked_end, target)
    moving = np.hypot(*truth.displacement[-1]) > MOVES_PX
    near = ndimage.binary_dilation(moving, structure=np.ones((3, 3), bool), iterations=near_px)
    close = scores_of_motion(MotionTruth(truth.displacement, near, TRACKED_REAL_CLIP), motion, poked_end, target)
    return {**scores, "near_motion_error": close["motion_error"],
            "near_motion_error_still": close["motion_error_still"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a store made by `poke2video prepare`")
    parser.add_argument("--checkpoint", action="append", required=True,
                        help="weights file, bundled name, or A+B (flows averaged); the first is the reference")
    parser.add_argument("--place", choices=("moving", "onset"), default="onset")
    parser.add_argument("--drag", choices=("flow", "tracked"), default="tracked")
    parser.add_argument("--drag-scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--mirror", choices=("on", "off"), nargs="+", default=None,
                        help="score each model with its mirror averaging set so (default: as its weights say)")
    parser.add_argument("--near", type=int, default=6, help="px around the real clip's moving pixels (default 6)")
    parser.add_argument("--splits", nargs="+", default=["test", "train"])
    parser.add_argument("--limit", type=int, default=200, help="first clips of each split (default 200)")
    args = parser.parse_args()
    store = Store.open(args.data)
    if is_pokesim(store):
        parser.error(f"{args.data} is a PokeSim store; this compares models on videos (use poke_kinds.py there)")
    mirrors = [None] if args.mirror is None else [flag == "on" for flag in args.mirror]
    models = [row_method(name, mirror) for name in args.checkpoint for mirror in mirrors]
    methods = {method.name: method for method in [*models, *baseline_methods("static,warp")]}
    rows = [(name, scale) for scale in args.drag_scales for name in methods]
    values: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for split in args.splits:
        sampler = PokeDataset(store, split, PokeConfig(poke_size=poke_size_for(store.resolution), place=args.place))
        for index in tqdm(range(min(args.limit, len(sampler))), desc=split, unit="clip"):
            case = dataset_case(sampler, index)
            if case.is_background:
                continue
            truth = motion_truth(case)
            x, y = case.poke_source
            drag = (truth.displacement[-1, :, int(round(y)), int(round(x))] if args.drag == "tracked"
                    else np.subtract(case.poke_target, case.poke_source))
            true_target = (x + drag[0], y + drag[1])
            dragged = dataclasses.replace(case, poke_target=true_target)
            for name, scale in rows:
                video = methods[name].video_for(scaled_case(dragged, scale))
                video = np.concatenate([case.source_frame[None], video])
                scores = scores_near(truth, video, case.poke_source, true_target, args.near)
                for metric in METRICS:
                    values[(name, scale)][metric].append(np.nan if scores.get(metric) is None else scores[metric])
    print(f"{args.data} {'+'.join(args.splits)}: pokes placed {args.place}, drags {args.drag}; near = within "
          f"{args.near} px of the real clip's motion; B - A against {rows[0][0]} at scale {rows[0][1]:g}")
    reference = values[rows[0]]
    for name, scale in rows:
        print(f"{name} (drag x {scale:g}), {len(values[(name, scale)]['motion_error'])} object pokes")
        for metric in METRICS:
            mine = np.asarray(values[(name, scale)][metric])
            mean, low, high = paired_difference(np.asarray(reference[metric]), mine)
            print(f"  {metric:24s} {np.nanmean(mine):8.3f}  {mean:+.4f} ({low:+.4f} to {high:+.4f})")


if __name__ == "__main__":
    main()
