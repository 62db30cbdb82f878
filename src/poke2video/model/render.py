"""Drawing frames from a forward flow: the image's own pixels carried to where the flow sends them.

    video = render_video(image, forward_flows)     # image [B, 3, H, W], flows [B, T, 2, H, W] -> [B, T, 3, H, W]

The moving pixels are drawn by backward sampling: the flow is turned around (`splat.backward_field`), and
each pixel q of a frame reads the source at p = q + B(q), where the moving pixels lie. It is drawn (alpha)
as far as p is a moving pixel and truly lands on q (|p + F(p) - q| within LAND_PX to MISS_PX): a part that
turns or stretches comes out whole, its inside read from its own pixels, and nothing is left where it was.
Where no moving pixel lands, the part that moved away uncovered the background: those pixels come from a
background plate, the source with its moving pixels removed and the hole filled from the still pixels
around it (`splat.background_plate`). A pixel whose flow stays within STILL_PX and that nothing covers
keeps its exact value, so the renderer leaves a user's image untouched wherever nothing moves. It works at
any size: `render_upscaled` turns a small flow around at its own size and reads a full-resolution photo
along it (docs/architecture.md, "Output at the user's size").
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from poke2video.model.splat import background_plate, backward_field, read_at

STILL_PX = 0.05      # px: a pixel whose flow never exceeds this is not moved (it keeps its exact value)
BOX_MARGIN = 8       # px around the moving pixels' reach that is rendered (context for the background plate)
MOVING_PX = 0.5      # a source pixel whose flow exceeds this at any frame is not part of the background plate
LAND_PX = 0.5        # px (of the flow's grid): a source point that lands this close to a pixel draws it fully
MISS_PX = 1.0        # px: one that lands this far or farther does not draw it
UPSCALED_LAND = 2.0
UPSCALED_MISS = 4.0


def draw_part(image: torch.Tensor, flows: torch.Tensor, moving: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The moving pixels drawn by backward sampling: image [N, C, H, W], forward flows [N, 2, H, W], moving
    [N, H, W] bool -> (colour [N, C, H, W], alpha [N, 1, H, W]).

    Each pixel q reads the source point p = q + B(q) bilinearly from the moving pixels alone (the colour
    divided by the moving mass read, so a part's edge keeps its own colour). Its alpha is that mass times
    how well p lands on q (`landing_weight` of |p + F(p) - q|, F extended past the part's edge)."""
    channels = image.shape[1]
    backward, extended = backward_field(flows, moving)
    mass = moving[:, None].to(image.dtype)
    read = read_at(torch.cat([image * mass, mass, extended], dim=1), backward)
    mass_read = read[:, channels:channels + 1]
    miss = torch.hypot(backward[:, 0] + read[:, channels + 1], backward[:, 1] + read[:, channels + 2])
    return read[:, :channels] / mass_read.clamp(min=1e-6), mass_read.clamp(0.0, 1.0) * landing_weight(miss)[:, None]


def check_finite(forward_flows: torch.Tensor) -> None:
    """ValueError for flows with NaN or infinite values (a broken model's output)."""
    if not torch.isfinite(forward_flows).all():
        raise ValueError("forward flows must be finite to be drawn; the model gave NaN or infinite values")


def plate_px(still_px: float) -> float:
    """The top speed (px) up to which a source pixel is part of the background plate: MOVING_PX, or the
    still threshold when that is larger (a pixel that is not moved is never left out of the plate)."""
    return max(MOVING_PX, still_px)


def moving_box(moving: torch.Tensor, top_speed: torch.Tensor, margin: int) -> tuple[slice, slice]:
    """The (rows, columns) slices of a grid [..., H, W] around its moving pixels `moving` [H, W] (at least
    one), grown by the top speed (px, rounded up) plus `margin` px and clipped to the grid."""
    height, width = moving.shape
    ys, xs = moving.nonzero(as_tuple=True)
    reach = int(top_speed.max().ceil()) + margin
    return (slice(max(int(ys.min()) - reach, 0), min(int(ys.max()) + reach + 1, height)),
            slice(max(int(xs.min()) - reach, 0), min(int(xs.max()) + reach + 1, width)))


