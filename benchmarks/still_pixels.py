"""Where a model moves object pixels that should stay, on a PokeSim store.

    python benchmarks/still_pixels.py --data data/val606 --split test --checkpoint from-video

For every object poke of the split, the model's forward flow (`Poker.forward_flow`, no tracker) is compared
with the simulator's exact flow on the object's *still* pixels (true displacement at frame T of 1 px or
less, as `metrics.MOVES_PX`). Printed for the model and for static (zero flow): the mean error over still
pixels, split by where the pixels are (on the poked segment's subtree; on other parts within 3 px of a pixel
that moves; farther) and by how far the model itself moves them at frame T. The shares add up to the mean:
each is a region's summed error over all still pixels. A diagnostic of a model: use a store of your own
seed, not the one you report on.
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from scipy import ndimage

from poke2video.data.store import Store
from poke2video.evaluate.cases import is_pokesim, load_cases, subtree_mask
from poke2video.metrics import MOVES_PX, endpoint_errors, moves
from poke2video.poker import Poker

NEAR_PX = 3
MOVED_BINS = (0.0, 0.25, 1.0, 4.0, np.inf)   # the model's own displacement at frame T, px


def regions(case, still: np.ndarray, moving: np.ndarray) -> dict[str, np.ndarray]:
    near = ndimage.binary_dilation(moving, iterations=NEAR_PX)
    poked = subtree_mask(case)
    return {"poked subtree": still & poked, f"other parts, within {NEAR_PX} px of motion": still & ~poked & near,
            "other parts, farther": still & ~poked & ~near}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a PokeSim store (poke2video simulate)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--checkpoint", default=None, help="weights file or bundled name (default: the default model)")
    args = parser.parse_args()
    store = Store.open(args.data)
    if not is_pokesim(store):
        parser.error(f"{args.data} is not a PokeSim store: still pixels need the simulator's flow")
    poker = Poker.load(args.checkpoint)
    sums = {"model": defaultdict(float), "static": defaultdict(float)}   # per-clip values, summed
    clips = 0
    for case in load_cases(store, args.split):
        if case.is_background:
            continue
        truth = case.gt_flow                                                      # [T, 2, H, W]
        moving = case.object_mask & moves(truth[-1])
        still = case.object_mask & ~moving
        if not still.any() or not moving.any():
            continue
        clips += 1
        flow = poker.forward_flow(case.source_frame, case.poke_source, case.poke_target)   # [T, 2, H, W]
        errors = {"model": endpoint_errors(flow, truth).mean(axis=0),
                  "static": endpoint_errors(np.zeros_like(truth), truth).mean(axis=0)}
        masks = regions(case, still, moving)                                      # errors: [H, W], frame mean
        for name, error in errors.items():
            sums[name]["still-pixel error"] += error[still].mean()
            for region, mask in masks.items():
                sums[name][region] += error[mask].sum() / still.sum()
        moved = np.hypot(*flow[-1])
        for low, high in zip(MOVED_BINS[:-1], MOVED_BINS[1:]):
            mask = still & (moved >= low) & (moved < high)
            sums["model"][f"moved {low:g} to {high:g} px"] += errors["model"][mask].sum() / still.sum()
            sums["model"][f"moved {low:g} to {high:g} px (share of pixels)"] += mask.sum() / still.sum()
    print(f"{clips} object pokes of {args.data} {args.split}, still pixels: true displacement at T <= {MOVES_PX} px")
    for name, add in sums.items():
        print(f"{name}:")
        for key, total in add.items():
            print(f"  {key:44s} {total / max(clips, 1):.3f}")


if __name__ == "__main__":
    main()
