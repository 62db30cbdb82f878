"""Flow helpers of the warp output: backward warping, and turning a forward flow into a backward one.

Flow is [N, 2, H, W] in pixels, channel 0 = x (right), 1 = y (down). A forward flow says where each
source pixel goes; a backward flow says, for each pixel of the new frame, where in the source it comes from.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _sample(image: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """image [N, C, H, W] read bilinearly at pixel coordinates x, y [N, h, w] (border) -> [N, C, h, w]."""
    height, width = image.shape[-2:]
    grid = torch.stack([x * (2.0 / max(width - 1, 1)) - 1.0, y * (2.0 / max(height - 1, 1)) - 1.0], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def warp(image: torch.Tensor, backward_flow: torch.Tensor) -> torch.Tensor:
    """Sample image [N, C, H, W] at p + backward_flow(p) [N, 2, H, W] (pixels; x, y), bilinear, border."""
    _, _, height, width = image.shape
    ys, xs = torch.meshgrid(torch.arange(height, device=image.device, dtype=image.dtype),
                            torch.arange(width, device=image.device, dtype=image.dtype), indexing="ij")
    return _sample(image, xs + backward_flow[:, 0], ys + backward_flow[:, 1])


def sample_points(image: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """image [N, C, H, W] read bilinearly at one point per image, xy [N, 2] (pixels; border) -> [N, C]."""
    return _sample(image, xy[:, 0].view(-1, 1, 1), xy[:, 1].view(-1, 1, 1)).flatten(1)


def backward_flow_target(forward_flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn F(0 -> T) [B, 2, H, W] (where each source pixel goes) into the backward flow of frame T
    (where each pixel of frame T comes from): every source pixel p lands on q = round(p + F(p)) and
    gives B(q) = -F(p). Where several land on one pixel the fastest wins (a moving part covers the
    still background; ties are averaged). -> (backward flow [B, 2, H, W], valid [B, 1, H, W]); a
    pixel nothing lands on (just uncovered) is not valid: its content is new, not moved.
    """
    batch, _, height, width = forward_flow.shape
    flow = forward_flow.float()
    ys, xs = torch.meshgrid(torch.arange(height, device=flow.device), torch.arange(width, device=flow.device),
                            indexing="ij")
    land_x = (xs + flow[:, 0]).round().long()                      # [B, H, W]
    land_y = (ys + flow[:, 1]).round().long()
    inside = (land_x >= 0) & (land_x < width) & (land_y >= 0) & (land_y < height)
    target_index = (land_y.clamp(0, height - 1) * width + land_x.clamp(0, width - 1)).flatten(1)  # [B, HW]
    speed = torch.where(inside, flow.norm(dim=1), torch.full_like(flow[:, 0], -1.0)).flatten(1)
    fastest = speed.new_full((batch, height * width), -1.0).scatter_reduce(1, target_index, speed, "amax")
    wins = (inside.flatten(1) & (speed >= fastest.gather(1, target_index))).float()        # [B, HW]
    sums = flow.new_zeros(batch, 3, height * width)
    contribution = torch.cat([-flow.flatten(2), torch.ones_like(flow[:, :1]).flatten(2)], 1) * wins[:, None]
    sums.scatter_add_(2, target_index[:, None].expand(-1, 3, -1), contribution)
    count = sums[:, 2:]
    backward = (sums[:, :2] / count.clamp(min=1.0)).view(batch, 2, height, width)
    return backward, (count > 0).float().view(batch, 1, height, width)