def landing_weight(miss, per_px: float = 1.0):
    """1 where a source point lands within LAND_PX of the pixel that reads it, 0 beyond MISS_PX, linear
    between (a tensor or an array of misses in px). `per_px`: output pixels per px of the miss; the
    tolerances shrink with it down to UPSCALED_LAND and UPSCALED_MISS output pixels."""
    land, miss_px = min(LAND_PX, UPSCALED_LAND / per_px), min(MISS_PX, UPSCALED_MISS / per_px)
    return ((miss_px - miss) / (miss_px - land)).clip(0.0, 1.0)


def render_video(image: torch.Tensor, forward_flows: torch.Tensor, still_px: float = STILL_PX) -> torch.Tensor:
    """image [B, C, H, W], forward_flows [B, T, 2, H, W] (px, source -> frame t) -> video [B, T, C, H, W].

    A pixel whose flow stays within `still_px` at every frame keeps its exact value: only the box that
    `render_box` gives is rendered, the rest of each frame is the image itself."""
    video = image[:, None].repeat(1, forward_flows.shape[1], 1, 1, 1)
    box, frames = render_box(image, forward_flows, still_px)
    if box is not None:
        video[..., box[0], box[1]] = frames
    return video


def render_box(image: torch.Tensor, forward_flows: torch.Tensor, still_px: float = STILL_PX):
    """(box, frames): the (rows, columns) slices around the pixels that move, where they go and a margin for
    the background plate, and the video inside it [B, T, C, h, w]; (None, None) when nothing moves."""
    batch, steps = forward_flows.shape[:2]
    check_finite(forward_flows)
    top_speed = torch.hypot(forward_flows[:, :, 0], forward_flows[:, :, 1]).amax(dim=1)    # [B, H, W]
    moving = top_speed > still_px
    if not moving.any():
        return None, None
    box = moving_box(moving.any(dim=0), top_speed, BOX_MARGIN)
    crop, flows, speed = image[..., box[0], box[1]], forward_flows[..., box[0], box[1]], top_speed[:, box[0], box[1]]
    plate = background_plate(crop, (speed <= plate_px(still_px))[:, None].to(image.dtype))
    moving = (speed > still_px).repeat_interleave(steps, dim=0)                              # [B*T, h, w]
    colour, alpha = draw_part(crop.repeat_interleave(steps, dim=0), flows.flatten(0, 1), moving)
    frames = alpha * colour + (1 - alpha) * plate.repeat_interleave(steps, dim=0)
    return box, frames.unflatten(0, (batch, steps))


