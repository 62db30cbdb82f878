"""PokeSim bodies: procedural plants and figures as rooted trees of rigid segments.

World units are fractions of the image side, x right, y down; an angle of 0 points right and angles
grow clockwise on screen (the y axis points down). Segment 0 is the root: it is fixed in place.
Each segment s turns about its joint, which sits at `offset[s]` in its parent's frame (along the
parent's axis, across it). A segment's parts are filled polygons given in its own frame.

A species ties looks to physics: stiffer species are thicker and darker, softer ones thin and pale,
and every species has its own leaf shape or build, so a model can read dynamics from appearance.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_SEGMENTS = 48


@dataclass(frozen=True)
class Species:
    name: str
    kind: str                    # "plant" or "figure"
    held_out: bool               # only in the test_unseen split
    omega: float                 # natural frequency of the joints, radians per frame
    damping_ratio: float         # zeta of the damped torsional springs
    thickness: float             # width scale (thicker goes with stiffer)
    stem_colour: tuple[int, int, int]   # stems / skin
    part_colour: tuple[int, int, int]   # leaves / clothes
    leaf_shape: str = "round"    # plants: narrow, round, lobed, heart
    depth: tuple[int, int] = (2, 3)     # plants: branching depth range (inclusive)


SPECIES: tuple[Species, ...] = (
    Species("willow", "plant", False, 0.13, 0.15, 0.7, (150, 120, 80), (170, 210, 110), "narrow", (3, 4)),
    Species("fern", "plant", False, 0.16, 0.25, 0.8, (90, 130, 60), (60, 170, 70), "narrow", (3, 4)),
    Species("maple", "plant", False, 0.20, 0.30, 1.0, (110, 70, 50), (200, 80, 40), "lobed", (2, 3)),
    Species("oak", "plant", False, 0.23, 0.45, 1.3, (80, 55, 35), (40, 90, 40), "round", (2, 3)),
    Species("ivy", "plant", True, 0.19, 0.35, 1.05, (100, 90, 110), (70, 120, 150), "heart", (2, 4)),
    Species("jelly", "figure", False, 0.13, 0.20, 0.7, (240, 170, 190), (200, 120, 220)),
    Species("doll", "figure", False, 0.18, 0.30, 1.0, (230, 190, 160), (60, 110, 200)),
    Species("robot", "figure", False, 0.23, 0.50, 1.35, (150, 155, 165), (90, 95, 105)),
    Species("knight", "figure", True, 0.21, 0.40, 1.15, (210, 180, 80), (150, 40, 40)),
)


TRAIN_LEAF_SHAPES = ("narrow", "round", "lobed")   # the shapes of species that are not held out
OMEGA_RANGE = (0.11, 0.26)                          # natural frequencies of procedural species


def procedural_species(rng: np.random.Generator, kind: str) -> Species:
    """A species made up on the spot: stiffness, damping, build and colours drawn at random, with the
    look still tied to physics as in the named species (stiffer: thicker and darker). Never held out; its
    leaves take only the shapes of the species that are not held out."""
    stiffness = rng.uniform(0.0, 1.0)                                # 0 softest .. 1 stiffest
    omega = OMEGA_RANGE[0] + stiffness * (OMEGA_RANGE[1] - OMEGA_RANGE[0])
    value = 1.0 - 0.55 * stiffness + rng.uniform(-0.1, 0.1)          # brightness falls with stiffness

    def colour() -> tuple[int, int, int]:
        hue_rgb = rng.uniform(0.25, 1.0, 3)
        return tuple(int(v) for v in np.clip(255 * value * hue_rgb / hue_rgb.max(), 20, 250))

    low = int(rng.integers(2, 4))
    return Species(f"procedural-{kind}", kind, False, omega, rng.uniform(0.12, 0.5),
                   0.65 + 0.7 * stiffness + rng.uniform(-0.08, 0.08), colour(), colour(),
                   str(rng.choice(TRAIN_LEAF_SHAPES)), (low, low + int(rng.integers(0, 2))))


def species_for(kind: str, held_out: bool) -> list[Species]:
    kinds = ("plant", "figure") if kind == "mixed" else (kind.rstrip("s"),)
    return [s for s in SPECIES if s.kind in kinds and s.held_out == held_out]


@dataclass
class Part:
    segment: int
    polygons: list[np.ndarray]   # float64 [P, 2] each, (along, across) in the segment's frame
    colour: np.ndarray           # uint8 [3]
    z: int                       # draw order (low first)


@dataclass
class Body:
    species: Species
    parent: np.ndarray       # int32 [S], -1 for the root
    offset: np.ndarray       # float64 [S, 2] joint in the parent's frame (along, across); root: 0
    rest_angle: np.ndarray   # float64 [S] relative to the parent (the root's is absolute)
    length: np.ndarray       # float64 [S]
    width: np.ndarray        # float64 [S]
    omega: np.ndarray        # float64 [S] natural frequency of each joint, radians per frame
    root_xy: np.ndarray      # float64 [2] position of the root joint
    parts: list[Part] = field(default_factory=list)

    @property
    def num_segments(self) -> int:
        return len(self.parent)


def ancestors(parent: np.ndarray) -> np.ndarray:
    """float64 [S, S]: A[s, t] = 1 when s is t or an ancestor of t."""
    count = len(parent)
    matrix = np.zeros((count, count))
    for t in range(count):
        s = t
        while s >= 0:
            matrix[s, t] = 1.0
            s = parent[s]
    return matrix


def forward_kinematics(angle, offset, parent, ancestor, root_xy):
    """World angle [B, S] and joint position [B, S, 2] from relative angles [B, S] (rest + deflection).

    offset [B, S, 2], parent [B, S] (root/padding: any index, their offset is 0), ancestor [B, S, S],
    root_xy [B, 2].
    """
    world_angle = np.einsum("bs,bst->bt", angle, ancestor)
    parent_angle = np.take_along_axis(world_angle, np.maximum(parent, 0), axis=1)
    cos, sin = np.cos(parent_angle), np.sin(parent_angle)
    step = np.stack([cos * offset[..., 0] - sin * offset[..., 1],
                     sin * offset[..., 0] + cos * offset[..., 1]], axis=-1)
    joint = root_xy[:, None, :] + np.einsum("bsk,bst->btk", step, ancestor)
    return world_angle, joint


def sample_body(rng: np.random.Generator, species: Species) -> Body:
    """A random plant or figure of `species`, scaled and placed to stay inside the frame while it moves."""
    build = _plant_tree if species.kind == "plant" else _figure_tree
    tree = build(rng, species)
    body = Body(species=species, parent=np.array(tree["parent"], np.int32),
                offset=np.array(tree["offset"], float), rest_angle=np.array(tree["rest"], float),
                length=np.array(tree["length"], float), width=np.array(tree["width"], float),
                omega=np.zeros(len(tree["parent"])), root_xy=np.zeros(2))
    _fit_in_frame(body, rng, bottom=0.93 if species.kind == "plant" else None)
    body.omega = _joint_frequencies(body, rng)
    body.parts = _plant_parts(body, tree["role"], rng) if species.kind == "plant" else \
        _figure_parts(body, tree["role"], rng)
    return body


# ---- trees ----------------------------------------------------------------------------------------

def _add(tree, parent, along, across, rest, length, width, role) -> int:
    for key, value in zip(("parent", "offset", "rest", "length", "width", "role"),
                          (parent, (along, across), rest, length, width, role)):
        tree[key].append(value)
    return len(tree["parent"]) - 1


def _empty_tree() -> dict[str, list]:
    return {key: [] for key in ("parent", "offset", "rest", "length", "width", "role")}


def _plant_tree(rng, species: Species) -> dict[str, list]:
    tree = _empty_tree()
    width = 0.07 * species.thickness
    base = _add(tree, -1, 0.0, 0.0, -np.pi / 2 + rng.uniform(-0.08, 0.08), 0.22, width, "stem")
    trunk = _add(tree, base, 0.22, 0.0, rng.uniform(-0.15, 0.15), 0.3, width * 0.85, "stem")
    depth = int(rng.integers(species.depth[0], species.depth[1] + 1))
    leaf_length = 0.16 * rng.uniform(0.85, 1.15)
    _grow(tree, rng, trunk, depth - 1, leaf_length)
    return tree


def _grow(tree, rng, stem: int, levels_left: int, leaf_length: float) -> None:
    if levels_left == 0 or len(tree["parent"]) + 4 > MAX_SEGMENTS:
        for sign in rng.choice([-1.0, 1.0], size=int(rng.integers(1, 3)), replace=False):
            if len(tree["parent"]) < MAX_SEGMENTS:
                _add(tree, stem, tree["length"][stem], 0.0, sign * rng.uniform(0.25, 0.8), leaf_length,
                     leaf_length, "leaf")
        return
    count = 3 if rng.random() < 0.25 else 2
    spread = rng.uniform(0.35, 0.7)
    for k in range(count):
        if len(tree["parent"]) >= MAX_SEGMENTS:
            return
        angle = spread * (2 * k / (count - 1) - 1) + rng.uniform(-0.12, 0.12)
        child = _add(tree, stem, tree["length"][stem] * rng.uniform(0.75, 1.0), 0.0, angle,
                     tree["length"][stem] * rng.uniform(0.6, 0.8), tree["width"][stem] * 0.7, "stem")
        _grow(tree, rng, child, levels_left - 1, leaf_length)


def _figure_tree(rng, species: Species) -> dict[str, list]:
    tree = _empty_tree()
    thick = species.thickness
    torso_len, torso_w = 0.3 * rng.uniform(0.9, 1.1), 0.15 * thick
    torso = _add(tree, -1, 0.0, 0.0, -np.pi / 2, torso_len, torso_w, "torso")
    _add(tree, torso, torso_len, 0.0, rng.uniform(-0.15, 0.15), 0.14, 0.14, "head")
    for side in (-1.0, 1.0):
        upper = _add(tree, torso, torso_len * 0.92, side * torso_w * 0.55, np.pi - side * rng.uniform(0.3, 0.6),
                     0.16 * rng.uniform(0.9, 1.1), 0.055 * thick, "upper")
        _add(tree, upper, tree["length"][upper], 0.0, -side * rng.uniform(0.1, 0.5), 0.15, 0.045 * thick, "lower")
        thigh = _add(tree, torso, 0.0, side * torso_w * 0.28, np.pi - side * rng.uniform(0.05, 0.25),
                     0.2 * rng.uniform(0.9, 1.1), 0.065 * thick, "thigh")
        _add(tree, thigh, tree["length"][thigh], 0.0, side * rng.uniform(0.0, 0.3), 0.19, 0.05 * thick, "shin")
    return tree


# ---- placement and physics ------------------------------------------------------------------------

def rest_pose(body: Body) -> tuple[np.ndarray, np.ndarray]:
    """World angle [S] and joint [S, 2] of `body` at rest."""
    angle, joint = forward_kinematics(body.rest_angle[None], body.offset[None], body.parent[None],
                                      ancestors(body.parent)[None], body.root_xy[None])
    return angle[0], joint[0]


def _fit_in_frame(body: Body, rng, bottom: float | None) -> None:
    """Scale the body about its root and move it so its rest extent (plus a swing margin) fits the frame."""
    angle, joint = rest_pose(body)
    tips = joint + body.length[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    pad = body.width.max() / 2
    points = np.concatenate([joint, tips])
    low, high = points.min(axis=0) - pad, points.max(axis=0) + pad
    scale = min(0.74 / (high[0] - low[0]), 0.76 / (high[1] - low[1])) * rng.uniform(0.85, 1.0)
    for name in ("offset", "length", "width"):
        setattr(body, name, getattr(body, name) * scale)
    low, high = low * scale, high * scale
    centre_x = 0.5 + rng.uniform(-0.04, 0.04)
    x = centre_x - (low[0] + high[0]) / 2
    y = bottom - high[1] if bottom is not None else 0.5 - (low[1] + high[1]) / 2
    body.root_xy = np.array([x, y])


def _joint_frequencies(body: Body, rng) -> np.ndarray:
    """Per-joint natural frequency: the species' value, a little faster for lighter, thinner parts."""
    base = body.species.omega * rng.uniform(0.92, 1.08)
    relative_width = body.width / body.width[0]
    return base * relative_width ** -0.15


