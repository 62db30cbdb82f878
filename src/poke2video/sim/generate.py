"""`poke2video simulate`: write a PokeSim dataset in the standard store format, plus ground truth.

Layout: clips are grouped into chunk "videos" of `chunk_clips` clips, T + 1 frames each, back to back;
clip c of a chunk starts at frame c (T + 1) and is its own split segment. The first 80% of the clips
form `train`, the next 10% `test` (train and test draw from disjoint seed streams) and the last 10%
`test_unseen`, made only of held-out species. In every split, every tenth clip (starting with the
first) is a background poke: the poke lands on the background and nothing moves.

`max_pokes` K > 1 / `max_pins` P > 0: object clips push 1..K points at once and hold 0..P still
(scene.py says how they are drawn, physics.py what a pin holds). The defaults, 1 and 0, write the same
bytes as before these options existed: no gt_pokes or gt_pins arrays and no trace of them in the manifest.
"""
from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import sys
from dataclasses import asdict, dataclass, field

import cv2
from tqdm import tqdm

from poke2video.errors import UserError
from poke2video.sim.bodies import SPECIES, species_for
from poke2video.sim.physics import PhysicsConfig
from poke2video.sim.scene import (MAX_SIM_PINS, MAX_SIM_POKES, OBJECT_COLUMNS, PIN_COLUMNS, POKE_COLUMNS,
                                  ClipSpec, SceneConfig, render_chunk)

SIM_VERSION = 1
PR_SET_PDEATHSIG = 1   # linux/prctl.h: the signal a process gets when its parent dies
SPLITS = ("train", "test", "test_unseen")
KINDS = ("plants", "figures", "mixed")

GT_ARRAYS = {
    "gt_poke": "float32 [C, 10] per clip: " + ", ".join(POKE_COLUMNS) + " (pixels; target = the poked "
               "point at frame T; drag = target - source, or for a background poke the vector to feed a "
               "model while nothing moves; force in simulator units, its direction is the push)",
    "gt_track": "float32 [C, T+1, 2] the poked point's true position (x, y) in every frame",
    "gt_flow": "float16 [C, T+1, 2, H, W] exact flow from frame 0 to every frame over object pixels (0 elsewhere)",
    "gt_segments": "uint8 [C, T+1, H, W] segment id per pixel and frame: 0 background, s + 1 segment s; "
                   "object mask = gt_segments > 0",
    "gt_parents": "int16 [C, 48] parent segment of each segment: -1 the root (fixed), -2 unused",
    "gt_joints": "float32 [C, 48, 3] stiffness, damping, inertia of each joint (root and unused: 0)",
    "gt_object": "int16 [C, 4] per clip: " + ", ".join(OBJECT_COLUMNS) + " (kind 0 plant, 1 figure; "
                 "species indexes extra.pokesim.species)",
}
SEVERAL_ARRAYS = {   # written only by --max-pokes above 1 or --max-pins above 0
    "gt_pokes": "float32 [C, K, 10] every poke of a clip (K = --max-pokes), pushed at once, columns as gt_poke's; "
                "row 0 is gt_poke; unused rows are zeros with segment -1",
    "gt_pins": "float32 [C, P, 3] every pin of a clip (P = --max-pins): " + ", ".join(PIN_COLUMNS) + " (pixels; "
               "the pinned segment and every joint on its path from the root are locked, so the pixel stays "
               "still); unused rows are zeros with segment -1",
}


@dataclass(frozen=True)
class SimConfig:
    resolution: int = 64
    seed: int = 0
    kind: str = "mixed"
    test_fraction: float = 0.1
    unseen_fraction: float = 0.1
    background_every: int = 10      # clip j of a split is a background poke when j % background_every == 0
    procedural: bool = False        # train clips draw a made-up species each (bodies.procedural_species)
    chunk_clips: int = 100
    scene: SceneConfig = field(default_factory=SceneConfig)


