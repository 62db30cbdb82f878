"""Rendering a forward flow: each source pixel is carried to where the flow sends it (forward splatting).

    video = render_video(image, forward_flows)     # image [B, 3, H, W], flows [B, T, 2, H, W] -> [B, T, 3, H, W]

A forward flow F_t(p) says where source pixel p is at frame t. Each pixel is spread bilinearly over the
four pixels around p + F_t(p). Where several land on one pixel, the one that moves more wins (a moving
part passes in front of what stays; weights exp(FRONT * |F|), "softmax splatting"). Where nothing lands,
the part that moved away uncovered the background: those pixels come from a background plate, the source
image with its moving pixels removed and the hole filled from the still pixels around it (`background_plate`,
a push-pull pyramid). A pixel whose flow is zero and that nothing covers keeps its exact value, so the
renderer leaves a user's image untouched wherever nothing moves. It works at any size: the same code
renders the model's 64 px frames and a flow upsampled to a full-resolution photo.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

FRONT = 4.0          # per px of motion: how strongly a moving pixel covers a still one where both land
STILL_PX = 0.05      # px: a pixel whose flow never exceeds this is not moved (it keeps its exact value)
BOX_MARGIN = 8       # px around the moving pixels' reach that is rendered (context for the background plate)
MOVING_PX = 0.5      # a source pixel whose flow exceeds this at any frame is not part of the background plate


def splat(image: torch.Tensor, flow: torch.Tensor, still: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """image [N, C, H, W], forward flow [N, 2, H, W] (px), still [N, H, W] bool (pixels left in place) ->
    (colour [N, C, H, W], coverage [N, 1, H, W]).

    colour: the front-weighted mean of the pixels that land on each pixel (0 where none lands);
    coverage: the plain bilinear weight that landed there, clamped to [0, 1]. A still pixel lands on itself
    with weight 1, so only the moving pixels are scattered (a photo's few percent). The sums are kept
    channels-last, [N, H, W, C + 2], so every scattered pixel adds one row."""
    batch, channels, height, width = image.shape
    pixels = image.permute(0, 2, 3, 1)                                               # [N, H, W, C] (a view)
    kept = still[..., None].to(image.dtype)
    accumulated = torch.cat([pixels * kept, kept, kept], dim=-1).reshape(-1, channels + 2)   # [N*H*W, C + 2]
    moving = (~still).flatten().nonzero().squeeze(1)                                 # [M] flat pixel indices
    if len(moving):
        motion = flow.permute(0, 2, 3, 1).reshape(-1, 2)[moving]                    # [M, 2] px
        front = torch.exp(FRONT * torch.hypot(motion[:, 0], motion[:, 1]).clamp(max=8.0))
        values = torch.cat([pixels.reshape(-1, channels)[moving] * front[:, None], front[:, None],
                            torch.ones_like(front)[:, None]], dim=1)                # [M, C + 2]
        n, rest = moving // (height * width), moving % (height * width)
        x, y = (rest % width).to(flow.dtype) + motion[:, 0], (rest // width).to(flow.dtype) + motion[:, 1]
        x0, y0 = x.floor(), y.floor()
        corner_x = torch.stack([x0, x0 + 1, x0, x0 + 1])                             # [4, M]
        corner_y = torch.stack([y0, y0, y0 + 1, y0 + 1])
        weight = (1 - (x - corner_x).abs()) * (1 - (y - corner_y).abs())
        inside = (corner_x >= 0) & (corner_x < width) & (corner_y >= 0) & (corner_y < height)
        weight = weight * inside
        index = (n * height + corner_y.clamp(0, height - 1).long()) * width + corner_x.clamp(0, width - 1).long()
        accumulated.index_add_(0, index.flatten(), (values[None] * weight[..., None]).flatten(0, 1))
    accumulated = accumulated.view(batch, height, width, channels + 2).permute(0, 3, 1, 2)
    colour = accumulated[:, :channels] / accumulated[:, channels:channels + 1].clamp(min=1e-6)
    return colour, accumulated[:, channels + 1:].clamp(0.0, 1.0)


def background_plate(image: torch.Tensor, still: torch.Tensor) -> torch.Tensor:
    """image [N, C, H, W], still [N, 1, H, W] in {0, 1} -> the image with every non-still pixel filled from
    the still pixels nearby (mask-weighted averages down a pyramid, then filled back up)."""
    levels = [(image * still, still)]
    while min(levels[-1][1].shape[-2:]) > 1:
        colour, weight = levels[-1]
        levels.append((F.avg_pool2d(colour, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    filled = levels[-1][0] / levels[-1][1].clamp(min=1e-6)
    for colour, weight in reversed(levels[:-1]):
        coarse = F.interpolate(filled, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        known = weight.clamp(0.0, 1.0)
        filled = known * colour / weight.clamp(min=1e-6) + (1 - known) * coarse
    return filled


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
    batch, steps, _, height, width = forward_flows.shape
    top_speed = torch.hypot(forward_flows[:, :, 0], forward_flows[:, :, 1]).amax(dim=1)    # [B, H, W]
    moving = top_speed > still_px
    if not moving.any():
        return None, None
    ys, xs = moving.any(dim=0).nonzero(as_tuple=True)
    reach = int(top_speed.max().ceil()) + BOX_MARGIN
    y0, y1 = max(int(ys.min()) - reach, 0), min(int(ys.max()) + reach + 1, height)
    x0, x1 = max(int(xs.min()) - reach, 0), min(int(xs.max()) + reach + 1, width)
    box = (slice(y0, y1), slice(x0, x1))
    crop, flows, speed = image[..., box[0], box[1]], forward_flows[..., box[0], box[1]], top_speed[:, box[0], box[1]]
    plate = background_plate(crop, (speed <= MOVING_PX)[:, None].to(image.dtype))
    still = (speed <= still_px).repeat_interleave(steps, dim=0)                              # [B*T, h, w]
    colour, coverage = splat(crop.repeat_interleave(steps, dim=0), flows.flatten(0, 1), still)
    frames = coverage * colour + (1 - coverage) * plate.repeat_interleave(steps, dim=0)
    return box, frames.unflatten(0, (batch, steps))


def render_upscaled(rgb: np.ndarray, forward_flows: torch.Tensor, still_px: float = STILL_PX):
    """(box, frames) for an image larger than the flow: rgb uint8 [H, W, 3] at full size, forward_flows
    [T, 2, h, w] in pixels of the flow's own grid -> the (rows, columns) slices that move and the uint8
    video inside them [T, h', w', 3]; (None, None) when nothing moves.

    Splatting every moving pixel of a large image is slow, so the flow is turned around where it is small:
    its own field is splatted along itself (`splat` of -F), giving at h x w where each pixel of frame t
    comes from and how much of it is covered. Per frame, those are scaled up to the image's size, the
    image is read bilinearly where they point (OpenCV's remap, on the 8-bit image) and blended with the
    background plate by the coverage. Where no moving pixel lands nearby the backward flow is exactly zero
    and the coverage one, so the image is read at its own pixel centres and keeps its exact value."""
    steps, _, low_h, low_w = forward_flows.shape
    height, width = rgb.shape[:2]
    scale_x, scale_y = width / low_w, height / low_h
    top_speed = torch.hypot(forward_flows[:, 0], forward_flows[:, 1]).amax(dim=0)        # [h, w]
    moving = top_speed > still_px
    if not moving.any():
        return None, None
    ys, xs = moving.nonzero(as_tuple=True)
    reach = int(top_speed.max().ceil()) + 2
    y0, y1 = max(int(ys.min()) - reach, 0), min(int(ys.max()) + reach + 1, low_h)
    x0, x1 = max(int(xs.min()) - reach, 0), min(int(xs.max()) + reach + 1, low_w)
    rows = slice(int(y0 * scale_y), min(int(math.ceil(y1 * scale_y)), height))
    cols = slice(int(x0 * scale_x), min(int(math.ceil(x1 * scale_x)), width))
    still = (top_speed <= still_px)[None].expand(steps, -1, -1)
    backward, coverage = splat(-forward_flows, forward_flows, still)                   # [T, 2, h, w], [T, 1, h, w]
    fields = torch.cat([backward * torch.tensor([scale_x, scale_y]).view(1, 2, 1, 1), coverage], dim=1)
    fields = fields.permute(0, 2, 3, 1).contiguous().numpy()                          # [T, h, w, 3]: dx, dy, cover
    crop = rgb[rows, cols]
    plate = _plate_uint8(crop, top_speed.numpy(), (width, height), (rows, cols))
    grid_x, grid_y = np.meshgrid(np.arange(cols.start, cols.stop, dtype=np.float32),
                                 np.arange(rows.start, rows.stop, dtype=np.float32))
    frames = np.empty((steps, *crop.shape), np.uint8)
    for t in range(steps):
        field = cv2.resize(fields[t], (width, height), interpolation=cv2.INTER_LINEAR)[rows, cols]
        sampled = cv2.remap(rgb, grid_x + field[..., 0], grid_y + field[..., 1], cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
        cover = np.ascontiguousarray(field[..., 2])
        frames[t] = cv2.blendLinear(sampled, plate, cover, 1.0 - cover)
    return (rows, cols), frames


def _plate_uint8(crop: np.ndarray, top_speed: np.ndarray, size: tuple[int, int], box) -> np.ndarray:
    """The background plate of an 8-bit crop [h', w', 3] of the full-size image, whose flow's top speed
    [h, w] (px of the flow's grid) is scaled up to `size` (width, height) and cut to `box`."""
    scale = max(size[0] / top_speed.shape[1], size[1] / top_speed.shape[0])
    speed = cv2.resize(top_speed, size, interpolation=cv2.INTER_LINEAR)[box[0], box[1]] * scale
    image = torch.tensor(crop).permute(2, 0, 1)[None].float()
    still = torch.from_numpy(speed <= MOVING_PX * scale)[None, None].float()
    plate = background_plate(image, still)[0].permute(1, 2, 0)
    return plate.round().clamp(0, 255).to(torch.uint8).numpy()
