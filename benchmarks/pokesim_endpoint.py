"""Score a checkpoint on a PokeSim split with the simulator's own pokes: the issue-4 measurement.

For every clip: the model gets frame 0 and the true poke (poked pixel -> its true position at frame T).
Object pokes: poke endpoint error (the poked pixel tracked through the generated video with chained
fine DIS flow; distance to the true target at frame T) next to the static baseline (the source frame
repeated: the poke's own length) and the real clip (the tracker's own error, a floor for any model).
Background pokes: mean absolute change from the source frame.
Means with 95% bootstrap intervals.

    python benchmarks/pokesim_endpoint.py --checkpoint runs/a/model.safetensors --data data/pokesim64 --split test
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from poke2video import Poker
from poke2video.data.store import Store
from poke2video.evaluate import metrics

GT_X, GT_Y, GT_TARGET_X, GT_TARGET_Y, GT_DRAG_X, GT_DRAG_Y = 0, 1, 2, 3, 4, 5
GT_IS_BACKGROUND = 9


def split_clips(store: Store, split: str):
    """(video, clip row) pairs of `split`, each a PokeSim clip of T + 1 frames."""
    for video, row in store.clips(split):
        yield int(video), int(row)


def score(poker: Poker, store: Store, split: str, count: int | None) -> dict[str, list[float]]:
    scores = {"endpoint_error": [], "static_endpoint_error": [], "real_endpoint_error": [], "background_change": [],
              "ms_per_video": []}
    clips = list(split_clips(store, split))[:count]
    for video, row in tqdm(clips, desc=f"score {split}", unit="clip"):
        start = int(store.starts(video)[row])
        source = np.asarray(store.frames(video)[start])
        poke = store.array(video, "gt_poke")[row]
        xy = (float(poke[GT_X]), float(poke[GT_Y]))
        # Poker refuses targets off the image; only background pokes (borrowed vectors) can point there.
        limit_px = source.shape[1] - 1
        target = tuple(float(np.clip(xy[i] + poke[GT_DRAG_X + i], 0, limit_px)) for i in range(2))
        began = time.perf_counter()
        generated = poker.animate(source, source=xy, target=target, output_size="model")
        scores["ms_per_video"].append(1000 * (time.perf_counter() - began))
        video_with_source = np.concatenate([source[None], generated])
        if poke[GT_IS_BACKGROUND]:
            scores["background_change"].append(metrics.background_stillness(video_with_source))
            continue
        true_target = (float(poke[GT_TARGET_X]), float(poke[GT_TARGET_Y]))
        scores["endpoint_error"].append(metrics.poke_endpoint_error(video_with_source, xy, true_target))
        real_clip = np.asarray(store.frames(video)[start:start + store.clip_length + 1])
        scores["real_endpoint_error"].append(metrics.poke_endpoint_error(real_clip, xy, true_target))
        scores["static_endpoint_error"].append(float(np.hypot(true_target[0] - xy[0], true_target[1] - xy[1])))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N clips")
    args = parser.parse_args()
    poker = Poker.load(args.checkpoint)
    scores = score(poker, Store.open(args.data), args.split, args.limit)
    print(f"| {args.split} | clips | mean | 95% interval |")
    print("|---|---|---|---|")
    for name, values in scores.items():
        if values:
            interval = metrics.bootstrap_interval(values)
            print(f"| {name} | {len(values)} | {interval.mean:.3f} | {interval.low:.3f}–{interval.high:.3f} |")


if __name__ == "__main__":
    main()
