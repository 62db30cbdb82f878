"""Fréchet Video Distance: I3D (Kinetics-400) features of two sets of videos, compared as Gaussians.

The network (`pretrained/i3d.py`) is the widely used PyTorch port of the TF-Hub I3D, called as
`model(videos [B, 3, T, 224, 224] in [-1, 1], rescale=False, resize=False, return_features=True)`
-> [B, 400] logits before the softmax, the features FVD uses.

Preparing clips (`prepare_clips`), the same for every model, baseline and the real videos:
- Frames are resized to 224 x 224 (bilinear), as the ports do before calling the network.
- Clip length: I3D downsamples time by 8 and ends in a temporal average pool of width 2, so the port
  fails on clips shorter than about 10 frames, and FVD is conventionally measured on 16-frame clips
  (the TF reference and StyleGAN-V). Our clips are the source frame plus T = 10 generated frames; we
  stretch them to 16 frames by repeating frames (nearest frame in time, no synthesis). FVD numbers
  are therefore comparable between our models and baselines, not with papers that feed 16 real frames.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

I3D_SIZE = 224
I3D_FRAMES = 16


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """|mean_a - mean_b|^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2)) for Gaussians in D dimensions.

    The trace of the matrix square root is the sum of square roots of the eigenvalues of the
    symmetric PSD matrix cov_a^(1/2) cov_b cov_a^(1/2) (same eigenvalues as cov_a cov_b). The
    eigen-decompositions run in torch (float64), so they follow torch's thread setting.
    """
    mean_a, mean_b, cov_a, cov_b = (torch.as_tensor(np.asarray(m, np.float64)) for m in (mean_a, mean_b, cov_a, cov_b))
    values_a, vectors_a = torch.linalg.eigh((cov_a + cov_a.T) / 2)
    sqrt_a = (vectors_a * values_a.clamp(min=0).sqrt()) @ vectors_a.T  # [D, D]
    middle = sqrt_a @ cov_b @ sqrt_a
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    distance = ((mean_a - mean_b) ** 2).sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return float(distance.clamp(min=0))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased covariance [D, D] of features [N, D] (N >= 2)."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need features [N >= 2, D], got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def prepare_clips(videos: np.ndarray, frames: int = I3D_FRAMES) -> torch.Tensor:
    """uint8 [B, T, H, W, 3] -> float32 [B, 3, frames, 224, 224] in [-1, 1] (see the module docstring)."""
    videos = np.asarray(videos)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"need uint8 videos [B, T, H, W, 3], got {videos.dtype} {videos.shape}")
    length = videos.shape[1]
    nearest = (np.arange(frames) * length) // frames  # frame repetition, evenly spread
    clips = torch.from_numpy(np.ascontiguousarray(videos[:, nearest])).float() / 127.5 - 1.0  # [B, F, H, W, 3]
    batch = clips.shape[0]
    flat = clips.flatten(0, 1).permute(0, 3, 1, 2)  # [B*F, 3, H, W]
    resized = F.interpolate(flat, size=(I3D_SIZE, I3D_SIZE), mode="bilinear", align_corners=False)
    return resized.view(batch, frames, 3, I3D_SIZE, I3D_SIZE).permute(0, 2, 1, 3, 4).contiguous()


def i3d_features(videos: np.ndarray, model, batch: int = 4, desc: str = "I3D features") -> np.ndarray:
    """float64 [N, 400] I3D features of uint8 videos [N, T, H, W, 3], in batches with a progress bar."""
    device = next(iter(model.parameters())).device
    features = []
    with torch.inference_mode():
        for start in tqdm(range(0, len(videos), batch), desc=desc, unit="batch", leave=False):
            clips = prepare_clips(videos[start : start + batch]).to(device)
            features.append(model(clips, rescale=False, resize=False, return_features=True).double().cpu())
    return torch.cat(features).numpy()


def fvd(videos_a: np.ndarray, videos_b: np.ndarray, model, batch: int = 4) -> float:
    """FVD between two sets of uint8 videos [N, T, H, W, 3] (N >= 2 each) under the I3D `model`."""
    stats_a = gaussian_stats(i3d_features(videos_a, model, batch, "I3D features (a)"))
    stats_b = gaussian_stats(i3d_features(videos_b, model, batch, "I3D features (b)"))
    return frechet_distance(*stats_a, *stats_b)
