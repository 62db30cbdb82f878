"""How long a drag sampled from a prepared store is, against how far the poked point really goes.

    python benchmarks/poke_drags.py data/from-video --seed 105 --video-res 256 [--every 7]

The store must be `prepare`d from `simulate --as-videos --procedural --seed SEED --res VIDEO_RES` clips (one
clip per video, names pokesim-NNNNNN.mp4). For every `--every`-th object clip the scene is set up again from
its seed and simulated (nothing but the store's frames and flows is read from the store), and at the
simulator's own poke pixel the true displacement at frame T is compared with the drag a training poke at that
pixel gets (the store's per-step flow chained over the clip, `step_flow`) and with where the metrics'
tracker carries the pixel through the stored frames (`metrics.track_point`). Printed: median lengths and the
median projection of each onto the true displacement, as a fraction of its length. A diagnostic: training
never reads any of this.
"""
from __future__ import annotations

import argparse

import numpy as np

from poke_landing import add_store_arguments, clip_number   # benchmarks/ is on sys.path as a script
from poke2video.data.flow import chain_flows
from poke2video.data.store import Store
from poke2video.metrics import track_point
from poke2video.sim.bodies import species_for
from poke2video.sim.generate import SimConfig, _scene_config
from poke2video.sim.scene import ClipSpec, _setup_clip, _simulate_inside

BATCH = 40    # clips simulated together


def drags_at(store: Store, video: int, xy: tuple[int, int]) -> dict[str, np.ndarray]:
    """The displacement [2] of pixel xy by frame T of the video's first clip: the training drag (the store's
    flow chained) and the tracker's."""
    start, T = int(store.starts(video)[0]), store.clip_length
    flow = chain_flows(np.asarray(store.array(video, "step_flow")[start:start + T], np.float32))
    clip = np.asarray(store.frames(video)[start:start + T + 1])
    return {"store's flow": flow[:, xy[1], xy[0]], "tracker": track_point(clip, xy)[-1] - np.asarray(xy, np.float64)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_arguments(parser, every=7)
    args = parser.parse_args()
    store = Store.open(args.store)
    pool, config = tuple(species_for("mixed", held_out=False)), _scene_config(args.video_res)
    scale = args.video_res / store.resolution
    background_every = SimConfig().background_every                      # every such clip pokes the background
    videos = [v for v in range(0, len(store.videos), args.every) if clip_number(store, v) % background_every]
    true_length, lengths, projections = [], {}, {}
    for first in range(0, len(videos), BATCH):
        batch = videos[first:first + BATCH]
        clips = [_setup_clip(ClipSpec((args.seed, 0, clip_number(store, v)), pool, False, procedural=True), config)
                 for v in batch]
        _, track = _simulate_inside(clips, config)                        # track [B, T+1, points, 2] in [0, 1]
        for video, clip, path in zip(batch, clips, track):
            true = (path[-1, 0] * args.video_res - 0.5 - clip.source) / scale
            x, y = (int(round(v)) for v in (clip.source + 0.5) / scale - 0.5)
            if not (0 <= x < store.resolution and 0 <= y < store.resolution) or np.hypot(*true) <= 1.0:
                continue
            true_length.append(np.hypot(*true))
            for name, drag in drags_at(store, video, (x, y)).items():
                lengths.setdefault(name, []).append(np.hypot(*drag))
                projections.setdefault(name, []).append(float(drag @ true) / float(true @ true))
    print(f"{len(true_length)} object clips of {args.store} whose poked point moves over 1 px; "
          f"true drag: median {np.median(true_length):.2f} px")
    for name in lengths:
        print(f"{name:16s} median length {np.median(lengths[name]):.2f} px, along the true drag "
              f"{np.median(projections[name]):.2f} x its length")


if __name__ == "__main__":
    main()