# ---- looks ----------------------------------------------------------------------------------------

def _circle(centre_along: float, centre_across: float, radius: float, points: int = 12) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return np.stack([centre_along + radius * np.cos(t), centre_across + radius * np.sin(t)], axis=1)


def _quad(start: float, end: float, half_start: float, half_end: float) -> np.ndarray:
    return np.array([[start, -half_start], [end, -half_end], [end, half_end], [start, half_start]])


def _leaf_outline(length: float, width: float, shape: str, points: int = 14) -> np.ndarray:
    u = np.linspace(0, 1, points // 2 + 1)
    aspect = {"narrow": 0.28, "round": 0.55, "lobed": 0.6, "heart": 0.6}[shape]
    half = np.sin(np.pi * u) ** 0.8 * aspect * width / 2
    if shape == "lobed":
        half *= 1 + 0.35 * np.cos(6 * np.pi * u)
    if shape == "heart":
        half *= 1.4 - 0.6 * u
    side = np.stack([u * length, half], axis=1)
    other = np.stack([u[::-1][1:-1] * length, -half[::-1][1:-1]], axis=1)
    return np.concatenate([side, other])


def _shade(colour, rng, spread: float = 0.12) -> np.ndarray:
    return np.clip(np.asarray(colour, float) * rng.uniform(1 - spread, 1 + spread), 0, 255).astype(np.uint8)


def _plant_parts(body: Body, roles: list[str], rng) -> list[Part]:
    stem_colour = _shade(body.species.stem_colour, rng)
    leaf_colour = _shade(body.species.part_colour, rng)
    depth = [0] * body.num_segments
    parts = []
    for s in range(body.num_segments):
        depth[s] = depth[body.parent[s]] + 1 if s else 0
        length, width = body.length[s], body.width[s]
        if roles[s] == "leaf":
            outline = _leaf_outline(length, width, body.species.leaf_shape)
            parts.append(Part(s, [outline], _shade(leaf_colour, rng, 0.08), 2 * depth[s]))
            parts.append(Part(s, [_quad(0.0, 0.85 * length, 0.05 * width, 0.02 * width)],
                              (leaf_colour * 0.6).astype(np.uint8), 2 * depth[s] + 1))
            continue
        half_tip = 0.35 * width
        polygons = [_quad(0.0, length, width / 2, half_tip), _circle(length, 0.0, half_tip, 8)]
        parts.append(Part(s, polygons, _shade(stem_colour, rng, 0.06), 2 * depth[s]))
        band = _quad(0.45 * length, 0.55 * length, 0.5 * width, 0.5 * width)
        parts.append(Part(s, [band], (stem_colour * 0.7).astype(np.uint8), 2 * depth[s] + 1))
    return parts


_FIGURE_Z = {"thigh": 0, "shin": 0, "torso": 2, "head": 4, "upper": 6, "lower": 6}


def _figure_parts(body: Body, roles: list[str], rng) -> list[Part]:
    skin, cloth = _shade(body.species.stem_colour, rng), _shade(body.species.part_colour, rng)
    dark = (cloth * 0.45).astype(np.uint8)
    parts = []
    for s, role in enumerate(roles):
        length, width, z = body.length[s], body.width[s], _FIGURE_Z[role]
        if role == "torso":
            parts.append(Part(s, [_quad(0.0, length, width / 2, width / 2)], cloth, z))
            parts.append(Part(s, [_quad(0.04 * length, 0.16 * length, width / 2, width / 2)], dark, z + 1))
        elif role == "head":
            parts.append(Part(s, [_quad(0.0, 0.35 * length, 0.15 * length, 0.15 * length),
                                  _circle(0.62 * length, 0.0, 0.4 * length)], skin, z))
            parts.append(Part(s, [_circle(0.7 * length, side * 0.15 * length, 0.07 * length, 6)
                                  for side in (-1, 1)], dark, z + 1))
        else:
            colour = cloth if role in ("upper", "thigh") else skin
            limb = [_quad(0.0, length, width / 2, width / 2), _circle(0.0, 0.0, width / 2, 8),
                    _circle(length, 0.0, width / 2, 8)]
            parts.append(Part(s, limb, colour, z))
            if role in ("lower", "shin"):
                parts.append(Part(s, [_circle(length, 0.0, 0.6 * width, 8)], dark, z + 1))
    return parts
