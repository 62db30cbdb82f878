"""The flow UNet behind `Poker` (family unet): its flows at the model's size, the image carried along them.

The network sees the image resized to the model's square resolution and the poke as numbers (x, y, dx, dy
in model pixels); its forward flows are scaled to the image's size and the image's own pixels are carried
along them, so a pixel that does not move keeps its exact value (docs/architecture.md, "Output at the
user's size").
"""
from __future__ import annotations

import numpy as np
import torch

from poke2video.model.flow_unet import FlowUNet
from poke2video.model.mirror import mirror_maps, mirror_points
from poke2video.model.render import STILL_PX, render_box, render_upscaled
from poke2video.poking.adapter import Adapter
from poke2video.poking.frames import frame_tensor, resize_image
from poke2video.poking.pins import hold_pins


Pokes = list[tuple[tuple[float, float], tuple[float, float]]]   # [(source pixel, drag)] in model px
Pins = list[tuple[float, float]]                                  # [(x, y)] in model px


class _FlowsOnly(torch.nn.Module):
    """FlowUNet -> its forward flows alone, for a fixed number of frames (what is traced)."""

    def __init__(self, model: FlowUNet, frames: int):
        super().__init__()
        self.model, self.frames = model, frames

    def forward(self, source_frame: torch.Tensor, pokes: torch.Tensor, *pins: torch.Tensor) -> torch.Tensor:
        return self.model.forward_flows(source_frame, pokes, self.frames, pins=pins[0] if pins else None)


class FlowPoking(Adapter):
    """A FlowUNet poked through `Poker`: drags are read as displacements only, times the model's
    `drag_scale`; pins are read by a model with a pin channel, and held at render time for every model
    (`pins.hold_pins`)."""

    gives_flow = True
    reads_impulses = False

    def animate(self, rgb: np.ndarray, pokes: Pokes, pins: Pins, output_size: str) -> np.ndarray:
        """uint8 image [H, W, 3] + pokes and pins in model pixels -> uint8 video [T, H, W, 3] (or [T, R, R, 3]
        for `output_size` "model")."""
        res = self.resolution
        flows = self.flows(rgb, pokes, pins)
        return render_uint8(resize_image(rgb, res, res) if output_size == "model" else rgb, flows, STILL_PX)

    def animate_with_flow(self, rgb: np.ndarray, pokes: Pokes, pins: Pins) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 video [T, H, W, 3], float32 forward flow [T, 2, H, W] in image pixels) from one network run."""
        flows = self.flows(rgb, pokes, pins)
        return render_uint8(rgb, flows, STILL_PX), resize_flows(flows, rgb.shape[1], rgb.shape[0]).numpy()

    def image_flows(self, rgb: np.ndarray, pokes: Pokes, pins: Pins) -> np.ndarray:
        """float32 forward flows [T, 2, H, W] in the pixels of the image `rgb` [H, W, 3]."""
        return resize_flows(self.flows(rgb, pokes, pins), rgb.shape[1], rgb.shape[0]).numpy()

    def flows(self, rgb: np.ndarray, pokes: Pokes, pins: Pins) -> torch.Tensor:
        """uint8 image [H, W, 3] + pokes and pins in model pixels -> the model's forward flows [T, 2, R, R]
        (model px, CPU), held at the pins; with the config's `mirror_average`, the mean of the flows for the
        image and for its mirror image, mirrored back (both in one batch)."""
        device, res, cfg = self.device(), self.resolution, self.model.cfg
        frame = frame_tensor(resize_image(rgb, res, res), device)                          # [1, 3, R, R]
        numbers = torch.tensor([[(*source, drag[0] * cfg.drag_scale, drag[1] * cfg.drag_scale, 1.0)
                                 for source, drag in pokes]], dtype=torch.float32, device=device)   # [1, N, 5]
        inputs = (frame, numbers)
        if cfg.pin_input:
            inputs += (torch.tensor([[(x, y, 1.0) for x, y in pins]], dtype=torch.float32,
                                    device=device).view(1, len(pins), 3),)
        if cfg.mirror_average:      # image, pokes (x, y, dx, dy, 1) and pins (x, y, 1), each beside its mirror
            mirrors = (mirror_maps, lambda rows: mirror_points(rows, res, True),
                       lambda rows: mirror_points(rows, res, False))
            inputs = tuple(torch.cat([tensor, mirror(tensor)]) for tensor, mirror in zip(inputs, mirrors))
        flows = self.run(inputs, lambda image, numbers, *held: self.model.forward_flows(
                             image, numbers, self.frames, pins=held[0] if held else None),
                         lambda: _FlowsOnly(self.model, self.frames),
                         tuple(torch.ones_like(tensor) for tensor in inputs)).float().cpu()
        if cfg.mirror_average:
            flows = (flows[:1] + mirror_maps(flows[1:], vectors=True)) / 2
        return hold_pins(flows[0], pins)


def resize_flows(flows: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Forward flows [T, 2, R, R] in model pixels -> [T, 2, height, width] in the image's pixels."""
    if flows.shape[-2:] == (height, width):
        return flows
    resized = torch.nn.functional.interpolate(flows, size=(height, width), mode="bilinear", align_corners=False)
    return resized * torch.tensor([width / flows.shape[-1], height / flows.shape[-2]]).view(1, 2, 1, 1)


def render_uint8(rgb: np.ndarray, flows: torch.Tensor, still_px: float) -> np.ndarray:
    """uint8 image [H, W, 3] carried along forward flows [T, 2, h, w] -> uint8 video [T, H, W, 3]; pixels
    whose flow stays within `still_px` (of the flow's grid) keep their value. A flow of the image's size is
    drawn as tensors (`render.render_box`); a smaller one is turned around at its size and the 8-bit image
    read along it (`render.render_upscaled`); either way only the box that moves is computed."""
    video = np.repeat(rgb[None], len(flows), axis=0)
    with torch.inference_mode():
        if flows.shape[-2:] == rgb.shape[:2]:
            image = torch.tensor(rgb).permute(2, 0, 1)[None].float()
            box, frames = render_box(image, flows[None].float(), still_px)
            if box is not None:
                frames = frames[0].round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        else:
            box, frames = render_upscaled(rgb, flows.float(), still_px)
    if box is not None:
        video[:, box[0], box[1]] = frames
    return video
