"""One chunk of PokeSim clips: sample scenes and pokes, simulate, render, and compute the ground truth.

A chunk of C clips becomes one store "video" of C * (T + 1) frames, clip c occupying frames
[c (T + 1), (c + 1)(T + 1)). Every clip draws all its randomness from its own seed, so a clip's bytes
do not depend on the chunking of the work or on the number of worker processes.

Several pokes and pins (`SceneConfig.max_pokes` K > 1, `max_pins` P > 0): an object clip draws after its
first poke (drawn exactly as with one poke, so K = 1, P = 0 gives today's bytes) a count of 1..K pokes,
each on a visible segment no other poke of the clip pushes, then 0..P pins, each on a visible movable
segment that is not poked and has no poked segment on its path from the root (a pin there would lock
the poke, physics.py). A clip whose object has fewer such segments gets fewer. Background clips keep
one poke and no pin. `gt_pokes` and `gt_pins` hold them; they are written only when K > 1 or P > 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from poke2video.config import poke_size_for
from poke2video.sim.bodies import (MAX_SEGMENTS, SPECIES, Body, Species, ancestors, procedural_species, rest_pose,
                                   sample_body)
from poke2video.sim.physics import (PhysicsConfig, Pin, Poke, joint_inertia, poke_force, simulate,
                                    world_to_local)
from poke2video.sim.render import Painter, make_background, rigid_flow, to_pixels

POKE_COLUMNS = ("x", "y", "target_x", "target_y", "drag_x", "drag_y", "force_x", "force_y",
                "segment", "is_background")
OBJECT_COLUMNS = ("kind", "species", "num_segments", "is_background")
PIN_COLUMNS = ("x", "y", "segment")     # gt_pins; an unused row has segment -1
MAX_SIM_POKES = 8                       # simulate --max-pokes and --max-pins go up to these
MAX_SIM_PINS = 8


@dataclass(frozen=True)
class SceneConfig:
    resolution: int = 64
    supersample: int = 3
    strength: tuple[float, float] = (0.15, 0.36)    # static deflection at the reference stiffness, image fractions
    background_drag: tuple[float, float] = (2.0, 8.0)   # pixels at 64 px: the poke a model gets on background
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    max_pokes: int = 1      # an object clip pushes 1..max_pokes points on different segments at once
    max_pins: int = 0       # and holds 0..max_pins points still

    @property
    def several(self) -> bool:
        """Whether clips may have more than one poke or any pin (then gt_pokes and gt_pins are written)."""
        return self.max_pokes > 1 or self.max_pins > 0


@dataclass(frozen=True)
class ClipSpec:
    seed: tuple[int, ...]       # entropy of the clip's random generator
    species: tuple[Species, ...]  # the species it may draw from
    background: bool            # poke the background: nothing moves
    procedural: bool = False    # a species made up for this clip (bodies.procedural_species), of a pool's kind


@dataclass
class _Clip:
    body: Body
    backdrop: np.ndarray
    painter: Painter
    first_frame: np.ndarray
    first_segments: np.ndarray
    poke: Poke
    source: np.ndarray          # [2] poked pixel
    drag: np.ndarray            # [2] the poke vector a background clip pretends
    more_pokes: list[Poke] = field(default_factory=list)        # pushed at once with `poke`
    more_sources: list[np.ndarray] = field(default_factory=list)  # their pixels [2]
    pins: list[Pin] = field(default_factory=list)
    pin_pixels: list[np.ndarray] = field(default_factory=list)    # [2] each

    @property
    def pokes(self) -> list[Poke]:
        return [self.poke, *self.more_pokes]

    @property
    def sources(self) -> list[np.ndarray]:
        return [self.source, *self.more_sources]


def _choose_object_pixel(rng, segments: np.ndarray, allowed=None) -> tuple[int, np.ndarray]:
    """A movable segment (uniform over the visible ones, or those of them in `allowed`, segment indices) and
    an interior pixel (x, y) of it."""
    padded = np.pad(segments, 1, mode="edge")
    interior = ((padded[1:-1, :-2] == segments) & (padded[1:-1, 2:] == segments)
                & (padded[:-2, 1:-1] == segments) & (padded[2:, 1:-1] == segments))
    visible = np.unique(segments[segments > 1])
    if allowed is not None:
        visible = visible[np.isin(visible - 1, list(allowed))]
    segment_id = int(rng.choice(visible))
    candidates = np.argwhere((segments == segment_id) & interior)
    if len(candidates) == 0:
        candidates = np.argwhere(segments == segment_id)
    y, x = candidates[rng.integers(len(candidates))]
    return segment_id - 1, np.array([x, y], float)


def _choose_background_pixel(rng, segments: np.ndarray, resolution: int) -> np.ndarray:
    near_object = cv2.dilate((segments > 0).astype(np.uint8), np.ones((7, 7), np.uint8))
    margin = poke_size_for(resolution) // 2 + 1
    allowed = near_object == 0
    allowed[:margin], allowed[-margin:], allowed[:, :margin], allowed[:, -margin:] = False, False, False, False
    y, x = np.argwhere(allowed)[rng.integers(int(allowed.sum()))]
    return np.array([x, y], float)


def _setup_clip(spec: ClipSpec, config: SceneConfig) -> _Clip:
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed))
    res = config.resolution
    species = spec.species[int(rng.integers(len(spec.species)))]
    body = sample_body(rng, procedural_species(rng, species.kind) if spec.procedural else species)
    backdrop = make_background(rng, res, config.supersample)
    painter = Painter(body, res, config.supersample)
    angle, joint = rest_pose(body)
    first_pose = np.concatenate([angle[:, None], joint], axis=1)[None]
    frame, segments = painter.draw(first_pose, backdrop)
    if spec.background:
        source = _choose_background_pixel(rng, segments[0], res)
        turn = rng.uniform(0, 2 * np.pi)
        drag = rng.uniform(*config.background_drag) * res / 64 * np.array([np.cos(turn), np.sin(turn)])
        poke = Poke(0, np.zeros(2), np.zeros(2))
        return _Clip(body, backdrop, painter, frame, segments, poke, source, drag)
    poke, source = _object_poke(rng, body, angle, segments[0], config)
    clip = _Clip(body, backdrop, painter, frame, segments, poke, source, np.zeros(2))
    if config.max_pokes > 1:
        _add_pokes(rng, clip, angle, config)
    if config.max_pins > 0:
        _add_pins(rng, clip, config)
    return clip


def _object_poke(rng, body: Body, angle: np.ndarray, segments: np.ndarray, config: SceneConfig,
                 allowed=None) -> tuple[Poke, np.ndarray]:
    """A push of an interior pixel of a visible segment (of `allowed`, if given) roughly across the segment,
    with a strength drawn from `config.strength` -> (Poke, source pixel [2])."""
    segment, source = _choose_object_pixel(rng, segments, allowed)
    local = world_to_local(body, segment, (source + 0.5) / config.resolution)
    normal = angle[segment] + np.pi / 2 + rng.uniform(-0.6, 0.6) + np.pi * (rng.random() < 0.5)
    force = poke_force(body, segment, local, np.array([np.cos(normal), np.sin(normal)]),
                       rng.uniform(*config.strength))
    return Poke(segment, local, force), source


def _visible_segments(segments: np.ndarray) -> set[int]:
    """The movable segments (indices) with a pixel in frame 0's segment map."""
    return {int(v) - 1 for v in np.unique(segments[segments > 1])}


