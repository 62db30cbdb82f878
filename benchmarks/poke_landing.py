"""Where training pokes sampled from a prepared store's flow land, against the simulator's parts.

    python benchmarks/poke_landing.py data/from-video --seed 105 --video-res 256 [--every 10]

The store must be `prepare`d from `simulate --as-videos --procedural --seed SEED --res VIDEO_RES` clips (one
clip per video, names pokesim-NNNNNN.mp4). For every `--every`-th video the clip's scene is set up again from
its seed (nothing is read from the store but its flow) and each 64 px pixel is classed by the simulator's
parts in the first frame at the video's resolution: the pushed segment, a segment it carries (its subtree),
another part, or background (no part covers any of its sub-pixels). Printed: the share of the pixels the
poke sampler counts as moving (`data/pokes.foreground_mask`) in each class, and where one poke per clip drawn
by the sampler (`data/pokes.sample_poke`) lands, with `train.poke.fastest_fraction` 0 and 0.5 and, on a store
with per-step flows, with `train.poke.place: onset` at each `--onset-speeds` value. A diagnostic: training never reads
any of this.
"""
from __future__ import annotations

import argparse

import numpy as np

from poke2video.data.pokes import flow_magnitude, foreground_mask, sample_poke
from poke2video.data.store import Store
from poke2video.sim.bodies import ancestors, species_for
from poke2video.sim.generate import _scene_config
from poke2video.sim.scene import ClipSpec, _setup_clip

CLASSES = ("pushed segment", "its subtree", "another part", "background")


def clip_number(store: Store, video: int) -> int:
    """The simulator's clip number j of a `simulate --as-videos` video (its name pokesim-NNNNNN.mp4)."""
    return int(store.videos[video]["name"].rsplit("-", 1)[1].split(".")[0])


def add_store_arguments(parser: argparse.ArgumentParser, every: int) -> None:
    """The arguments every benchmark on a store of `simulate --as-videos` clips takes."""
    parser.add_argument("store")
    parser.add_argument("--seed", type=int, required=True, help="the seed the videos were simulated with")
    parser.add_argument("--video-res", type=int, default=256)
    parser.add_argument("--every", type=int, default=every)


def part_classes(clip, res: int) -> np.ndarray:
    """int [res, res]: the class (index into CLASSES) of each store pixel."""
    segments = clip.first_segments[0].astype(int) - 1                   # [V, V], -1 background
    scale = segments.shape[0] // res
    blocks = segments.reshape(res, scale, res, scale).transpose(0, 2, 1, 3).reshape(res, res, -1)
    carried = set(np.nonzero(ancestors(clip.body.parent)[clip.poke.segment])[0].tolist())
    classes = np.full((res, res), 3)
    for y in range(res):
        for x in range(res):
            covered = blocks[y, x][blocks[y, x] >= 0]
            if len(covered):
                segment = int(np.bincount(covered).argmax())
                classes[y, x] = 0 if segment == clip.poke.segment else 1 if segment in carried else 2
    return classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_arguments(parser, every=10)
    parser.add_argument("--onset-speeds", type=float, nargs="*", default=[0.25, 0.1],
                        help="train.poke.onset_speed values to draw onset pokes at (store with step_flow)")
    args = parser.parse_args()
    store, rng = Store.open(args.store), np.random.default_rng(0)
    pool, config = tuple(species_for("mixed", held_out=False)), _scene_config(args.video_res)
    share = np.zeros(4)
    anywhere = {f"fastest_fraction {f:g}": {"fastest_fraction": f} for f in (0.0, 0.5)}   # sample_poke keywords
    at_onset = {f"onset, onset_speed {v:g}": {"onset_speed": v} for v in args.onset_speeds}
    landed = {name: np.zeros(4) for name in (*anywhere, *at_onset)}
    for video in range(0, len(store.videos), args.every):
        clip = _setup_clip(ClipSpec((args.seed, 0, clip_number(store, video)), pool, False, procedural=True), config)
        classes = part_classes(clip, store.resolution)
        flow = np.asarray(store.flow(video)[0], np.float32)
        moving = foreground_mask(flow_magnitude(flow), 3)
        share += np.bincount(classes[moving], minlength=4) / moving.sum()
        draws = dict(anywhere)
        if store.has_array(video, "step_flow"):
            start = np.asarray(store.array(video, "step_flow")[int(store.starts(video)[0])], np.float32)
            draws.update({name: {**keywords, "start_flow": start} for name, keywords in at_onset.items()})
        for name, keywords in draws.items():
            (x, y), _ = sample_poke(flow, 3, rng, background=False, **keywords)
            landed[name][classes[y, x]] += 1
    print(f"{int(share.sum())} clips of {args.store}")
    print(f"{'':34s}" + "".join(f"{name:>16s}" for name in CLASSES))
    print(f"{'pixels counted as moving':34s}" + "".join(f"{v:15.1%} " for v in share / share.sum()))
    for name, counts in landed.items():
        if counts.sum():
            print(f"{'pokes, ' + name:34s}" + "".join(f"{v:15.1%} " for v in counts / counts.sum()))


if __name__ == "__main__":
    main()