def split_sizes(clips: int, config: SimConfig) -> dict[str, int]:
    """Clips per split: test and test_unseen get their fraction (at least one each from 3 clips on)."""
    floor = 1 if clips >= 3 else 0
    test = max(floor, round(clips * config.test_fraction))
    unseen = max(floor, round(clips * config.unseen_fraction))
    return {"train": clips - test - unseen, "test": test, "test_unseen": unseen}


def clip_specs(clips: int, config: SimConfig) -> list[ClipSpec]:
    """Every clip's seed, species pool and background flag, in dataset order (train, test, test_unseen)."""
    specs = []
    for code, (split, count) in enumerate(split_sizes(clips, config).items()):
        pool = tuple(species_for(config.kind, held_out=split == "test_unseen"))
        for j in range(count):
            specs.append(ClipSpec((config.seed, code, j), pool, j % config.background_every == 0,
                                  procedural=config.procedural and split == "train"))
    return specs


def store_clip_spec(manifest: dict, video: int, row: int) -> tuple[ClipSpec, SceneConfig]:
    """The spec and scene of clip `row` of store video `video` of a PokeSim store (its manifest), from the
    options the store was simulated with: enough to simulate that clip again (`scene.repoke`)."""
    header = manifest.get("pokesim")
    if not isinstance(header, dict) or header.get("version") != SIM_VERSION:
        raise UserError(f"not a PokeSim store of version {SIM_VERSION} (simulate writes one)")
    raw = dict(header["config"])
    scene = dict(raw.pop("scene"))
    physics = PhysicsConfig(**scene.pop("physics"))
    scene = SceneConfig(physics=physics, **{k: tuple(v) if isinstance(v, list) else v for k, v in scene.items()})
    config = SimConfig(scene=scene, **raw)
    index = video * config.chunk_clips + row
    if not 0 <= index < header["clips"]:
        raise UserError(f"no clip {row} in video {video} of this store")
    return clip_specs(header["clips"], config)[index], scene


def _scene_config(resolution: int, sway: float = 0.0, max_pokes: int = 1, max_pins: int = 0) -> SceneConfig:
    return SceneConfig(resolution=resolution, supersample=3 if resolution <= 128 else 2,
                       physics=PhysicsConfig(sway=sway), max_pokes=max_pokes, max_pins=max_pins)


def _check_counts(max_pokes: int, max_pins: int) -> None:
    if not 1 <= max_pokes <= MAX_SIM_POKES:
        raise UserError(f"--max-pokes must be between 1 and {MAX_SIM_POKES}, got {max_pokes}")
    if not 0 <= max_pins <= MAX_SIM_PINS:
        raise UserError(f"--max-pins must be between 0 and {MAX_SIM_PINS}, got {max_pins}")


def _header_config(config: SimConfig) -> dict:
    """The options as the manifest keeps them; the pokes' and pins' counts only when not the defaults, so a
    store simulated with the defaults keeps the bytes it had before they existed."""
    raw = asdict(config)
    if not config.scene.several:
        del raw["scene"]["max_pokes"], raw["scene"]["max_pins"]
    return raw


def _check_options(clips: int, resolution: int, seed: int, kind: str, workers: int, sway: float) -> None:
    if kind not in KINDS:
        raise UserError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not 32 <= resolution <= 512:
        raise UserError(f"--res must be between 32 and 512 pixels (64 or 128 are usual), got {resolution}")
    if seed < 0:
        raise UserError(f"--seed must be zero or positive, got {seed}")
    if not 0.0 <= sway <= 0.1:
        raise UserError(f"--sway must be between 0 and 0.1 radians, got {sway}")
    if clips < 1 or workers < 1:
        raise UserError("--clips and --workers must be at least 1")


def _write_chunk(job) -> dict:
    writer, index, specs, scene = job
    cv2.setNumThreads(1)
    arrays = render_chunk(specs, scene)
    return writer.add_video(index, arrays, {"name": f"pokesim-{index:06d}", "clips": len(specs)})


