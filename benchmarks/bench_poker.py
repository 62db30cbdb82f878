"""Milliseconds per `Poker.animate` call (64 px image, batch 1): traced and eager, poke anchoring on and off.

    OMP_NUM_THREADS=1 python benchmarks/bench_poker.py [--checkpoint runs/a/model.safetensors] [--repeats 30]

Medians over `--repeats` calls after 3 warm-up calls (the first traced call builds the trace), each
variant in turn within one run so the machine's load hits them alike; ratios against the traced,
anchored call. The checkpoint must be a warp model; anchoring is switched on for the run if its config
does not have it (the weights are not changed).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from poke2video.poker import Poker


def median_ms(poker: Poker, image: np.ndarray, anchor: bool, repeats: int) -> float:
    rng = np.random.default_rng(0)
    pokes = [(tuple(rng.uniform(8, 56, 2)), tuple(rng.uniform(8, 56, 2))) for _ in range(repeats + 3)]
    times = []
    for i, (source, target) in enumerate(pokes):
        start = time.perf_counter()
        poker.animate(image, source, target, anchor=anchor)
        if i >= 3:
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="weights file (default: the bundled model)")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rows = []
    for trace in (True, False):
        poker = Poker.load(args.checkpoint, trace=trace)
        if poker.model.cfg.output != "warp":
            raise SystemExit("bench_poker: the checkpoint is not a warp model (nothing to anchor)")
        poker.model.cfg.poke_anchor = True
        for anchor in (True, False):
            rows.append((trace, anchor, median_ms(poker, image, anchor, args.repeats)))
    reference = rows[0][2]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), medians of {args.repeats}")
    print("| Poker | anchoring | ms / video | vs traced + anchored |")
    print("|---|---|---|---|")
    for trace, anchor, ms in rows:
        print(f"| {'traced' if trace else 'eager'} | {'on' if anchor else 'off'} | {ms:.1f} | {ms / reference:.2f}x |")


if __name__ == "__main__":
    main()
