"""PokeSim dynamics: damped torsional springs at the joints of a rooted segment tree, driven by a poke.

Each joint s has a deflection angle theta_s from its rest angle. A poke pushes one point of one segment
with a constant world-space force for the first `force_frames` frames; every joint on the path from
the root to that segment feels the torque r x F (r from the joint to the poke point). A clip may have
several pokes at once: their torques add. A joint turns its whole subtree rigidly, so its inertia is the
subtree's moment about the joint (at rest); siblings move only through their shared parents. Spring
stiffness k = I omega^2 and damping c = 2 zeta omega I. Integration is semi-implicit Euler with
substeps (velocity first, implicit damping), time in frames. The root segment never moves.

Pins: a pinned point is held still, and the only way to hold a point of a rigid segment still in a tree
of turning joints (without solving for joints that cancel each other) is to hold its whole segment:
the pinned segment's own joint and the joint of every segment on the path from the root to it are
locked (their angle stays 0, whatever the torques). A locked joint turns nothing, so the pinned segment
and its ancestors stay at rest; the segments hanging off that path (side branches, and the segments
below the pinned one) still turn about their own joints, so the truth shows what a held part leaves
free to move. A poke on a segment whose whole path is locked would move nothing: scene.py never pins
a poked segment or one below it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poke2video.errors import UserError
from poke2video.sim.bodies import Body, ancestors, forward_kinematics, rest_pose

REFERENCE_OMEGA = 0.2   # radians per frame: the stiffness a poke's strength is calibrated against


@dataclass(frozen=True)
class PhysicsConfig:
    frames: int = 11            # frames per clip, T + 1 (frame 0 is the rest pose)
    substeps: int = 8           # integration steps per frame
    force_frames: float = 3.0   # the poke pushes during the first frames
    sway: float = 0.0           # ambient sway amplitude in radians; 0 = off (the default)
    sway_period: float = 14.0   # frames


@dataclass
class Pin:
    segment: int            # the pinned segment (its joint and its ancestors' joints are locked)
    local: np.ndarray       # float64 [2] the pinned point in the segment's frame


@dataclass
class Poke:
    segment: int            # the poked segment (0 and a zero force for a background poke)
    local: np.ndarray       # float64 [2] the poke point in the segment's frame
    force: np.ndarray       # float64 [2] world force (fraction of image side per frame^2 times inertia)


def joint_inertia(body: Body) -> np.ndarray:
    """float64 [S]: moment of inertia of each joint's subtree about the joint, at rest (mass = area)."""
    angle, joint = rest_pose(body)
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    centre = joint + body.length[:, None] / 2 * direction          # [S, 2]
    mass = body.length * body.width
    own = mass * (body.length ** 2 + body.width ** 2) / 12
    lever2 = ((centre[None, :, :] - joint[:, None, :]) ** 2).sum(-1)  # [joint, segment]
    return (ancestors(body.parent) * (mass[None] * lever2 + own[None])).sum(axis=1)


def point_world(body: Body, segment: int, local: np.ndarray) -> np.ndarray:
    """World position [2] of a point given in `segment`'s frame, at rest."""
    angle, joint = rest_pose(body)
    cos, sin = np.cos(angle[segment]), np.sin(angle[segment])
    return joint[segment] + np.array([cos * local[0] - sin * local[1], sin * local[0] + cos * local[1]])


def world_to_local(body: Body, segment: int, point: np.ndarray) -> np.ndarray:
    angle, joint = rest_pose(body)
    cos, sin = np.cos(angle[segment]), np.sin(angle[segment])
    rel = np.asarray(point, float) - joint[segment]
    return np.array([cos * rel[0] + sin * rel[1], -sin * rel[0] + cos * rel[1]])


def locked_joints(body: Body, pins: list[Pin]) -> np.ndarray:
    """float64 [S]: 1 for every joint a pin holds (the pinned segments and their ancestors), else 0."""
    chain = ancestors(body.parent)
    locked = np.zeros(body.num_segments)
    for pin in pins:
        locked = np.maximum(locked, chain[:, pin.segment])
    return locked


def poke_force(body: Body, segment: int, local: np.ndarray, direction: np.ndarray, strength: float) -> np.ndarray:
    """Force [2] whose static deflection of the poke point would be about `strength` (image fractions)
    if every joint on the path had the reference frequency; stiffer objects therefore move less."""
    _, joint = rest_pose(body)
    path = np.nonzero(ancestors(body.parent)[:, segment])[0]
    path = path[path != 0]
    lever2 = ((point_world(body, segment, local)[None] - joint[path]) ** 2).sum(-1)
    compliance = (lever2 / joint_inertia(body)[path]).sum()
    unit = np.asarray(direction, float) / np.linalg.norm(direction)
    return unit * strength * REFERENCE_OMEGA ** 2 / compliance


