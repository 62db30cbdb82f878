"""The structure AUC of PokeSim itself: what the correlation map scores when the simulator answers the pokes.

    .venv/bin/python benchmarks/structure_ceiling.py --data data/test303 --split test [--clips 20] [--pokes 16]

For each of the split's first `--clips` object pokes (the clips `evaluate --structure-clips` maps), the
object is pushed again at its own poked point `--pokes` times, in uniform directions with strengths drawn
from the simulator's own range (`sim.scene.repoke`). Each push's video, with the drag it really gave (where
the poked point ends minus where it started), goes into the correlation map `evaluate` draws (the same
tracker), scored against the poked segment's subtree. Prints the mean AUC with a 95% bootstrap interval:
the score of motion that is right by construction, to read a model's and the baselines' scores against.
"""
from __future__ import annotations

import argparse
from itertools import islice

import numpy as np
from tqdm import tqdm

from poke2video import metrics
from poke2video.data.flow import get_flow_estimator
from poke2video.data.store import Store
from poke2video.evaluate.cases import load_cases, subtree_mask
from poke2video.evaluate.correlate import map_of_videos, structure_auc
from poke2video.sim.generate import store_clip_spec
from poke2video.sim.scene import repoke


def simulator_auc(store: Store, case, pokes: int, rng: np.random.Generator, tracker) -> float:
    spec, scene = store_clip_spec(store.manifest, *case.clip)
    angles = rng.uniform(0.0, 2 * np.pi, pokes)
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    videos, drags = repoke(spec, scene, directions, rng.uniform(*scene.strength, pokes))
    result = map_of_videos(videos, drags, case.poke_source, tracker)
    return structure_auc(result.inverse_variance, subtree_mask(case), among=case.object_mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a PokeSim store (poke2video simulate)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=20, help="object pokes scored (default 20)")
    parser.add_argument("--pokes", type=int, default=16, help="pushes per clip (default 16)")
    parser.add_argument("--tracker", default=metrics.TRACKER)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    store, rng = Store.open(args.data), np.random.default_rng(args.seed)
    tracker = get_flow_estimator(args.tracker)
    cases = list(islice((case for case in load_cases(store, args.split) if not case.is_background), args.clips))
    scores = [simulator_auc(store, case, args.pokes, rng, tracker) for case in tqdm(cases, unit="clip")]
    interval = metrics.bootstrap_interval(scores)
    print("| store | split | clips | pushes each | simulator's structure AUC |")
    print("|---|---|---|---|---|")
    print(f"| {args.data} | {args.split} | {len(scores)} | {args.pokes} | {interval.mean:.3f} "
          f"({interval.low:.3f}-{interval.high:.3f}) |")


if __name__ == "__main__":
    main()