def _add_pokes(rng, clip: _Clip, angle: np.ndarray, config: SceneConfig) -> None:
    """Up to max_pokes - 1 more pokes, each on a visible segment that no poke of the clip pushes yet."""
    wanted = int(rng.integers(1, config.max_pokes + 1))
    for _ in range(wanted - 1):
        free = _visible_segments(clip.first_segments[0]) - {p.segment for p in clip.pokes}
        if not free:
            return
        poke, source = _object_poke(rng, clip.body, angle, clip.first_segments[0], config, free)
        clip.more_pokes.append(poke)
        clip.more_sources.append(source)


def _add_pins(rng, clip: _Clip, config: SceneConfig) -> None:
    """0..max_pins pins, each on a visible segment not pinned yet whose path from the root (itself
    included) holds no poked segment."""
    wanted = int(rng.integers(0, config.max_pins + 1))
    chain = ancestors(clip.body.parent)                      # chain[s, t]: s is t or above it
    poked = [p.segment for p in clip.pokes]
    for _ in range(wanted):
        taken = {p.segment for p in clip.pins}
        free = {s for s in _visible_segments(clip.first_segments[0]) - taken
                if not any(chain[q, s] for q in poked)}
        if not free:
            return
        segment, pixel = _choose_object_pixel(rng, clip.first_segments[0], free)
        clip.pins.append(Pin(segment, world_to_local(clip.body, segment, (pixel + 0.5) / config.resolution)))
        clip.pin_pixels.append(pixel)