class _Stack:
    """Bodies padded to a common segment count so a chunk of clips integrates in one set of arrays."""

    def __init__(self, bodies: list[Body], pokes: list[list[Poke]], pins: list[list[Pin]]):
        count, size = len(bodies), max(b.num_segments for b in bodies)
        self.parent = np.zeros((count, size), np.int64)
        self.offset = np.zeros((count, size, 2))
        self.rest = np.zeros((count, size))
        self.ancestor = np.zeros((count, size, size))
        self.inertia = np.ones((count, size))
        self.omega = np.zeros((count, size))
        self.zeta = np.zeros((count, size))
        self.movable = np.zeros((count, size))
        self.root = np.stack([b.root_xy for b in bodies])
        for i, body in enumerate(bodies):
            n = body.num_segments
            self.parent[i, :n] = np.maximum(body.parent, 0)
            self.offset[i, :n] = body.offset
            self.rest[i, :n] = body.rest_angle
            self.ancestor[i] = np.eye(size)
            self.ancestor[i, :n, :n] = ancestors(body.parent)
            self.inertia[i, :n] = joint_inertia(body)
            self.omega[i, :n] = body.omega
            self.zeta[i, :n] = body.species.damping_ratio
            self.movable[i, 1:n] = 1.0 - locked_joints(body, pins[i])[1:]
        self.stiffness = self.inertia * self.omega ** 2
        self.damping = 2 * self.zeta * self.omega * self.inertia
        self._set_pokes(pokes)

    def _set_pokes(self, pokes: list[list[Poke]]) -> None:
        """Each clip's pokes padded to the most any clip has with forceless pokes of the root: segment
        [B, K], local and force [B, K, 2], path [B, K, S] (the unlocked joints each poke turns)."""
        width = max(len(clip) for clip in pokes)
        padded = [clip + [Poke(0, np.zeros(2), np.zeros(2))] * (width - len(clip)) for clip in pokes]
        self.segment = np.array([[p.segment for p in clip] for clip in padded])
        self.local = np.stack([np.stack([p.local for p in clip]) for clip in padded])
        self.force = np.stack([np.stack([p.force for p in clip]) for clip in padded])
        rows = np.arange(len(pokes))[:, None]
        self.path = self.ancestor[rows, :, self.segment] * self.movable[:, None]        # [B, K, S]

    def pose(self, theta):
        return forward_kinematics(self.rest + theta, self.offset, self.parent, self.ancestor, self.root)

    def poke_point(self, angle, joint):
        """World position [B, K, 2] of each clip's poke points."""
        rows = np.arange(len(self.segment))[:, None]
        a, j = angle[rows, self.segment], joint[rows, self.segment]                 # [B, K], [B, K, 2]
        cos, sin = np.cos(a), np.sin(a)
        return j + np.stack([cos * self.local[..., 0] - sin * self.local[..., 1],
                             sin * self.local[..., 0] + cos * self.local[..., 1]], axis=-1)

    def torque(self, theta, time: float, config: PhysicsConfig):
        torque = np.zeros_like(theta)
        if time < config.force_frames:
            angle, joint = self.pose(theta)
            lever = self.poke_point(angle, joint)[:, :, None, :] - joint[:, None]       # [B, K, S, 2]
            force = self.force[:, :, None]                                              # [B, K, 1, 2]
            cross = lever[..., 0] * force[..., 1] - lever[..., 1] * force[..., 0]
            torque += (self.path * cross).sum(axis=1)
        if config.sway:
            phase = np.arange(theta.shape[1]) * 1.7
            torque += config.sway * self.stiffness * np.sin(2 * np.pi * time / config.sway_period + phase)
        return torque * self.movable


def simulate(bodies: list[Body], pokes: list[Poke] | list[list[Poke]], config: PhysicsConfig,
             pins: list[list[Pin]] | None = None, frames_per_step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Integrate a batch of poked bodies: `pokes` one per body, or a list per body (pushed at once);
    `pins` a list per body (None: no pins). `frames_per_step` > 1 also records the poses between frames,
    `frames_per_step - 1` of them evenly spaced in each frame step (it must divide `config.substeps`); the
    motion is the same, and every `frames_per_step`-th pose is the one recorded without them.

    Returns pose float64 [B, F, S, 3] (world angle, joint x, joint y per segment; S = the largest body,
    padding rows repeat the root; F = (frames - 1) * frames_per_step + 1) and track float64 [B, F, 2], the
    (first) poke point's world position; with lists of pokes [B, F, K, 2], every poke point's (K = the most
    pokes of a body).
    """
    if frames_per_step < 1 or config.substeps % frames_per_step:
        raise UserError(f"frames per step must divide the {config.substeps} integration substeps, got {frames_per_step}")
    several = all(isinstance(p, list) for p in pokes)
    stack = _Stack(bodies, pokes if several else [[p] for p in pokes], pins or [[] for _ in bodies])
    theta = np.zeros_like(stack.rest)
    velocity = np.zeros_like(stack.rest)
    h, record_every = 1.0 / config.substeps, config.substeps // frames_per_step
    poses, tracks = [], []

    def record():
        angle, joint = stack.pose(theta)
        poses.append(np.concatenate([angle[..., None], joint], axis=-1))
        tracks.append(stack.poke_point(angle, joint))

    record()
    for frame in range(1, config.frames):
        for sub in range(config.substeps):
            time = frame - 1 + sub * h
            drive = stack.torque(theta, time, config) - stack.stiffness * theta
            velocity = (velocity + h * drive / stack.inertia) / (1 + h * stack.damping / stack.inertia)
            theta = theta + h * velocity * stack.movable
            if (sub + 1) % record_every == 0:
                record()
    track = np.stack(tracks, axis=1)
    return np.stack(poses, axis=1), track if several else track[:, :, 0]
