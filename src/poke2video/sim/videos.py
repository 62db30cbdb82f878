"""PokeSim clips as plain video files: what a user's camera would give, with no ground truth at all.

    simulate_videos("videos/", clips=2000, seed=4)     # videos/pokesim-000000.mp4 ...
    # then: poke2video prepare videos/ --out data/from-video   (flow by the project's own estimator)

Every clip is one of the train split's objects (the species a model may learn from, or made-up ones with
`procedural`) poked once, written as its own H.264 file of T + 1 frames. Nothing else is written: no poke,
flow, mask or split, so a model trained on the prepared videos learns as it would from real footage, and
can then be scored against the simulator's truth on a PokeSim store of another seed.
"""
from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from poke2video.errors import UserError
from poke2video.export import write_video
from poke2video.sim.bodies import species_for
from poke2video.sim.generate import KINDS, SimConfig, _scene_config
from poke2video.sim.scene import ClipSpec, render_chunk

VIDEO_FPS = 8.0
CHUNK_CLIPS = 50   # clips rendered together before their files are written


def simulate_videos(out, clips: int, resolution: int = 64, seed: int = 0, kind: str = "mixed",
                    procedural: bool = False) -> Path:
    """Write `clips` poked objects as `out/pokesim-NNNNNN.mp4`; files already there are kept (a rerun resumes)."""
    if kind not in KINDS:
        raise UserError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if clips < 1:
        raise UserError("--clips must be at least 1")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    config = SimConfig(resolution=resolution, seed=seed, kind=kind, scene=_scene_config(resolution),
                       procedural=procedural)
    pool = tuple(species_for(kind, held_out=False))
    paths = [out / f"pokesim-{j:06d}.mp4" for j in range(clips)]
    todo = [j for j in range(clips) if not paths[j].is_file()]
    with tqdm(total=clips, initial=clips - len(todo), unit="clip", desc="simulate videos") as bar:
        for start in range(0, len(todo), CHUNK_CLIPS):
            chunk = todo[start:start + CHUNK_CLIPS]
            specs = [ClipSpec((config.seed, 0, j), pool, False, procedural=procedural) for j in chunk]
            frames = render_chunk(specs, config.scene)["frames"]          # [C (T+1), H, W, 3]
            per_clip = len(frames) // len(chunk)
            for k, j in enumerate(chunk):
                write_video(paths[j], frames[k * per_clip:(k + 1) * per_clip], VIDEO_FPS)
            bar.update(len(chunk))
    return out