def _joint_table(body: Body) -> tuple[np.ndarray, np.ndarray]:
    """gt_parents int16 [MAX_SEGMENTS] (-1 root, -2 unused) and gt_joints float32 [MAX_SEGMENTS, 3]."""
    parents = np.full(MAX_SEGMENTS, -2, np.int16)
    parents[:body.num_segments] = body.parent
    inertia = joint_inertia(body)
    joints = np.zeros((MAX_SEGMENTS, 3), np.float32)
    joints[:body.num_segments, 0] = inertia * body.omega ** 2
    joints[:body.num_segments, 1] = 2 * body.species.damping_ratio * body.omega * inertia
    joints[:body.num_segments, 2] = inertia
    joints[0] = 0.0
    return parents, joints


def _simulate_inside(clips: list[_Clip], config: SceneConfig, attempts: int = 4, frames_per_step: int = 1):
    """Simulate -> (pose [B, F, S, 3], tracks [B, F, K, 2] of every poke point); a clip whose object would
    leave the frame is re-run with all its forces halved (deterministic). `frames_per_step` as `simulate`'s."""
    pose, track = _integrate(clips, config, frames_per_step)
    for _ in range(attempts):
        outside = [i for i, c in enumerate(clips) if not c.painter.fits(pose[i, :, :c.body.num_segments])]
        if not outside:
            break
        for i in outside:
            for poke in clips[i].pokes:
                poke.force = poke.force / 2
        pose_redo, track_redo = _integrate([clips[i] for i in outside], config, frames_per_step)
        for row, i in enumerate(outside):
            size, count = pose_redo.shape[2], track_redo.shape[2]
            pose[i, :, :size], track[i, :, :count] = pose_redo[row], track_redo[row]
    return pose, track


def _integrate(clips: list[_Clip], config: SceneConfig, frames_per_step: int = 1):
    return simulate([c.body for c in clips], [c.pokes for c in clips], config.physics, [c.pins for c in clips],
                    frames_per_step)


