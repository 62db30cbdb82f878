"""The renderer's building blocks: the flow turned around, and the background plate.

A forward flow F_t(p) says where source pixel p is at frame t; a backward flow B_t(q) says where in the
source the pixel q of frame t comes from (docs/architecture.md). `backward_field` turns a forward flow
around: the moving pixels' -F spread along F (`splat`: bilinearly over the four pixels around p + F(p),
the faster winning where several land, weights exp(FRONT_BACKWARD * |F|)), filled where nothing landed,
then refined by Newton steps on p + F(p) = q (`refine_backward`), so that a part that turns rigidly is
turned back exactly, edges included. `background_plate` fills the pixels of an image that a mask leaves
out from the known ones around them (a push-pull pyramid). `model/render.py` draws frames with them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

FRONT_BACKWARD = 1.0  # per px of motion: how much a faster pixel outweighs a slower one where both land; low,
#                       so that a turning part's speed gradient does not bias the backward field
NEWTON_STEPS = 3     # refinements of the backward field
MAX_STEP_PX = 2.0    # px: the longest Newton step taken (a fold or a tear would ask for more)
MIN_DETERMINANT = 0.1  # where p + F(p) is this close to folding over, no Newton step is taken
DIRECTIONS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def splat(values: torch.Tensor, flow: torch.Tensor, moving: torch.Tensor, front_per_px: float = FRONT_BACKWARD
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """values [N, C, H, W], forward flow [N, 2, H, W] (px), moving [N, H, W] bool -> (mean [N, C, H, W],
    coverage [N, 1, H, W]).

    Each moving pixel's values are spread bilinearly over the four pixels around p + F(p). mean: the
    front-weighted mean of what lands on each pixel (weights exp(front_per_px * |F|), 0 where nothing
    lands); coverage: the plain bilinear weight that landed there, clamped to [0, 1]. The sums are kept
    channels-last, [N, H, W, C + 2], so every scattered pixel adds one row."""
    batch, channels, height, width = values.shape
    accumulated = values.new_zeros(batch * height * width, channels + 2)
    index = moving.flatten().nonzero().squeeze(1)                                    # [M] flat pixel indices
    if len(index):
        motion = flow.permute(0, 2, 3, 1).reshape(-1, 2)[index]                     # [M, 2] px
        front = torch.exp(front_per_px * torch.hypot(motion[:, 0], motion[:, 1]).clamp(max=8.0))
        rows = torch.cat([values.permute(0, 2, 3, 1).reshape(-1, channels)[index] * front[:, None], front[:, None],
                          torch.ones_like(front)[:, None]], dim=1)                  # [M, C + 2]
        n, rest = index // (height * width), index % (height * width)
        x, y = (rest % width).to(flow.dtype) + motion[:, 0], (rest // width).to(flow.dtype) + motion[:, 1]
        x0, y0 = x.floor(), y.floor()
        corner_x = torch.stack([x0, x0 + 1, x0, x0 + 1])                             # [4, M]
        corner_y = torch.stack([y0, y0, y0 + 1, y0 + 1])
        weight = (1 - (x - corner_x).abs()) * (1 - (y - corner_y).abs())
        inside = (corner_x >= 0) & (corner_x < width) & (corner_y >= 0) & (corner_y < height)
        weight = weight * inside
        target = (n * height + corner_y.clamp(0, height - 1).long()) * width + corner_x.clamp(0, width - 1).long()
        accumulated.index_add_(0, target.flatten(), (rows[None] * weight[..., None]).flatten(0, 1))
    accumulated = accumulated.view(batch, height, width, channels + 2).permute(0, 3, 1, 2)
    mean = accumulated[:, :channels] / accumulated[:, channels:channels + 1].clamp(min=1e-6)
    return mean, accumulated[:, channels + 1:].clamp(0.0, 1.0)


def background_plate(image: torch.Tensor, still: torch.Tensor) -> torch.Tensor:
    """image [N, C, H, W], still [N, 1, H, W] in {0, 1} -> the image with every non-still pixel filled from
    the still pixels nearby (mask-weighted averages down a pyramid to one pixel, then filled back up). An
    image with no still pixel is filled with its own mean colour."""
    levels = [(image * still, still)]
    while max(levels[-1][1].shape[-2:]) > 1:
        colour, weight = levels[-1]
        levels.append((F.avg_pool2d(colour, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True)))
    top_colour, top_weight = levels[-1]
    filled = torch.where(top_weight > 0, top_colour / top_weight.clamp(min=1e-12), image.mean(dim=(-2, -1), keepdim=True))
    for colour, weight in reversed(levels[1:-1]):
        coarse = F.interpolate(filled, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        known = weight.clamp(0.0, 1.0)
        filled = known * colour / weight.clamp(min=1e-6) + (1 - known) * coarse
    if len(levels) == 1:
        return filled
    coarse = F.interpolate(filled, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return torch.where(still > 0, image, coarse)       # the same sum, the finest mask being 0 or 1


def backward_field(flows: torch.Tensor, moving: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """forward flows [N, 2, H, W] (px), moving [N, H, W] bool (the pixels that move) -> (backward flows
    [N, 2, H, W], the forward flows extended [N, 2, H, W]).

    Backward: for each pixel q of the frame, the offset to the source point p that lands on q. The moving
    pixels' -F is splatted along F (front-weighted as `splat`, FRONT_BACKWARD per px); where none lands (a
    hole in a stretched part, the rim around it, the rest of the frame) the field is filled from where some
    landed (`background_plate`'s push-pull); then `refine_backward` solves p + F(p) = q. Extended: F
    continued linearly three pixels past the moving ones (`extend_field`), so that a point read between a
    part's edge pixel and the background moves with the part."""
    mass = moving[:, None].to(flows.dtype)
    if torch.equal(moving, moving[:1].expand_as(moving)):      # one mask for all frames: extend them as one
        extended = extend_field((flows * mass).reshape(1, -1, *flows.shape[-2:]), mass[:1]).view_as(flows)
    else:
        extended = extend_field(flows * mass, mass)
    backward, coverage = splat(-flows, flows, moving)
    backward = background_plate(backward, (coverage > 0).to(flows.dtype))
    return refine_backward(backward, extended), extended


def extend_field(field: torch.Tensor, known: torch.Tensor, rings: int = 3) -> torch.Tensor:
    """field [N, C, H, W], known [N, 1, H, W] in {0, 1} -> the field continued `rings` pixels past the known
    ones: a pixel next to known ones takes the mean over the directions d of 2 f(q - d) - f(q - 2 d) where
    both are known (a linear continuation), else of f(q - d). Known pixels keep their values.

    Only a ring's new pixels are computed: their neighbours two pixels out are gathered from the field
    padded by 2, and their values written back into it."""
    height, width = field.shape[-2:]
    padded_field = F.pad(field, (2, 2, 2, 2)).permute(0, 2, 3, 1)                  # [N, H + 4, W + 4, C]
    padded_known = F.pad(known[:, 0], (2, 2, 2, 2))                                 # [N, H + 4, W + 4]
    steps = torch.tensor(DIRECTIONS, device=field.device)                           # [8, 2]: dy, dx
    for _ in range(rings):
        centre = padded_known[:, 2:2 + height, 2:2 + width]
        around = F.max_pool2d(padded_known[:, None, 1:3 + height, 1:3 + width], 3, stride=1)[:, 0]
        n, y, x = ((centre == 0) & (around > 0)).nonzero(as_tuple=True)               # the ring's new pixels
        if not len(n):
            break
        one_y, one_x = y + 2 - steps[:, :1], x + 2 - steps[:, 1:]                    # [8, K] in padded px
        two_y, two_x = y + 2 - 2 * steps[:, :1], x + 2 - 2 * steps[:, 1:]
        one_known, two_known = padded_known[n, one_y, one_x], padded_known[n, two_y, two_x]
        both = (one_known * two_known)[..., None]                                     # [8, K, 1]
        linear_terms = both * (2 * padded_field[n, one_y, one_x] - padded_field[n, two_y, two_x])
        near_terms = one_known[..., None] * padded_field[n, one_y, one_x]
        linear, near = linear_terms[0], near_terms[0]
        linear_count, near_count = both[0], one_known[0, :, None]
        for d in range(1, len(DIRECTIONS)):                 # summed in DIRECTIONS order, term by term
            linear, near = linear + linear_terms[d], near + near_terms[d]
            linear_count, near_count = linear_count + both[d], near_count + one_known[d, :, None]
        guess = torch.where(linear_count > 0, linear / linear_count.clamp(min=1), near / near_count.clamp(min=1))
        padded_field[n, y + 2, x + 2] = guess
        padded_known[n, y + 2, x + 2] = 1.0
    return padded_field[:, 2:2 + height, 2:2 + width].permute(0, 3, 1, 2)


def refine_backward(backward: torch.Tensor, flows: torch.Tensor, steps: int = NEWTON_STEPS) -> torch.Tensor:
    """backward [N, 2, H, W] (a first guess), forward flows [N, 2, H, W] -> the backward field after `steps`
    Newton steps on p + F(p) = q, p = q + B(q), F and its Jacobian read bilinearly at p. A step is at most
    MAX_STEP_PX long and is not taken where I + dF/dp nearly folds (determinant under MIN_DETERMINANT)."""
    layers = torch.cat([flows, _jacobian(flows)], dim=1)                     # [N, 6, H, W]: F, dF/dx, dF/dy
    for _ in range(steps):
        read = read_at(layers, backward)
        miss_x, miss_y = backward[:, 0] + read[:, 0], backward[:, 1] + read[:, 1]
        a, b, c, d = 1 + read[:, 2], read[:, 4], read[:, 3], 1 + read[:, 5]      # I + dF/dp, row by row
        det = a * d - b * c
        safe = det > MIN_DETERMINANT
        det = torch.where(safe, det, torch.ones_like(det))
        step = torch.stack([(d * miss_x - b * miss_y) / det, (a * miss_y - c * miss_x) / det], dim=1)
        length = torch.hypot(step[:, 0], step[:, 1])[:, None]
        step = step * (MAX_STEP_PX / length.clamp(min=MAX_STEP_PX)) * safe[:, None]
        backward = backward - step
    return backward


def _jacobian(flows: torch.Tensor) -> torch.Tensor:
    """flows [N, 2, H, W] -> [N, 4, H, W]: dFx/dx, dFy/dx, dFx/dy, dFy/dy by central differences (one-sided
    at the border)."""
    pad = F.pad(flows, (1, 1, 1, 1), mode="replicate")
    d_dx = (pad[..., 1:-1, 2:] - pad[..., 1:-1, :-2]) / 2
    d_dy = (pad[..., 2:, 1:-1] - pad[..., :-2, 1:-1]) / 2
    d_dx[..., 0], d_dx[..., -1] = flows[..., 1] - flows[..., 0], flows[..., -1] - flows[..., -2]
    d_dy[..., 0, :], d_dy[..., -1, :] = flows[..., 1, :] - flows[..., 0, :], flows[..., -1, :] - flows[..., -2, :]
    return torch.cat([d_dx, d_dy], dim=1)


def read_at(layers: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """layers [N, C, H, W] read bilinearly at q + backward(q) for every pixel q (zero outside) -> [N, C, H, W]."""
    height, width = layers.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=backward.dtype, device=backward.device),
                            torch.arange(width, dtype=backward.dtype, device=backward.device), indexing="ij")
    grid = torch.stack([(xs + backward[:, 0]) * (2 / max(width - 1, 1)) - 1,
                        (ys + backward[:, 1]) * (2 / max(height - 1, 1)) - 1], dim=-1)
    return F.grid_sample(layers, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
