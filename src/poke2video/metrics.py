"""Video metrics shared by validation, the evaluator, our model, its ablations and the baselines.

Every metric takes uint8 RGB videos `[T, H, W, 3]` (convert model output with `to_uint8_video`).
Videos that start with the source frame (tracking, endpoint error, motion error, stillness) say so in
their argument name. All functions are deterministic; `bootstrap_interval` is seeded.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

from poke2video.data.flow import FlowEstimator, check_trackable, downscale_flow, get_flow_estimator

TRACKER = "farneback-fine"  # the flow that tracks pixels for every metric unless one is named

PSNR_CAP_DB = 100.0  # per-frame PSNR of identical frames (infinite by definition) is reported as this
SSIM_SIGMA = 1.5  # Gaussian window of Wang et al. 2004: sigma 1.5, 11x11 (truncated at 3.5 sigma)
SSIM_TRUNCATE = 3.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def to_uint8_video(frames) -> np.ndarray:
    """Model-space frames float [T, 3, H, W] in [-1, 1] (torch or numpy) -> uint8 [T, H, W, 3]."""
    if hasattr(frames, "detach"):
        frames = frames.detach().float().cpu().numpy()
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected frames [T, 3, H, W], got shape {frames.shape}")
    scaled = (np.clip(frames, -1.0, 1.0) + 1.0) * 127.5
    return np.rint(scaled).astype(np.uint8).transpose(0, 2, 3, 1)


def _check_video(video: np.ndarray, name: str) -> np.ndarray:
    video = np.asarray(video)
    if video.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 [T, H, W, 3], got dtype {video.dtype}")
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"{name} must be uint8 [T, H, W, 3], got shape {video.shape}")
    return video


def _check_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _check_video(pred, "pred"), _check_video(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    return pred, target


def psnr_per_frame(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """float64 [T] PSNR in dB against a peak of 255; identical frames give `PSNR_CAP_DB`."""
    pred, target = _check_pair(pred, target)
    diff = pred.astype(np.float64) - target.astype(np.float64)
    mse = (diff**2).mean(axis=(1, 2, 3))  # [T]
    with np.errstate(divide="ignore"):
        frame_psnr = 10.0 * np.log10(255.0**2 / mse)
    return np.minimum(frame_psnr, PSNR_CAP_DB)


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """Frame-averaged PSNR (dB) of two uint8 videos [T, H, W, 3]; each frame capped at `PSNR_CAP_DB`."""
    return float(psnr_per_frame(pred, target).mean())


def ssim_per_frame(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """float64 [T] SSIM (Wang et al. 2004) averaged over RGB channels and the valid window positions.

    Gaussian window sigma 1.5 (11x11), K1 0.01, K2 0.03, population covariances, data range 255,
    reflected borders then a 5-pixel border dropped: the same as
    `skimage.metrics.structural_similarity(..., channel_axis=-1, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)`.
    """
    pred, target = _check_pair(pred, target)
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(pred.shape[1:3]) < 2 * radius + 1:
        raise ValueError(f"SSIM needs frames of at least {2 * radius + 1} px, got {pred.shape[1:3]}")
    x, y = pred.astype(np.float64), target.astype(np.float64)  # [T, H, W, 3]

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(a, sigma=(0, SSIM_SIGMA, SSIM_SIGMA, 0), truncate=SSIM_TRUNCATE, mode="reflect")

    mean_x, mean_y = blur(x), blur(y)
    var_x = blur(x * x) - mean_x**2
    var_y = blur(y * y) - mean_y**2
    cov_xy = blur(x * y) - mean_x * mean_y
    c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    valid = ssim_map[:, radius:-radius, radius:-radius, :]
    return valid.mean(axis=(1, 2, 3))


def ssim(pred: np.ndarray, target: np.ndarray) -> float:
    """Frame-averaged SSIM of two uint8 videos [T, H, W, 3] (see `ssim_per_frame`)."""
    return float(ssim_per_frame(pred, target).mean())


def _bilinear(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Sample field [C, H, W] (H, W >= 2) at points [N, 2] = (x, y) inside the image; -> [N, C]."""
    _, height, width = field.shape
    x0 = np.minimum(points[:, 0].astype(np.int64), width - 2)
    y0 = np.minimum(points[:, 1].astype(np.int64), height - 2)
    fx, fy = (points[:, 0] - x0)[:, None], (points[:, 1] - y0)[:, None]  # [N, 1]

    def corner(dy: int, dx: int) -> np.ndarray:  # [N, C]
        return field[:, y0 + dy, x0 + dx].T

    top = corner(0, 0) * (1 - fx) + corner(0, 1) * fx
    bottom = corner(1, 0) * (1 - fx) + corner(1, 1) * fx
    return top * (1 - fy) + bottom * fy


