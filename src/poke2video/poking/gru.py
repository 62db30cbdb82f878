"""The paper's model behind `Poker` (family gru): the poke drawn as a poke map, frames drawn by the network.

The network sees the image resized to the model's square resolution and the poke map (data/pokes.py); its
frames are resized back to the image's size.
"""
from __future__ import annotations

import numpy as np
import torch

from poke2video.config import poke_size_for
from poke2video.data.pokes import make_pokes_map
from poke2video.model.poke_model import PokeModel
from poke2video.poking.adapter import Adapter
from poke2video.poking.frames import frame_tensor, resize_image


class _VideoOnly(torch.nn.Module):
    """PokeModel -> its video alone, for a fixed number of frames (what is traced)."""

    def __init__(self, model: PokeModel, frames: int):
        super().__init__()
        self.model, self.frames = model, frames

    def forward(self, source_frame: torch.Tensor, poke_map: torch.Tensor) -> torch.Tensor:
        return self.model.predict(source_frame, poke_map, self.frames).video


class GRUPoking(Adapter):
    """A PokeModel poked through `Poker`: a drag is read as a displacement, or as an impulse by a model
    trained on impulses."""

    gives_flow = False         # its frames are drawn, not moved along a flow
    reads_impulses = True

    def animate(self, rgb: np.ndarray, pokes: list[tuple[tuple[float, float], tuple[float, float]]],
                pins: list[tuple[float, float]], output_size: str) -> np.ndarray:
        """uint8 image [H, W, 3] + pokes [(poked pixel, the poke map's vector)] in model pixels -> uint8 video
        [T, H, W, 3] (or [T, R, R, 3] for `output_size` "model"). Several pokes share one poke map (the sum of
        their squares); `Poker` refuses pins for this family, which has no flow to hold."""
        res = self.resolution
        height, width = rgb.shape[:2]
        poke_map = make_pokes_map(res, pokes, poke_size_for(res))
        video = self._generate(resize_image(rgb, res, res), poke_map)
        if output_size == "model" or (width, height) == (res, res):
            return video
        return np.stack([resize_image(frame, width, height) for frame in video])

    def _generate(self, frame: np.ndarray, poke_map: np.ndarray) -> np.ndarray:
        """uint8 frame [R, R, 3] + poke map [2, R, R] -> uint8 video [T, R, R, 3]."""
        device, res = self.device(), self.resolution
        inputs = (frame_tensor(frame, device), torch.from_numpy(poke_map)[None].to(device))
        video = self.run(inputs, lambda image, poke: self.model(image, poke, self.frames)[0],
                         lambda: _VideoOnly(self.model, self.frames),
                         (torch.zeros(1, 3, res, res, device=device), torch.zeros(1, 2, res, res, device=device)))
        pixels = video[0].permute(0, 2, 3, 1).add(1).mul(127.5).round().clamp(0, 255)
        return pixels.to(torch.uint8).cpu().numpy()