def simulate_dataset(out, clips: int, resolution: int = 64, seed: int = 0, kind: str = "mixed",
                     workers: int = 1, overwrite: bool = False, chunk_clips: int = 100, sway: float = 0.0,
                     procedural: bool = False, max_pokes: int = 1, max_pins: int = 0):
    """Generate `clips` PokeSim clips into the store at `out`; resumes an unfinished run with the same options.

    `sway` > 0 adds ambient sway (radians) to every joint, poked or not; off by default. `procedural`: the
    train split's objects are of made-up species, one per clip (the test splits keep the named species).
    `max_pokes`, `max_pins`: object clips push 1..max_pokes points and hold 0..max_pins still.
    """
    from poke2video.data.store import StoreWriter

    _check_options(clips, resolution, seed, kind, workers, sway)
    _check_counts(max_pokes, max_pins)
    config = SimConfig(resolution=resolution, seed=seed, kind=kind, chunk_clips=chunk_clips,
                       scene=_scene_config(resolution, sway, max_pokes, max_pins), procedural=procedural)
    frames_per_clip = config.scene.physics.frames
    header = {"resolution": resolution, "clip_length": frames_per_clip - 1, "flow_method": "ground-truth",
              "preset": "pokesim", "pokesim": {"version": SIM_VERSION, "clips": clips, "config": _header_config(config)}}
    writer = StoreWriter(out, header, overwrite=overwrite)
    specs = clip_specs(clips, config)
    chunks = [specs[k:k + config.chunk_clips] for k in range(0, clips, config.chunk_clips)]
    records = {k: writer.completed(k) for k in range(len(chunks))}
    jobs = [(writer, k, chunks[k], config.scene) for k in range(len(chunks)) if records[k] is None]
    done = sum(len(chunks[k]) for k, record in records.items() if record is not None)
    with tqdm(total=clips, initial=done, unit="clip", desc="simulate") as bar:
        for record in _run(jobs, workers):
            records[int(record["name"].rsplit("-", 1)[1])] = record
            bar.update(record["clips"])
    return writer.finalize([records[k] for k in range(len(chunks))], _splits(clips, config, frames_per_clip),
                           extra=_extra(clips, config))


def _run(jobs, workers: int):
    if workers == 1 or len(jobs) <= 1:
        yield from map(_write_chunk, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), _die_with_parent,
                                                   (os.getpid(),)) as pool:
        yield from pool.imap_unordered(_write_chunk, jobs)


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: on Linux the kernel kills the worker when `simulate` dies, even by SIGKILL, so no
    orphan goes on writing a chunk beside the run that resumes it."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:   # the parent died before the request took hold
        os._exit(1)


def _splits(clips: int, config: SimConfig, frames_per_clip: int) -> dict[str, list[list[int]]]:
    splits, first = {}, 0
    for split, count in split_sizes(clips, config).items():
        splits[split] = [[i // config.chunk_clips, (i % config.chunk_clips) * frames_per_clip,
                          (i % config.chunk_clips + 1) * frames_per_clip] for i in range(first, first + count)]
        first += count
    return splits


def _extra(clips: int, config: SimConfig) -> dict:
    sizes = split_sizes(clips, config)
    backgrounds = {s: math.ceil(n / config.background_every) for s, n in sizes.items()}
    return {"pokesim": {
        "version": SIM_VERSION, "kind": config.kind, "seed": config.seed, "clips": clips,
        "split_clips": sizes, "background_clips": backgrounds,
        "background_rule": f"clip j of each split is a background poke when j % {config.background_every} == 0",
        "chunk_clips": config.chunk_clips,
        "species": [{"name": s.name, "kind": s.kind, "held_out": s.held_out, "omega": s.omega,
                     "damping_ratio": s.damping_ratio, "thickness": s.thickness} for s in SPECIES],
        "arrays": {**GT_ARRAYS, **(SEVERAL_ARRAYS if config.scene.several else {})},
        **({"max_pokes": config.scene.max_pokes, "max_pins": config.scene.max_pins} if config.scene.several else {}),
    }}