def sample_flow(flow: np.ndarray, points) -> np.ndarray:
    """float64 [N, 2]: flow [2, H, W] read bilinearly at points [N, 2] = (x, y) (clamped to the image)."""
    flow = np.asarray(flow, np.float64)
    limits = np.array([flow.shape[2] - 1.0, flow.shape[1] - 1.0])
    return _bilinear(flow, np.clip(np.asarray(points, np.float64).reshape(-1, 2), 0.0, limits))


def track_points(video: np.ndarray, points, flow: FlowEstimator | None = None) -> np.ndarray:
    """Follow pixels of frame 0, points [N, 2] = (x, y), through the video; -> float64 [T, N, 2].

    Chains optical flow frame to frame (the `TRACKER` estimator unless `flow` is given), reading each flow
    bilinearly at the current positions; positions stay inside the image. Chaining small steps
    follows parts that move further than their own size, which one flow from frame 0 does not.
    """
    video = _check_video(video, "video")
    estimator = flow if flow is not None else get_flow_estimator(TRACKER)
    check_trackable("the video", video.shape[2], video.shape[1], estimator)
    step_flows = [estimator(video[t - 1], video[t]) for t in range(1, len(video))]
    return follow_points(step_flows, points, video.shape[1:3])


def follow_points(step_flows, points, frame_size: tuple[int, int]) -> np.ndarray:
    """Carry points [N, 2] = (x, y) along the per-step flows [T][2, H, W] F(t -> t+1) of frames of
    `frame_size` (H, W), each read bilinearly at the points' current positions; -> float64 [T+1, N, 2], row 0
    the start. Positions stay in the image."""
    height, width = frame_size
    limits = np.array([width - 1.0, height - 1.0])  # (x, y) maxima
    positions = np.zeros((len(step_flows) + 1, len(points), 2), np.float64)
    positions[0] = np.clip(np.asarray(points, np.float64).reshape(-1, 2), 0.0, limits)
    for t, step_flow in enumerate(step_flows, start=1):
        positions[t] = np.clip(positions[t - 1] + _bilinear(step_flow, positions[t - 1]), 0.0, limits)
    return positions


def tracked_grid_motion(step_flows: np.ndarray, resolution: int) -> np.ndarray:
    """Every pixel of a large frame followed along its step flows float [T, 2, L, L] (`follow_points`), its
    displacement from frame 0 at frames 1..T area-averaged down to `resolution` and scaled to its pixels:
    float32 [T, 2, resolution, resolution]. Tracking frames larger than a store's keeps a thin moving part
    from smearing into what is around it."""
    every_pixel = np.ones(step_flows.shape[-2:], bool)
    start_xy = mask_points(every_pixel)                                                   # [L*L, 2]
    positions = follow_points(step_flows, start_xy, every_pixel.shape)                    # [T+1, L*L, 2]
    displacement = motion_field(positions[1:] - start_xy, every_pixel)                    # [T, 2, L, L]
    return np.stack([downscale_flow(frame, resolution) for frame in displacement])


def track_point(video: np.ndarray, xy, flow: FlowEstimator | None = None) -> np.ndarray:
    """Follow the pixel at xy = (x, y) of frame 0 through the video; -> float64 positions [T, 2]."""
    return track_points(video, np.asarray(xy, np.float64).reshape(1, 2), flow)[:, 0]


