"""Write docs/photo_sheet.png: photographs poked with a model, so a reader sees what to expect on photos.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/photo_sheet.py [--checkpoint CKPT] [--out docs/photo_sheet.png]

The photos are scikit-image's sample photographs (installed with the test dependencies), each scaled to
`--side` px on its longer side and poked once on an object (the pokes below, as fractions of the photo's
width and height). Per photo a row: the photo with the poke drawn (arrow to the target), frames 3, 6 and
10 of `Poker.animate` at the photo's size, and how much each pixel changed by frame 10 (white: 64/255
or more). Without --checkpoint the bundled model pokes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from poke2video.export import draw_poke_overlay
from poke2video.poker import Poker

PHOTOS = {   # scikit-image photo: (source, target) as fractions of (width, height)
    "astronaut": ((0.47, 0.26), (0.55, 0.22)),
    "chelsea": ((0.58, 0.38), (0.66, 0.32)),
    "coffee": ((0.50, 0.45), (0.60, 0.42)),
    "rocket": ((0.50, 0.45), (0.50, 0.36)),
}
FRAMES_SHOWN = (3, 6, 10)
TILE = 128           # px: the height of a row's tiles
GAP = 4
CHANGE_FULL = 64     # of 255: the change shown white


def load_photo(name: str, side: int) -> np.ndarray:
    """uint8 [H, W, 3]: scikit-image's photo `name`, scaled so its longer side is `side` px."""
    from skimage import data

    photo = Image.fromarray(getattr(data, name)()).convert("RGB")
    scale = side / max(photo.size)
    return np.asarray(photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.LANCZOS))


def photo_row(poker: Poker, photo: np.ndarray, poke: tuple) -> np.ndarray:
    """One row of tiles [TILE, w, 3]: the photo and the poke, the frames shown, the change by the last."""
    height, width = photo.shape[:2]
    source = (poke[0][0] * (width - 1), poke[0][1] * (height - 1))
    target = (poke[1][0] * (width - 1), poke[1][1] * (height - 1))
    video = poker.animate(photo, source, target)
    change = np.abs(video[-1].astype(np.int16) - photo).max(axis=-1)
    change_rgb = np.repeat(np.clip(change * (255 / CHANGE_FULL), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    tiles = [draw_poke_overlay(photo[None], source, target)[0]]
    tiles += [video[k - 1] for k in FRAMES_SHOWN if k <= len(video)] + [change_rgb]
    size = (round(width * TILE / height), TILE)
    gap = np.full((TILE, GAP, 3), 255, np.uint8)
    resized = [cv2.resize(tile, size, interpolation=cv2.INTER_AREA) for tile in tiles]
    return np.concatenate([part for tile in resized for part in (tile, gap)][:-1], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="model.safetensors (default: the bundled model)")
    parser.add_argument("--out", default="docs/photo_sheet.png")
    parser.add_argument("--side", type=int, default=384, help="px: each photo's longer side when poked")
    args = parser.parse_args()
    poker = Poker.load(args.checkpoint)
    rows = [photo_row(poker, load_photo(name, args.side), poke) for name, poke in PHOTOS.items()]
    width = max(row.shape[1] for row in rows)
    padded = [np.pad(row, ((0, GAP), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    Image.fromarray(np.concatenate(padded, axis=0)).save(Path(args.out), optimize=True)
    print(f"wrote {args.out}: {', '.join(PHOTOS)}")


if __name__ == "__main__":
    main()
