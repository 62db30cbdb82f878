"""PokeSim rendering and exact flow.

Frames are drawn at `supersample` times the resolution as a map of part ids (cv2.fillPoly with
sub-pixel precision), coloured through a lookup table over a static textured background, then
area-downsampled (cv2.INTER_AREA), which anti-aliases the edges. The segment map of a frame is the
part map sampled at the centre of each output pixel.

Pixel coordinates: pixel (i, j) has its centre at x = j, y = i; a world point u (fraction of the image
side) lies at u * resolution - 0.5.
"""
from __future__ import annotations

import cv2
import numpy as np

from poke2video.sim.bodies import Body

SHIFT = 4   # fixed-point bits for cv2 polygon vertices


def to_pixels(pose: np.ndarray, resolution: int) -> np.ndarray:
    """Pose [..., S, 3] (angle, joint x, joint y) in world units -> same with joints in pixels."""
    out = np.array(pose, np.float64)
    out[..., 1:] = out[..., 1:] * resolution - 0.5
    return out


def make_background(rng: np.random.Generator, resolution: int, supersample: int) -> np.ndarray:
    """uint8 [R*ss, R*ss, 3]: a static texture (smooth noise, a linear gradient or soft stripes), made at
    the output resolution and upsampled, so the supersampled canvas costs little."""
    style = int(rng.integers(3))
    colours = rng.uniform(30, 225, size=(2, 3)).astype(np.float32)
    if style == 0:
        cells = int(rng.integers(3, 8))
        coarse = rng.uniform(0, 1, size=(cells, cells)).astype(np.float32)
        mix = cv2.resize(coarse, (resolution, resolution), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        mix = mix + rng.normal(0, 0.04, size=mix.shape).astype(np.float32)
    else:
        angle = rng.uniform(0, np.pi)
        coords = np.linspace(0, 1, resolution, dtype=np.float32)
        proj = np.cos(angle) * coords[None, :] + np.sin(angle) * coords[:, None]
        proj = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)
        if style == 1:
            mix = proj
        else:
            mix = 0.5 + 0.5 * np.tanh(3 * np.sin(2 * np.pi * rng.uniform(4, 10) * proj))
    image = np.clip(colours[0] * (1 - mix[..., None]) + colours[1] * mix[..., None], 0, 255).astype(np.uint8)
    size = resolution * supersample
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


class Painter:
    """Draws one body at given poses: frames uint8 [F, H, W, 3] and segment maps uint8 [F, H, W]."""

    def __init__(self, body: Body, resolution: int, supersample: int):
        self.resolution, self.supersample = resolution, supersample
        order = sorted(range(len(body.parts)), key=lambda i: (body.parts[i].z, body.parts[i].segment, i))
        parts = [body.parts[i] for i in order]
        if len(parts) > 255:
            raise ValueError("too many parts to draw in a uint8 id map")
        vertices, segments, self.slices, start = [], [], [], 0
        for part in parts:
            spans = []
            for polygon in part.polygons:
                vertices.append(polygon)
                segments.append(np.full(len(polygon), part.segment))
                spans.append((start, start + len(polygon)))
                start += len(polygon)
            self.slices.append(spans)
        self.vertices = np.concatenate(vertices)          # [V, 2] local (along, across)
        self.vertex_segment = np.concatenate(segments)    # [V]
        self.colour_lut = np.zeros((256, 1, 3), np.uint8)
        self.segment_lut = np.zeros(256, np.uint8)
        for part_id, part in enumerate(parts, start=1):
            self.colour_lut[part_id, 0] = part.colour
            self.segment_lut[part_id] = part.segment + 1

    def _fixed_point(self, pose: np.ndarray) -> np.ndarray:
        """int32 [F, V, 2] vertex positions on the supersampled canvas, SHIFT fractional bits."""
        pixel = to_pixels(pose, self.resolution)
        angle = pixel[:, self.vertex_segment, 0]
        joint = pixel[:, self.vertex_segment, 1:]
        cos, sin = np.cos(angle), np.sin(angle)
        local = self.vertices * self.resolution
        x = joint[..., 0] + cos * local[:, 0] - sin * local[:, 1]
        y = joint[..., 1] + sin * local[:, 0] + cos * local[:, 1]
        canvas = (np.stack([x, y], axis=-1) + 0.5) * self.supersample - 0.5
        return np.ascontiguousarray(np.round(canvas * (1 << SHIFT)), dtype=np.int32)

    def fits(self, pose: np.ndarray, margin: float = 1.0) -> bool:
        """Whether every vertex stays at least `margin` output pixels inside the frame at poses [F, S, 3]."""
        canvas = self._fixed_point(pose) / ((1 << SHIFT) * self.supersample)
        return bool(canvas.min() >= margin and canvas.max() <= self.resolution - margin)

    def draw(self, pose: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """pose [F, S, 3] world units; background uint8 [R*ss, R*ss, 3] -> frames, segment maps."""
        size, res, ss = background.shape[0], self.resolution, self.supersample
        points = self._fixed_point(pose)
        frames = np.empty((len(pose), res, res, 3), np.uint8)
        segment_maps = np.empty((len(pose), res, res), np.uint8)
        ids = np.zeros((size, size), np.uint8)
        for f in range(len(pose)):
            ids.fill(0)
            for part_id, spans in enumerate(self.slices, start=1):
                cv2.fillPoly(ids, [points[f, a:b] for a, b in spans], part_id, cv2.LINE_8, SHIFT)
            image = cv2.LUT(cv2.merge([ids, ids, ids]), self.colour_lut)
            cv2.copyTo(background, np.equal(ids, 0).view(np.uint8), image)
            frames[f] = cv2.resize(image, (res, res), interpolation=cv2.INTER_AREA)
            segment_maps[f] = self.segment_lut[ids[ss // 2::ss, ss // 2::ss]]
        return frames, segment_maps


def rigid_flow(segment_maps: np.ndarray, pose_from: np.ndarray, pose_to: np.ndarray) -> np.ndarray:
    """Exact flow float32 [F, 2, H, W] of the pixels of `segment_maps` [F, H, W] (0 = background, s + 1 =
    segment s) when every segment moves rigidly from `pose_from` to `pose_to` ([F, S, 3] in pixels)."""
    frames, height, width = segment_maps.shape
    turn = pose_to[..., 0] - pose_from[..., 0]
    cos, sin = np.cos(turn), np.sin(turn)
    shift_x = pose_to[..., 1] - (cos * pose_from[..., 1] - sin * pose_from[..., 2])
    shift_y = pose_to[..., 2] - (sin * pose_from[..., 1] + cos * pose_from[..., 2])
    # per segment s (row s + 1): new = [[cos, -sin], [sin, cos]] @ old + shift; only object pixels move
    table = np.stack([cos, -sin, shift_x, sin, cos, shift_y], axis=-1).astype(np.float32)   # [F, S, 6]
    frame, pixel = np.nonzero(segment_maps.reshape(frames, -1))
    coef = table[frame, segment_maps.reshape(frames, -1)[frame, pixel].astype(np.intp) - 1]   # [P, 6]
    xs, ys = (pixel % width).astype(np.float32), (pixel // width).astype(np.float32)
    flow = np.zeros((frames, 2, height * width), np.float32)
    flow[frame, 0, pixel] = coef[:, 0] * xs + coef[:, 1] * ys + coef[:, 2] - xs
    flow[frame, 1, pixel] = coef[:, 3] * xs + coef[:, 4] * ys + coef[:, 5] - ys
    return flow.reshape(frames, 2, height, width)
