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

from poke2video.data.video import source_fps
from poke2video.errors import UserError
from poke2video.export import write_video
from poke2video.sim.bodies import species_for
from poke2video.sim.generate import KINDS, SimConfig, _scene_config
from poke2video.sim.physics import PhysicsConfig
from poke2video.sim.scene import ClipSpec, render_video_frames

VIDEO_FPS = 8.0
CHUNK_CLIPS = 50   # clips rendered together before their files are written
# video frames per simulator frame step: the divisors of its integration substeps
FRAMES_PER_STEP = tuple(k for k in range(1, PhysicsConfig.substeps + 1) if PhysicsConfig.substeps % k == 0)


def simulate_videos(out, clips: int, resolution: int = 64, seed: int = 0, kind: str = "mixed",
                    procedural: bool = False, frames_per_step: int = 1) -> Path:
    """Write `clips` poked objects as `out/pokesim-NNNNNN.mp4`; files already there are kept (a rerun resumes;
    one at another frame rate is refused).

    `frames_per_step` > 1 draws that many video frames per simulator frame step, at that many times the
    frame rate (the same motion seen by a faster camera); `prepare --stride frames_per_step` keeps the
    store's frames, and `--flow-every-frame` estimates the flow through the ones in between."""
    if kind not in KINDS:
        raise UserError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if clips < 1:
        raise UserError("--clips must be at least 1")
    if frames_per_step not in FRAMES_PER_STEP:
        raise UserError(f"--frames-per-step must be one of {', '.join(map(str, FRAMES_PER_STEP))}, got {frames_per_step}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    config = SimConfig(resolution=resolution, seed=seed, kind=kind, scene=_scene_config(resolution),
                       procedural=procedural)
    pool = tuple(species_for(kind, held_out=False))
    paths = [out / f"pokesim-{j:06d}.mp4" for j in range(clips)]
    written = [path.is_file() for path in paths]
    todo = [j for j, there in enumerate(written) if not there]
    if any(written):
        _check_frame_rate(paths[written.index(True)], VIDEO_FPS * frames_per_step)
    with tqdm(total=clips, initial=clips - len(todo), unit="clip", desc="simulate videos") as bar:
        for start in range(0, len(todo), CHUNK_CLIPS):
            chunk = todo[start:start + CHUNK_CLIPS]
            specs = [ClipSpec((config.seed, 0, j), pool, False, procedural=procedural) for j in chunk]
            for j, frames in zip(chunk, render_video_frames(specs, config.scene, frames_per_step)):
                write_video(paths[j], frames, VIDEO_FPS * frames_per_step)
            bar.update(len(chunk))
    return out


def _check_frame_rate(path: Path, fps: float) -> None:
    """Refuse to resume into a folder whose videos were written at another frame rate (another
    `frames_per_step`): one store would mix clips of two speeds."""
    found = source_fps(path)
    if found is None or abs(found - fps) > 1e-3:
        shown = "an unknown rate" if found is None else f"{found:g} fps"
        raise UserError(f"{path} is at {shown}, where these clips would be {fps:g} fps "
                        "(--frames-per-step); write them to another --out")