def render_upscaled(rgb: np.ndarray, forward_flows: torch.Tensor, still_px: float = STILL_PX):
    """(box, frames) for an image larger than the flow: rgb uint8 [H, W, 3] at full size, forward_flows
    [T, 2, h, w] in pixels of the flow's own grid -> the (rows, columns) slices that move and the uint8
    video inside them [T, h', w', 3]; (None, None) when nothing moves.

    The flow is turned around at its own size (`splat.backward_field`), and each full-size pixel q reads the
    image bilinearly (OpenCV's remap, on the 8-bit image) at p = q + B(q), B scaled up. Its alpha, as in
    `draw_part`, is the moving mask read at p (the flow grid's, sharpened to about one full-size pixel, so
    a part keeps crisp edges) times how well p lands on q; the rest is the background plate. A still
    pixel that nothing lands on keeps its exact value."""
    steps, _, low_h, low_w = forward_flows.shape
    check_finite(forward_flows)
    height, width = rgb.shape[:2]
    scale = (width / low_w, height / low_h)
    top_speed = torch.hypot(forward_flows[:, 0], forward_flows[:, 1]).amax(dim=0)        # [h, w]
    moving = top_speed > still_px
    if not moving.any():
        return None, None
    rows, cols = _upscaled_box(moving, top_speed, (height, width), scale)
    mask = moving[None, None].expand(steps, 1, -1, -1).to(forward_flows.dtype)
    backward, extended = backward_field(forward_flows, moving[None].expand(steps, -1, -1))
    landing = torch.cat([extended, mask, torch.zeros_like(mask)], dim=1)    # 4 channels: OpenCV's fast remap
    landing = landing.permute(0, 2, 3, 1).contiguous().numpy()                         # [T, h, w, 4]
    fields = _upscaled_fields(backward.flatten(0, 1).numpy(), scale, (rows, cols))    # 2T planes [h', w']
    crop = rgb[rows, cols]
    plate = _plate_uint8(crop, top_speed.numpy(), (width, height), (rows, cols), still_px)
    plate_rgba, rgba = cv2.cvtColor(plate, cv2.COLOR_RGB2RGBA), cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
    grid_x, grid_y = np.meshgrid(np.arange(cols.start, cols.stop, dtype=np.float32),
                                 np.arange(rows.start, rows.stop, dtype=np.float32))
    low_x, low_y = (grid_x + 0.5) / scale[0] - 0.5, (grid_y + 0.5) / scale[1] - 0.5   # the same points, grid px
    frames = np.repeat(plate[None], steps, axis=0)
    for t, (y, x) in enumerate(_landing_boxes(moving, extended, scale, (rows, cols))):
        cut = lambda planes: [plane[y, x] for plane in planes]
        drawn = _upscaled_frame(rgba, plate_rgba[y, x], cut(fields[2 * t:2 * t + 2]), landing[t],
                                (cut((grid_x, grid_y)), cut((low_x, low_y))), scale)
        frames[t, y, x] = cv2.cvtColor(drawn, cv2.COLOR_RGBA2RGB)
    return (rows, cols), frames


