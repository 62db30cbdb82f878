"""Frame pairs with exact optical flow, drawn from generic shapes that move: the flow network's training data.

A scene is a textured background and a few layers in front of it: discs, boxes, polygons, thin bars and
chains of bars joined end to end. Between the two frames each layer moves by one affine map (a turn about a
pivot, often a bar's end, a shift, a slight zoom); a chain's link moves with its parent and turns about the
joint it hangs from. Many layers, and most backgrounds, stay still. Frames are drawn at twice the output
size and averaged down, the flow with them (each output vector the mean of the ones it covers), then
compressed as JPEG and given camera noise, so the pair looks like two frames of a video read at that size.

Nothing here knows PokeSim: its shapes, colours and motions are generic, so a network trained on them
learns optical flow, not the simulator's objects.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SUPERSAMPLE = 2     # frames and flow are drawn this many times larger than the output, then averaged down


@dataclass
class Layer:
    """One moving piece: its colour image and coverage drawn where it sits in the first frame, and the 3x3
    affine map that carries a first-frame point (x, y, 1) to the second frame."""

    colour: np.ndarray     # float32 [S, S, 3], 0..255
    coverage: np.ndarray   # float32 [S, S], 0..1
    motion: np.ndarray     # float64 [3, 3]


def turn(angle: float, pivot: tuple[float, float]) -> np.ndarray:
    """3x3 map turning the plane by `angle` radians about `pivot` (x, y)."""
    cos, sin = math.cos(angle), math.sin(angle)
    px, py = pivot
    return np.array([[cos, -sin, px - cos * px + sin * py], [sin, cos, py - sin * px - cos * py], [0, 0, 1]])


def shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """float32 [size, size, 3]: a base colour with noise at a few random scales, sometimes stripes; one in
    six is nearly flat, as a painted part is."""
    base = rng.uniform(0, 255, 3)
    image = np.broadcast_to(base, (size, size, 3)).astype(np.float32).copy()
    flat = rng.random() < 1 / 6
    for _ in range(1 if flat else int(rng.integers(1, 4))):
        cells = int(rng.choice([4, 8, 16, 32, 64, 128]))
        noise = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
        noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
        strength = rng.uniform(1, 5) if flat else rng.uniform(15, 70)
        image += noise * strength * (rng.uniform(0.2, 1, 3) if rng.random() < 0.5 else 1)
    if rng.random() < 0.2:
        angle, period = rng.uniform(0, math.pi), rng.uniform(4, 24)
        ys, xs = np.mgrid[:size, :size].astype(np.float32)
        stripes = np.sin((xs * math.cos(angle) + ys * math.sin(angle)) * 2 * math.pi / period)
        image += stripes[..., None] * rng.uniform(10, 60) * rng.uniform(-1, 1, 3).astype(np.float32)
    return np.clip(image, 0, 255)


def small_motion(rng: np.random.Generator, pivot: tuple[float, float], reach: float) -> np.ndarray:
    """A random step motion: a turn about `pivot` whose far end (`reach` px away) travels up to ~14 output
    px, a shift, sometimes a slight zoom. Sizes are log-uniform so both crawling and fast parts occur."""
    travel = math.exp(rng.uniform(math.log(0.1), math.log(14 * SUPERSAMPLE)))
    angle = rng.choice([-1, 1]) * min(travel / max(reach, 1.0), 0.6) * rng.uniform(0, 1)
    move = math.exp(rng.uniform(math.log(0.05), math.log(10 * SUPERSAMPLE))) * (rng.random() < 0.7)
    direction = rng.uniform(0, 2 * math.pi)
    motion = shift(move * math.cos(direction), move * math.sin(direction)) @ turn(angle, pivot)
    if rng.random() < 0.15:
        zoom = rng.uniform(0.95, 1.05)
        motion = motion @ turn(0, pivot) @ np.array([[zoom, 0, pivot[0] * (1 - zoom)],
                                                     [0, zoom, pivot[1] * (1 - zoom)], [0, 0, 1]])
    return motion


def blob_layer(rng: np.random.Generator, size: int) -> Layer:
    """A disc, box or polygon somewhere in the frame."""
    coverage = np.zeros((size, size), np.float32)
    centre = rng.uniform(0.1, 0.9, 2) * size
    radius = size * math.exp(rng.uniform(math.log(0.04), math.log(0.35)))
    kind = rng.integers(3)
    if kind == 0:
        axes = (int(radius), int(radius * rng.uniform(0.3, 1)))
        cv2.ellipse(coverage, (int(centre[0]), int(centre[1])), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    else:
        corners = 4 if kind == 1 else int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, corners)) if kind == 2 else \
            np.arange(4) * math.pi / 2 + rng.uniform(0, math.pi)
        radii = radius * (rng.uniform(0.4, 1, corners) if kind == 2 else 1)
        points = centre + np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)
        cv2.fillPoly(coverage, [np.round(points).astype(np.int32)], 1.0)
    pivot = tuple(centre + rng.uniform(-1, 1, 2) * radius)
    return Layer(texture(rng, size), coverage, small_motion(rng, pivot, 2 * radius))


def chain_layers(rng: np.random.Generator, size: int) -> list[Layer]:
    """1 to 4 thin bars joined end to end from a root; each turns about its joint and moves with its parent."""
    joint = rng.uniform(0.15, 0.85, 2) * size
    heading = rng.uniform(0, 2 * math.pi)
    parent = small_motion(rng, tuple(joint), size * 0.3) if rng.random() < 0.8 else np.eye(3)
    layers = []
    for link in range(int(rng.integers(1, 5))):
        length = size * rng.uniform(0.08, 0.4)
        width = max(2, int(size * math.exp(rng.uniform(math.log(0.012), math.log(0.08)))))
        heading += rng.normal(0, 0.8)
        end = joint + length * np.array([math.cos(heading), math.sin(heading)])
        coverage = np.zeros((size, size), np.float32)
        cv2.line(coverage, tuple(np.round(joint).astype(int)), tuple(np.round(end).astype(int)), 1.0, width)
        motion = parent if link == 0 else parent @ small_motion(rng, tuple(joint), length)
        layers.append(Layer(texture(rng, size), coverage, motion))
        joint, parent = end, motion
    return layers


def place(image: np.ndarray, motion: np.ndarray, size: int) -> np.ndarray:
    """`image` carried by the 3x3 `motion` (cv2 samples the source at the inverse map)."""
    return cv2.warpAffine(image, motion[:2].astype(np.float32), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def scene_pair(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pair: uint8 frames [size, size, 3] twice and their exact flow float32 [2, size, size] (x, y)."""
    big = size * SUPERSAMPLE
    background = texture(rng, big)
    camera = np.eye(3) if rng.random() < 0.75 else shift(*rng.normal(0, 0.6 * SUPERSAMPLE, 2))
    layers = []
    for _ in range(int(rng.integers(1, 7))):
        layers += chain_layers(rng, big) if rng.random() < 0.5 else [blob_layer(rng, big)]
        if rng.random() < 0.15:
            layers[-1].motion = camera   # a piece that stays where it is
    # Both frames are resampled once (a small random placement), so neither is sharper than the other.
    placement = turn(rng.normal(0, 0.05), (big / 2, big / 2))
    frames = []
    for moved in (False, True):
        frame = place(background, placement @ (camera if moved else np.eye(3)), big)
        for layer in layers:
            carry = placement @ (layer.motion if moved else np.eye(3))
            alpha = place(layer.coverage, carry, big)[..., None]
            frame = frame * (1 - alpha) + place(layer.colour, carry, big) * alpha
        frames.append(frame)
    flow = pair_flow(background_motion=camera, layers=layers, placement=placement, size=big)
    small = [degrade(rng, cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)) for frame in frames]
    flow = np.stack([cv2.resize(flow[c], (size, size), interpolation=cv2.INTER_AREA) for c in range(2)])
    return small[0], small[1], (flow / SUPERSAMPLE).astype(np.float32)


