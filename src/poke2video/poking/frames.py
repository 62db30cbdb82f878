"""An image at the model's size and as the network's input."""
from __future__ import annotations

import cv2
import numpy as np
import torch


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 [H, W, 3] resized to width x height (area when shrinking, bilinear when growing)."""
    shrinking = width < image.shape[1] or height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def frame_tensor(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 frame [R, R, 3] -> float [1, 3, R, R] in [-1, 1] on `device`."""
    return torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