def _landing_boxes(moving: torch.Tensor, extended: torch.Tensor, scale: tuple[float, float], box):
    """For each frame, the (rows, columns) slices of the crop `box` outside which no pixel is drawn (alpha
    0: the plate). A pixel q is drawn only where the point p it reads lies within 1 grid px of a moving
    pixel (the mask read there), so the four grid pixels c that p is read from lie next to it, and where
    p + F(p) lands within 1 grid px of q (MISS_PX); p + F(p) is the bilinear mean of their c + F(c) (F 0
    off the grid), so q lies within 1 grid px of the box of c + F(c) over the pixels next to moving ones.
    One full-size pixel is added for rounding."""
    near = F.max_pool2d(moving[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
    ys, xs = near.nonzero(as_tuple=True)
    landed = torch.stack([xs, ys]).to(extended.dtype) + extended[:, :, ys, xs]          # [T, 2, K]: c + F(c)
    moving_ys, moving_xs = moving.nonzero(as_tuple=True)
    off_grid = torch.tensor([[moving_xs.min() - 1, moving_ys.min() - 1], [moving_xs.max() + 1, moving_ys.max() + 1]],
                            dtype=extended.dtype)                     # c off the grid lie in this box (F 0 there)
    low_min = torch.minimum(landed.amin(dim=-1), off_grid[0]) - 1.0                      # [T, 2]: x, y
    low_max = torch.maximum(landed.amax(dim=-1), off_grid[1]) + 1.0
    for t in range(len(extended)):
        cuts = []
        for axis, (cut, factor) in enumerate(((box[0], scale[1]), (box[1], scale[0]))):
            lo, hi = float(low_min[t, 1 - axis]), float(low_max[t, 1 - axis])
            start = max(int(math.floor((lo + 0.5) * factor - 0.5)) - 1, cut.start)
            stop = min(int(math.ceil((hi + 0.5) * factor - 0.5)) + 2, cut.stop)
            cuts.append(slice(start - cut.start, max(stop, start) - cut.start))
        yield tuple(cuts)


def _upscaled_fields(planes: np.ndarray, scale: tuple[float, float], box: tuple[slice, slice]) -> list[np.ndarray]:
    """planes [C, h, w] on the flow's grid -> C planes [h', w'] read bilinearly at the centres of the
    full-size pixels in `box` (edge values continued): each a resize of the grid's window around the box,
    the window started on a grid pixel that falls on a full-size pixel and made of whole such spans, so that
    the resize scales it by exactly the factor and samples the same points (a window that came out the same
    size would be copied, not resampled)."""
    windows = []
    for axis, (cut, factor) in enumerate(((box[0], scale[1]), (box[1], scale[0]))):
        length = planes.shape[1 + axis]
        unit = length // math.gcd(length, round(length * factor))    # grid px that span whole full-size px
        first = max(int(math.floor((cut.start + 0.5) / factor - 0.5)) - 1, 0) // unit * unit
        last = min(int(math.ceil((cut.stop - 0.5) / factor - 0.5)) + 2, length)
        last = min(first + -(-(last - first) // unit) * unit, length)   # whole units: resized by factor exactly
        start = round(first * factor)
        windows.append((slice(first, last), slice(cut.start - start, cut.stop - start)))
    (rows, crop_rows), (cols, crop_cols) = windows
    return [cv2.resize(plane[rows, cols], None, fx=scale[0], fy=scale[1], interpolation=cv2.INTER_LINEAR)
            [crop_rows, crop_cols] for plane in planes]


def _upscaled_frame(rgba: np.ndarray, plate: np.ndarray, field: list[np.ndarray], landing: np.ndarray,
                    points: tuple, scale: tuple[float, float]) -> np.ndarray:
    """One frame of `render_upscaled` over the crop whose pixel centres are `points` ((x, y) in full-size px,
    (x, y) in grid px): rgba and plate uint8 with 4 channels (OpenCV remaps and blends 4 as fast as 1),
    field the backward field's x and y there (grid px), landing [h, w, 4] (extended F, the moving mask and
    0) at the grid's size."""
    (grid_x, grid_y), (low_x, low_y) = points
    sampled = cv2.remap(rgba, cv2.scaleAdd(field[0], scale[0], grid_x), cv2.scaleAdd(field[1], scale[1], grid_y),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    land = cv2.remap(landing, low_x + field[0], low_y + field[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    miss = cv2.magnitude(field[0] + land[..., 0], field[1] + land[..., 1])
    per_px = max(*scale, 1.0)             # a flow grid coarser than the image: edges sharpened to one pixel
    alpha = np.clip((land[..., 2] - 0.5) * per_px + 0.5, 0.0, 1.0) * landing_weight(miss, per_px)
    return cv2.blendLinear(sampled, plate, alpha, 1.0 - alpha)


def _upscaled_box(moving: torch.Tensor, top_speed: torch.Tensor, size: tuple[int, int],
                  scale: tuple[float, float]) -> tuple[slice, slice]:
    """The (rows, columns) slices of the full-size image (`size`: height, width) around the flow grid's
    moving pixels and their reach (top speed plus 2 grid px)."""
    low_rows, low_cols = moving_box(moving, top_speed, 2)
    rows = slice(int(low_rows.start * scale[1]), min(int(math.ceil(low_rows.stop * scale[1])), size[0]))
    cols = slice(int(low_cols.start * scale[0]), min(int(math.ceil(low_cols.stop * scale[0])), size[1]))
    return rows, cols


def _plate_uint8(crop: np.ndarray, top_speed: np.ndarray, size: tuple[int, int], box, still_px: float) -> np.ndarray:
    """The background plate of an 8-bit crop [h', w', 3] of the full-size image, whose flow's top speed
    [h, w] (px of the flow's grid) is scaled up to `size` (width, height) and cut to `box`. A full-size pixel
    is left out of the plate where a moving grid pixel is among the four it is read from and their top
    speed read there, divided by the moving mask read, exceeds MOVING_PX or `still_px`, the larger (a part's
    edge and corners have their part's speed)."""
    moving = (top_speed > still_px).astype(np.float32)
    mass = cv2.resize(moving, size, interpolation=cv2.INTER_LINEAR)[box[0], box[1]]
    speed = cv2.resize(top_speed * moving, size, interpolation=cv2.INTER_LINEAR)[box[0], box[1]]
    still = speed <= plate_px(still_px) * mass
    image = torch.tensor(crop).permute(2, 0, 1)[None].float()
    plate = background_plate(image, torch.from_numpy(still)[None, None].float())[0].permute(1, 2, 0)
    return plate.round().clamp(0, 255).to(torch.uint8).numpy()