def _draw(clip: _Clip, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A clip's frames [T+1, H, W, 3] and segment ids [T+1, H, W] for its poses `world` [T+1, S, ...]
    (frame 0, the rest pose, already drawn at setup)."""
    rest_frames, rest_segments = clip.painter.draw(world[1:], clip.backdrop)
    return (np.concatenate([clip.first_frame, rest_frames]), np.concatenate([clip.first_segments, rest_segments]))


def render_chunk(specs: list[ClipSpec], config: SceneConfig) -> dict[str, np.ndarray]:
    """All store arrays (core and gt_*) of one chunk of clips; gt_pokes and gt_pins when `config.several`."""
    res, frames_per_clip = config.resolution, config.physics.frames
    clips = [_setup_clip(spec, config) for spec in specs]
    pose, track = _simulate_inside(clips, config)
    names = ["frames", "gt_segments", "gt_flow", "motion", "gt_track", "gt_poke", "gt_parents", "gt_joints",
             "gt_object"] + (["gt_pokes", "gt_pins"] if config.several else [])
    out = {name: [] for name in names}
    for i, (clip, spec) in enumerate(zip(clips, specs)):
        size = clip.body.num_segments
        world = pose[i, :, :size]
        frames, segments = _draw(clip, world)
        gt_flow, motion = _clip_flows(segments, to_pixels(world, res), frames_per_clip)
        out["motion"].append(np.append(motion, 0.0) if i + 1 < len(clips) else motion)
        tracks = track[i] * res - 0.5                                        # [T+1, K, 2] pixels
        rows = _poke_rows(clip, spec, tracks)
        out["gt_poke"].append(rows[0])
        if config.several:
            out["gt_pokes"].append(_padded(rows, config.max_pokes, len(POKE_COLUMNS), POKE_COLUMNS.index("segment")))
            out["gt_pins"].append(_padded(_pin_rows(clip), config.max_pins, len(PIN_COLUMNS), PIN_COLUMNS.index("segment")))
        parents, joints = _joint_table(clip.body)
        kind = 0 if clip.body.species.kind == "plant" else 1
        species = SPECIES.index(clip.body.species) if clip.body.species in SPECIES else -1   # -1: procedural
        out["gt_object"].append([kind, species, size, int(spec.background)])
        first_track = tracks[:, 0] if not spec.background else np.repeat(clip.source[None], frames_per_clip, 0)
        for name, value in (("frames", frames), ("gt_segments", segments), ("gt_flow", gt_flow),
                            ("gt_track", first_track), ("gt_parents", parents), ("gt_joints", joints)):
            out[name].append(value)
    return _assemble(out, len(clips), frames_per_clip)


def render_video_frames(specs: list[ClipSpec], config: SceneConfig, frames_per_step: int = 1) -> list[np.ndarray]:
    """Each clip's frames alone, uint8 [(T * frames_per_step) + 1, H, W, 3]: with `frames_per_step` > 1 the
    poses between frames are drawn too (a faster camera on the same motion); every `frames_per_step`-th
    frame is the store's frame of that clip."""
    clips = [_setup_clip(spec, config) for spec in specs]
    pose, _ = _simulate_inside(clips, config, frames_per_step=frames_per_step)
    return [_draw(clip, pose[i, :, :clip.body.num_segments])[0] for i, clip in enumerate(clips)]


def _clip_flows(segments: np.ndarray, pixel_pose: np.ndarray, frames_per_clip: int) -> tuple[np.ndarray, np.ndarray]:
    """(exact flow from frame 0 to every frame [T+1, 2, H, W], mean step motion [T]) of one clip."""
    flows = rigid_flow(np.concatenate([np.repeat(segments[:1], frames_per_clip, 0), segments[:-1]]),
                       np.concatenate([np.repeat(pixel_pose[:1], frames_per_clip, 0), pixel_pose[:-1]]),
                       np.concatenate([pixel_pose, pixel_pose[1:]]))
    gt_flow, step_flow = flows[:frames_per_clip], flows[frames_per_clip:]
    return gt_flow, np.sqrt((step_flow ** 2).sum(axis=1)).mean(axis=(1, 2))


def _poke_rows(clip: _Clip, spec: ClipSpec, tracks: np.ndarray) -> np.ndarray:
    """float64 [pokes, len(POKE_COLUMNS)]: one gt_poke row per poke of the clip; `tracks` [T+1, K, 2] the
    poke points in pixels. A background clip's one row: its pixel as target, the drag it pretends."""
    if spec.background:
        return np.concatenate([clip.source, clip.source, clip.drag, clip.poke.force, [clip.poke.segment, 1.0]])[None]
    rows = [np.concatenate([source, tracks[-1, k], tracks[-1, k] - source, poke.force, [poke.segment, 0.0]])
            for k, (poke, source) in enumerate(zip(clip.pokes, clip.sources))]
    return np.stack(rows)


def _pin_rows(clip: _Clip) -> np.ndarray:
    """float64 [pins, len(PIN_COLUMNS)]: each pin's pixel and segment."""
    rows = [np.concatenate([pixel, [pin.segment]]) for pin, pixel in zip(clip.pins, clip.pin_pixels)]
    return np.stack(rows) if rows else np.zeros((0, len(PIN_COLUMNS)))


def _padded(rows: np.ndarray, count: int, columns: int, segment_column: int) -> np.ndarray:
    """`rows` followed by unused rows (zeros, segment -1) up to `count`."""
    padding = np.zeros((count - len(rows), columns))
    padding[:, segment_column] = -1
    return np.concatenate([rows.reshape(-1, columns), padding])


def repoke(spec: ClipSpec, config: SceneConfig, directions: np.ndarray, strengths: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """The object of an object-poke clip pushed again at its own point, once per push: directions [N, 2]
    (any length), strengths [N] (static deflections in image fractions, as `SceneConfig.strength`) ->
    (videos uint8 [N, T+1, H, W, 3], drags float64 [N, 2]: where the poked point truly is at frame T minus
    where it started, in pixels). What the simulator itself answers to other pokes of the same clip."""
    if spec.background:
        raise ValueError("repoke needs an object poke; this clip pokes the background")
    clips = []
    for direction, strength in zip(np.asarray(directions, float), np.asarray(strengths, float)):
        clip = _setup_clip(spec, config)
        clip.poke.force = poke_force(clip.body, clip.poke.segment, clip.poke.local, direction, strength)
        clips.append(clip)
    pose, track = _simulate_inside(clips, config)
    videos, drags = [], []
    for i, clip in enumerate(clips):
        videos.append(_draw(clip, pose[i, :, :clip.body.num_segments])[0])
        drags.append(track[i, -1, 0] * config.resolution - 0.5 - clip.source)
    return np.stack(videos), np.stack(drags)


def _assemble(out: dict[str, list], count: int, frames_per_clip: int) -> dict[str, np.ndarray]:
    gt_flow = np.stack(out["gt_flow"]).astype(np.float16)                  # [C, T+1, 2, H, W]
    return {
        "frames": np.concatenate(out["frames"]),                             # [C (T+1), H, W, 3]
        "starts": (np.arange(count) * frames_per_clip).astype(np.int32),     # [C]
        "flow": np.ascontiguousarray(gt_flow[:, -1]),                        # [C, 2, H, W]
        "motion": np.concatenate(out["motion"]).astype(np.float32),          # [C (T+1) - 1]
        "gt_flow": gt_flow,
        "gt_segments": np.stack(out["gt_segments"]),                         # [C, T+1, H, W]
        "gt_track": np.stack(out["gt_track"]).astype(np.float32),            # [C, T+1, 2]
        "gt_poke": np.stack(out["gt_poke"]).astype(np.float32),              # [C, 10]
        "gt_parents": np.stack(out["gt_parents"]),                           # [C, MAX_SEGMENTS]
        "gt_joints": np.stack(out["gt_joints"]),                             # [C, MAX_SEGMENTS, 3]
        "gt_object": np.array(out["gt_object"], np.int16),                   # [C, 4]
        **({"gt_pokes": np.stack(out["gt_pokes"]).astype(np.float32),        # [C, max_pokes, 10]
            "gt_pins": np.stack(out["gt_pins"]).astype(np.float32)}          # [C, max_pins, 3]
           if "gt_pokes" in out else {}),
    }