def pair_flow(background_motion: np.ndarray, layers: list[Layer], placement: np.ndarray, size: int) -> np.ndarray:
    """float32 [2, size, size]: each first-frame pixel's displacement under the front-most layer covering it."""
    ys, xs = np.mgrid[:size, :size].astype(np.float64)
    points = np.stack([xs, ys, np.ones_like(xs)])                       # [3, S, S] in the first frame

    def displacement(motion: np.ndarray) -> np.ndarray:
        # the first frame shows the scene after `placement`; its points move by placement.M.placement^-1
        moved = np.einsum("ij,jhw->ihw", placement @ motion @ np.linalg.inv(placement), points)
        return moved[:2] - points[:2]

    flow = displacement(background_motion)
    for layer in layers:
        covered = place(layer.coverage, placement, size) > 0.5
        flow[:, covered] = displacement(layer.motion)[:, covered]
    return flow.astype(np.float32)


def degrade(rng: np.random.Generator, frame: np.ndarray) -> np.ndarray:
    """float frame -> uint8, with camera noise and JPEG compression of random strength."""
    frame = frame + rng.normal(0, rng.uniform(0, 3), frame.shape)
    frame = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    if rng.random() < 0.8:
        quality = int(rng.integers(40, 96))
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        frame = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return frame