def poke_endpoint_error(video_with_source: np.ndarray, source_xy, target_xy, flow: FlowEstimator | None = None) -> float:
    """Distance in pixels between the tracked poked pixel at the last frame and the poke target.

    `video_with_source` is uint8 [T+1, H, W, 3] whose frame 0 is the source frame.
    """
    last_xy = track_point(video_with_source, source_xy, flow)[-1]
    return float(np.hypot(*(last_xy - np.asarray(target_xy, np.float64))))


def mask_points(mask: np.ndarray) -> np.ndarray:
    """float64 [N, 2]: the (x, y) of the True pixels of bool [H, W] `mask`, in `np.nonzero` order (the order
    `motion_field` reads displacements in)."""
    ys, xs = np.nonzero(mask)
    return np.stack([xs, ys], axis=1).astype(np.float64)


def motion_field(displacements: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Displacements [K, N, 2] of the `mask` pixels (in `np.nonzero(mask)` order) -> float64 [K, 2, H, W],
    zero off the mask."""
    mask = np.asarray(mask, bool)
    displacements = np.asarray(displacements, np.float64)
    if displacements.ndim != 3 or displacements.shape[1:] != (int(mask.sum()), 2):
        raise ValueError(f"displacements {displacements.shape} do not fit a mask of {int(mask.sum())} pixels")
    field = np.zeros((len(displacements), 2, *mask.shape), np.float64)
    field[:, :, mask] = displacements.transpose(0, 2, 1)
    return field


def tracked_motion(video_with_source: np.ndarray, mask: np.ndarray, frame_indices=None,
                   flow: FlowEstimator | None = None) -> np.ndarray:
    """float64 [K, 2, H, W]: where `track_points` carries each `mask` pixel of frame 0 by frame
    `frame_indices[k]` (default every frame after the source), minus where it started; zero off the mask."""
    video = _check_video(video_with_source, "video_with_source")
    mask = np.asarray(mask, bool)
    indices = np.arange(1, len(video)) if frame_indices is None else np.asarray(frame_indices)
    if len(indices) == 0 or indices.min() < 1 or indices.max() >= len(video):
        raise ValueError(f"frame_indices {indices.tolist()} do not fit a video of {len(video)} frames")
    if mask.shape != video.shape[1:3] or not mask.any():
        raise ValueError(f"mask must be a non-empty bool [H, W] of the video's size, got {mask.shape}")
    start_xy = mask_points(mask)                                          # [N, 2]
    positions = track_points(video[: indices.max() + 1], start_xy, flow)  # [T', N, 2]
    return motion_field(positions[indices] - start_xy, mask)


def motion_error(
    video_with_source: np.ndarray,
    gt_flow: np.ndarray,
    mask: np.ndarray,
    frame_indices=None,
    flow: FlowEstimator | None = None,
) -> float:
    """Mean endpoint error (px) between the generated video's motion and ground-truth flow on object pixels.

    `video_with_source` uint8 [T+1, H, W, 3], frame 0 the source. `gt_flow` [K, 2, H, W]: flow from
    frame 0 to frame `frame_indices[k]` (default 1..K). `mask` bool [H, W]: object pixels of frame 0.
    The generated motion of each object pixel from frame 0 is found by `track_points` (`tracked_motion`).
    """
    video = _check_video(video_with_source, "video_with_source")
    gt_flow = np.asarray(gt_flow, np.float32)
    indices = np.arange(1, len(gt_flow) + 1) if frame_indices is None else np.asarray(frame_indices)
    if gt_flow.ndim != 4 or gt_flow.shape[1] != 2 or gt_flow.shape[2:] != video.shape[1:3]:
        raise ValueError(f"gt_flow must be [K, 2, H, W] matching the video, got {gt_flow.shape}")
    if len(indices) != len(gt_flow):
        raise ValueError(f"frame_indices {indices.tolist()} do not fit {len(gt_flow)} flows")
    return motion_split(tracked_motion(video, mask, indices, flow), gt_flow, mask)["all"]


def endpoint_errors(motion: np.ndarray, true_motion: np.ndarray) -> np.ndarray:
    """float [K, H, W]: each pixel's endpoint error (px) of displacement fields [K, 2, H, W] against the truth."""
    return np.hypot(*np.moveaxis(np.asarray(motion) - np.asarray(true_motion), 1, 0))


def error_per_frame(motion: np.ndarray, true_motion: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float64 [K]: endpoint error (px) of displacement fields [K, 2, H, W] against the truth, mean over the
    `mask` pixels of each frame."""
    motion, true_motion, mask = np.asarray(motion, np.float64), np.asarray(true_motion, np.float64), np.asarray(mask, bool)
    if motion.shape != true_motion.shape or motion.ndim != 4 or mask.shape != motion.shape[2:] or not mask.any():
        raise ValueError(f"motion {motion.shape}, true motion {true_motion.shape} and mask {mask.shape} do not fit")
    return endpoint_errors(motion, true_motion)[:, mask].mean(axis=1)


MOVES_PX = 1.0   # an object pixel "moves" when its displacement at frame T exceeds this (moving_iou, the split)


def moves(displacement_T: np.ndarray) -> np.ndarray:
    """bool [H, W]: the pixels whose displacement at frame T ([2, H, W], px) exceeds MOVES_PX."""
    return np.hypot(*np.asarray(displacement_T, np.float64)) > MOVES_PX


def motion_split(motion: np.ndarray, true_motion: np.ndarray, mask: np.ndarray) -> dict[str, float | None]:
    """Endpoint error (px) of a displacement field against the truth over object pixels, split by motion.

    `motion`, `true_motion` float [K, 2, H, W]: displacement of every pixel of frame 0 at K frames (the last
    is frame T); `mask` bool [H, W]: object pixels of frame 0. Returns "all" (mean over object pixels and
    frames), "moving" (over object pixels whose true displacement at frame T exceeds MOVES_PX) and "still"
    (the other object pixels); a part with no pixels is None."""
    motion, true_motion, mask = np.asarray(motion, np.float64), np.asarray(true_motion, np.float64), np.asarray(mask, bool)
    if motion.shape != true_motion.shape or motion.ndim != 4 or motion.shape[1] != 2 or mask.shape != motion.shape[2:]:
        raise ValueError(f"motion {motion.shape}, true motion {true_motion.shape} and mask {mask.shape} do not fit")
    error = endpoint_errors(motion, true_motion)                                   # [K, H, W]
    truly = moves(true_motion[-1])
    parts = {"all": mask, "moving": mask & truly, "still": mask & ~truly}
    return {name: float(error[:, part].mean()) if part.any() else None for name, part in parts.items()}


def moving_iou(motion_T: np.ndarray, true_motion_T: np.ndarray, mask: np.ndarray) -> float:
    """IoU, among object pixels (`mask` [H, W]), of those whose displacement at frame T ([2, H, W]) exceeds
    MOVES_PX and those whose true displacement does; 1 when neither has any."""
    mask = np.asarray(mask, bool)
    moved, truly = moves(motion_T) & mask, moves(true_motion_T) & mask
    union = (moved | truly).sum()
    return float((moved & truly).sum() / union) if union else 1.0


def background_stillness(video_with_source: np.ndarray) -> float:
    """Mean absolute change from the source frame (frame 0), in units of 255 (0 = perfectly still)."""
    video = _check_video(video_with_source, "video_with_source").astype(np.float64)
    return float(np.abs(video[1:] - video[:1]).mean() / 255.0)


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


def bootstrap_interval(values, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Interval:
    """Percentile bootstrap confidence interval of the mean of `values` (per-clip scores), seeded."""
    values = np.asarray(values, np.float64).ravel()
    if len(values) == 0 or not np.all(np.isfinite(values)):
        raise ValueError("bootstrap_interval needs a non-empty list of finite values")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    resampled_means = values[picks].mean(axis=1)  # [resamples]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(resampled_means, [tail, 1.0 - tail])
    return Interval(mean=float(values.mean()), low=float(low), high=float(high))
