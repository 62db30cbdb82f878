"""`poke2video demo`: poke a few PokeSim scenes with a model and write videos and a contact sheet.

Needs no data and no download: the scenes come from the simulator (`sim/examples.py`), with its own
pokes. For every scene it writes SCENE.mp4 and SCENE.gif (the image, then the model's frames, the poke
drawn on each, scaled up `DISPLAY_SCALE` times with nearest-neighbour pixels), and one
contact_sheet.png: per scene a row with the image and its poke followed by the model's frames, and
below it the simulator's true frames at the same times.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from poke2video.errors import UserError
from poke2video.export import draw_poke_overlay, write_video
from poke2video.fsutil import atomic_path, check_output
from poke2video import poker as poker_module
from poke2video.poker import Poker
from poke2video.sim.examples import ExampleScene, example_scenes

DISPLAY_SCALE = 4           # videos: 64 px scenes become 256 px
SHEET_SCALE = 2             # contact sheet tiles: 128 px
SCENE_RESOLUTION = 64
LABEL_WIDTH = 120
HEADER_HEIGHT = 18
TEXT_RGB = (20, 20, 20)
SHEET_RGB = (255, 255, 255)


def run_demo(out: str, checkpoint: str | None = None) -> dict:
    """Write the demo into folder `out` (created if missing); returns {"videos": [...], "sheet": path}."""
    poker = _load_poker(checkpoint)
    out_dir = _output_folder(out)
    started = time.perf_counter()
    scenes = example_scenes(SCENE_RESOLUTION)
    for name in [f"{s.name}{suffix}" for s in scenes for suffix in (".mp4", ".gif")] + ["contact_sheet.png"]:
        check_output(out_dir / name, folder=False)       # a folder in the way: refused before any file is written
    videos, rows = [], []
    for scene in tqdm(scenes, desc="demo", unit="scene"):
        generated = poker.animate(scene.image, scene.source, scene.target)   # at the scene's 64 px
        videos += _write_scene_videos(out_dir, scene, generated)
        rows.append((scene.name, _sheet_rows(scene, generated)))
    sheet = _write_sheet(out_dir / "contact_sheet.png", rows, poker.frames)
    _print_summary(out_dir, scenes, videos, sheet, time.perf_counter() - started)
    return {"videos": videos, "sheet": sheet}


def _load_poker(checkpoint: str | None) -> Poker:
    if checkpoint is None and not poker_module.DEFAULT_WEIGHTS.is_file():
        raise UserError(
            f"no bundled model ({poker_module.DEFAULT_WEIGHTS} is missing; reinstall poke2video), or train "
            "one on PokeSim and poke with it: "
            "poke2video simulate --out data/pokesim64 --clips 4000 --procedural && "
            "poke2video train --data data/pokesim64 --out runs/a --steps 2000 --in-memory && "
            "poke2video demo --checkpoint runs/a/model.safetensors")
    return Poker.load(checkpoint)


def _output_folder(out: str) -> Path:
    path = check_output(out, folder=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create --out folder {path}: {exc.strerror or exc}") from None
    return path


def _upscale(video: np.ndarray, scale: int) -> np.ndarray:
    return video.repeat(scale, axis=1).repeat(scale, axis=2)


def _scaled(xy, scale: int) -> tuple[float, float]:
    """Pixel-centre coordinates after a nearest-neighbour upscale by `scale`."""
    return tuple((v + 0.5) * scale - 0.5 for v in xy)


def scene_video(scene: ExampleScene, generated: np.ndarray, scale: int = DISPLAY_SCALE) -> np.ndarray:
    """uint8 [T + 1, S, S, 3]: the scene's image then the generated frames, upscaled, the poke drawn on each."""
    video = _upscale(np.concatenate([scene.image[None], generated]), scale)
    return draw_poke_overlay(video, _scaled(scene.source, scale), _scaled(scene.target, scale))


def _write_scene_videos(out_dir: Path, scene: ExampleScene, generated: np.ndarray) -> list[Path]:
    video = scene_video(scene, generated)
    return [write_video(out_dir / f"{scene.name}{suffix}", video) for suffix in (".mp4", ".gif")]


def true_frame_indices(model_frames: int, clip_length: int) -> list[int]:
    """Simulator frames shown under the model's frames 1..T: the same times when T equals the clip length,
    else spread evenly so the last one is the clip's last frame."""
    return [round(k * clip_length / model_frames) for k in range(1, model_frames + 1)]


def _sheet_rows(scene: ExampleScene, generated: np.ndarray) -> np.ndarray:
    """Two tile rows [2, T + 1, S, S, 3]: model (image + poke, frames) over simulator (image, true frames)."""
    source, target = _scaled(scene.source, SHEET_SCALE), _scaled(scene.target, SHEET_SCALE)
    model = _upscale(np.concatenate([scene.image[None], generated]), SHEET_SCALE)
    model[0] = draw_poke_overlay(model[:1], source, target)[0]
    truth = scene.frames[[0] + true_frame_indices(len(generated), len(scene.frames) - 1)]
    truth = _upscale(truth, SHEET_SCALE)
    true_target = _scaled(scene.true_target, SHEET_SCALE)
    truth[-1] = draw_poke_overlay(truth[-1:], true_target, true_target)[0]   # where the point truly is, a dot
    return np.stack([model, truth])


def _label(height: int, width: int, lines: list[str]) -> np.ndarray:
    tile = np.full((height, width, 3), SHEET_RGB, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(tile, line, (4, 16 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, TEXT_RGB, 1, cv2.LINE_AA)
    return tile


def _header(tile: int, frames: int) -> np.ndarray:
    cells = [_label(HEADER_HEIGHT, LABEL_WIDTH, [])]
    for k in range(frames + 1):
        cells.append(_label(HEADER_HEIGHT, tile, ["image + poke" if k == 0 else f"t = {k}"]))
    return np.concatenate(cells, axis=1)


def _write_sheet(path: Path, rows: list[tuple[str, np.ndarray]], frames: int) -> Path:
    tile = rows[0][1].shape[2]
    parts = [_header(tile, frames)]
    for name, pair in rows:
        for label, tiles in zip((f"{name}: model", "simulator"), pair):
            parts.append(np.concatenate([_label(tile, LABEL_WIDTH, [label])] + list(tiles), axis=1))
        parts.append(np.full((4, parts[-1].shape[1], 3), SHEET_RGB, np.uint8))
    with atomic_path(path) as tmp:
        Image.fromarray(np.concatenate(parts, axis=0)).save(tmp, format="PNG")
    return path


def _print_summary(out_dir: Path, scenes, videos: list[Path], sheet: Path, seconds: float) -> None:
    names = ", ".join(f"{s.name} ({'background poke' if s.background else s.species})" for s in scenes)
    print(f"poked {len(scenes)} PokeSim scenes in {seconds:.1f} s: {names}")
    print(f"  contact sheet: {sheet}   (per scene: the model's frames, the simulator's true frames below)")
    print(f"  videos:        {out_dir}/SCENE.mp4 and .gif ({len(videos)} files, the poke drawn as an arrow)")
    print("try next:")
    print("  poke2video poke --image YOUR.png --source X Y --target X Y --out poke.mp4 --overlay")
    print("  poke2video app        # drag on images in your browser: http://127.0.0.1:7860")
    print("  poke2video simulate --out data/pokesim64 --clips 4000 --procedural && "
          "poke2video train --data data/pokesim64 --out runs/a --steps 2000 --in-memory")
