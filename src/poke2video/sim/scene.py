"""One chunk of PokeSim clips: sample scenes and pokes, simulate, render, and compute the ground truth.

A chunk of C clips becomes one store "video" of C * (T + 1) frames, clip c occupying frames
[c (T + 1), (c + 1)(T + 1)). Every clip draws all its randomness from its own seed, so a clip's bytes
do not depend on the chunking of the work or on the number of worker processes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from poke2video.config import poke_size_for
from poke2video.sim.bodies import MAX_SEGMENTS, SPECIES, Body, Species, procedural_species, rest_pose, sample_body
from poke2video.sim.physics import PhysicsConfig, Poke, joint_inertia, poke_force, simulate, world_to_local
from poke2video.sim.render import Painter, make_background, rigid_flow, to_pixels

POKE_COLUMNS = ("x", "y", "target_x", "target_y", "drag_x", "drag_y", "force_x", "force_y",
                "segment", "is_background")
OBJECT_COLUMNS = ("kind", "species", "num_segments", "is_background")


@dataclass(frozen=True)
class SceneConfig:
    resolution: int = 64
    supersample: int = 3
    strength: tuple[float, float] = (0.15, 0.36)    # static deflection at the reference stiffness, image fractions
    background_drag: tuple[float, float] = (2.0, 8.0)   # pixels at 64 px: the poke a model gets on background
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)


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


def _choose_object_pixel(rng, segments: np.ndarray) -> tuple[int, np.ndarray]:
    """A movable segment (uniform over the visible ones) and an interior pixel (x, y) of it."""
    padded = np.pad(segments, 1, mode="edge")
    interior = ((padded[1:-1, :-2] == segments) & (padded[1:-1, 2:] == segments)
                & (padded[:-2, 1:-1] == segments) & (padded[2:, 1:-1] == segments))
    visible = np.unique(segments[segments > 1])
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
    segment, source = _choose_object_pixel(rng, segments[0])
    local = world_to_local(body, segment, (source + 0.5) / res)
    normal = angle[segment] + np.pi / 2 + rng.uniform(-0.6, 0.6) + np.pi * (rng.random() < 0.5)
    force = poke_force(body, segment, local, np.array([np.cos(normal), np.sin(normal)]),
                       rng.uniform(*config.strength))
    return _Clip(body, backdrop, painter, frame, segments, Poke(segment, local, force), source, np.zeros(2))


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


def _simulate_inside(clips: list[_Clip], config: SceneConfig, attempts: int = 4):
    """Simulate; a clip whose object would leave the frame is re-run with half the force (deterministic)."""
    pose, track = simulate([c.body for c in clips], [c.poke for c in clips], config.physics)
    for _ in range(attempts):
        outside = [i for i, c in enumerate(clips) if not c.painter.fits(pose[i, :, :c.body.num_segments])]
        if not outside:
            break
        for i in outside:
            clips[i].poke.force = clips[i].poke.force / 2
        redo = [clips[i] for i in outside]
        pose_redo, track_redo = simulate([c.body for c in redo], [c.poke for c in redo], config.physics)
        for row, i in enumerate(outside):
            size = pose_redo.shape[2]
            pose[i, :, :size], track[i] = pose_redo[row], track_redo[row]
    return pose, track


def _draw(clip: _Clip, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A clip's frames [T+1, H, W, 3] and segment ids [T+1, H, W] for its poses `world` [T+1, S, ...]
    (frame 0, the rest pose, already drawn at setup)."""
    rest_frames, rest_segments = clip.painter.draw(world[1:], clip.backdrop)
    return (np.concatenate([clip.first_frame, rest_frames]), np.concatenate([clip.first_segments, rest_segments]))


def render_chunk(specs: list[ClipSpec], config: SceneConfig) -> dict[str, np.ndarray]:
    """All store arrays (core and gt_*) of one chunk of clips."""
    res, frames_per_clip = config.resolution, config.physics.frames
    clips = [_setup_clip(spec, config) for spec in specs]
    pose, track = _simulate_inside(clips, config)
    out = {name: [] for name in ("frames", "gt_segments", "gt_flow", "motion", "gt_track", "gt_poke",
                                 "gt_parents", "gt_joints", "gt_object")}
    for i, (clip, spec) in enumerate(zip(clips, specs)):
        size = clip.body.num_segments
        world = pose[i, :, :size]
        frames, segments = _draw(clip, world)
        pixel_pose = to_pixels(world, res)
        flows = rigid_flow(np.concatenate([np.repeat(segments[:1], frames_per_clip, 0), segments[:-1]]),
                           np.concatenate([np.repeat(pixel_pose[:1], frames_per_clip, 0), pixel_pose[:-1]]),
                           np.concatenate([pixel_pose, pixel_pose[1:]]))
        gt_flow, step_flow = flows[:frames_per_clip], flows[frames_per_clip:]
        motion = np.sqrt((step_flow ** 2).sum(axis=1)).mean(axis=(1, 2))
        out["motion"].append(np.append(motion, 0.0) if i + 1 < len(clips) else motion)
        pixel_track = track[i] * res - 0.5 if not spec.background else np.repeat(clip.source[None], frames_per_clip, 0)
        drag = pixel_track[-1] - clip.source if not spec.background else clip.drag
        out["gt_poke"].append(np.concatenate([clip.source, pixel_track[-1], drag, clip.poke.force,
                                              [clip.poke.segment, float(spec.background)]]))
        parents, joints = _joint_table(clip.body)
        kind = 0 if clip.body.species.kind == "plant" else 1
        species = SPECIES.index(clip.body.species) if clip.body.species in SPECIES else -1   # -1: procedural
        out["gt_object"].append([kind, species, size, int(spec.background)])
        for name, value in (("frames", frames), ("gt_segments", segments), ("gt_flow", gt_flow),
                            ("gt_track", pixel_track), ("gt_parents", parents), ("gt_joints", joints)):
            out[name].append(value)
    return _assemble(out, len(clips), frames_per_clip)


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
        drags.append(track[i, -1] * config.resolution - 0.5 - clip.source)
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
    }
