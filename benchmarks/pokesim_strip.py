"""Draw docs/pokesim_strip.png: a few PokeSim clips, frames 0, 2, ..., 10 left to right.

    .venv/bin/python benchmarks/pokesim_strip.py [--out docs/pokesim_strip.png] [--res 128]

On frame 0 a white arrow goes from the poked pixel to its true position at the last frame (the
training target); on the last frame a dot marks that target. The last row is a background poke.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from poke2video.sim.generate import SimConfig, _scene_config, clip_specs
from poke2video.sim.scene import POKE_COLUMNS, render_chunk

ROWS = (1, 2, 3, 4, 9, 10)    # dataset clips shown (train split of a 100-clip dataset; clip 10 is a background poke)
COL = {name: i for i, name in enumerate(POKE_COLUMNS)}


def annotate(frames: np.ndarray, poke: np.ndarray, scale: int) -> np.ndarray:
    big = [cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST) for f in frames]
    source = (poke[[COL["x"], COL["y"]]] + 0.5) * scale
    end = source + poke[[COL["drag_x"], COL["drag_y"]]] * scale
    to_int = lambda p: tuple(int(round(v)) for v in p)  # noqa: E731
    cv2.arrowedLine(big[0], to_int(source), to_int(end), (255, 255, 255), 1, cv2.LINE_AA, tipLength=0.25)
    target = (poke[[COL["target_x"], COL["target_y"]]] + 0.5) * scale
    cv2.circle(big[-1], to_int(target), max(2, scale), (255, 255, 255), -1, cv2.LINE_AA)
    return np.concatenate(big[::2], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/pokesim_strip.png")
    parser.add_argument("--res", type=int, default=128)
    args = parser.parse_args()
    specs = clip_specs(100, SimConfig(resolution=args.res))
    arrays = render_chunk([specs[i] for i in ROWS], _scene_config(args.res))
    frames = arrays["frames"].reshape(len(ROWS), -1, args.res, args.res, 3)
    scale = max(1, 128 // args.res)
    rows = [annotate(frames[r], arrays["gt_poke"][r], scale) for r in range(len(ROWS))]
    cv2.imwrite(args.out, cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
