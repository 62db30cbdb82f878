"""Correlation maps (the paper's Fig. 5; docs/architecture.md, "Correlation maps") and their score on PokeSim.

For an image and a location l: N random pokes at l (uniform directions, lengths uniform in a range of
the image side); for each generated video the motion F_{0->T} of every pixel (tracked through the
video with flow chained frame to frame, `metrics.track_points`) and its distance d = |F_{0->T}(p) - poke| to
the poke vector; the map is the variance of d over the pokes. A pixel that moves with l has d near 0
whatever the poke (low variance); a pixel that stays still has d = |poke|, whose variance is that of
the poke lengths (`still_variance`). The inverse variance shows the parts tied to the poked one.

On PokeSim, `structure_auc` scores a map as the AUC of "the pixel lies on the poked segment's subtree"
(`cases.subtree_mask`) over the object's pixels of frame 0: 1 = every subtree pixel ranks above every
other object pixel, 0.5 = chance.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from poke2video import metrics
from poke2video.data.flow import FlowEstimator, check_trackable, get_flow_estimator
from poke2video.errors import UserError
from poke2video.evaluate.baselines import Baseline

POKE_LENGTH_RANGE = (0.03, 0.15)  # poke lengths, as fractions of the image's longer side (64 px: 1.9-9.6 px)


@dataclass(frozen=True)
class CorrelationMap:
    variance: np.ndarray      # float64 [H, W], px^2: variance over the pokes of |F_0->T(p) - poke|
    pokes: np.ndarray         # float64 [N, 2]: the poke vectors (dx, dy) used
    at: tuple[float, float]   # (x, y) the poked location

    @property
    def still_variance(self) -> float:
        """What a pixel that never moves scores: the variance of the poke lengths."""
        return float(np.var(np.hypot(self.pokes[:, 0], self.pokes[:, 1])))

    @property
    def inverse_variance(self) -> np.ndarray:
        """float64 [H, W]: 1 / (variance + eps), eps a thousandth of `still_variance` (keeps it finite)."""
        return 1.0 / (self.variance + 1e-3 * max(self.still_variance, 1e-9))


def random_targets(at_xy, width: int, height: int, count: int, rng: np.random.Generator,
                   length_range: tuple[float, float] = POKE_LENGTH_RANGE) -> np.ndarray:
    """float64 [count, 2]: targets at uniform angles and lengths around `at_xy`, clipped into the image."""
    side = max(width, height)
    angles = rng.uniform(0.0, 2 * np.pi, count)
    lengths = rng.uniform(length_range[0] * side, length_range[1] * side, count)
    targets = np.asarray(at_xy, np.float64) + lengths[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.clip(targets, 0.0, [width - 1.0, height - 1.0])


def correlation_map(animate: Baseline, image: np.ndarray, at_xy, frames: int, pokes: int = 16, seed: int = 0,
                    flow: FlowEstimator | None = None, progress=None) -> CorrelationMap:
    """The variance map of `pokes` random pokes at `at_xy` on uint8 `image` [H, W, 3].

    `animate(image, source_xy, target_xy, frames)` -> uint8 [T, H, W, 3] (a baseline, or a model through
    Poker). `progress`, if given, is called once per poke (a progress bar's `update`).
    """
    if pokes < 2:
        raise UserError(f"--pokes must be at least 2 (a variance over pokes), got {pokes}")
    height, width = image.shape[:2]
    at = (float(at_xy[0]), float(at_xy[1]))
    targets = random_targets(at, width, height, pokes, np.random.default_rng(seed))

    def videos():
        for target in targets:
            yield np.concatenate([image[None], animate(image, at, tuple(target), frames)])
            if progress is not None:
                progress()

    return map_of_videos(videos(), targets - np.asarray(at), at, flow)


def map_of_videos(videos, pokes: np.ndarray, at: tuple[float, float], flow: FlowEstimator | None = None
                  ) -> CorrelationMap:
    """The correlation map of given answers to pokes at `at`: videos (an iterable of uint8 [T+1, H, W, 3],
    frame 0 the image) and the poke vector [N, 2] each answers; every pixel is tracked through each video."""
    pokes = np.asarray(pokes, np.float64)
    distances = []
    start_xy = None
    for video, poke in zip(videos, pokes):
        if start_xy is None:
            grid_y, grid_x = np.mgrid[0:video.shape[1], 0:video.shape[2]]
            start_xy = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float64)   # [H*W, 2]
        motion = metrics.track_points(video, start_xy, flow)[-1] - start_xy    # [H*W, 2]: F_0->T per pixel
        distances.append(np.hypot(*(motion - poke).T))
    height, width = video.shape[1:3]
    return CorrelationMap(np.var(distances, axis=0).reshape(height, width), pokes, at)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values` [N], tied values sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(ordered)) + 1])
    ends = np.concatenate([starts[1:], [len(values)]])
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def structure_auc(score: np.ndarray, positive: np.ndarray, among: np.ndarray | None = None) -> float:
    """AUC of `score` [H, W] (higher = more tied to the poke) for the bool map `positive` [H, W],
    over the pixels of `among` (default all): the chance that a positive pixel outscores a negative one,
    ties counting half (Mann-Whitney U / (n_pos n_neg)). NaN when either class is empty."""
    among = np.ones(score.shape, bool) if among is None else np.asarray(among, bool)
    values = np.asarray(score, np.float64)[among]
    labels = np.asarray(positive, bool)[among]
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = average_ranks(values)[labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def correlate_to_file(checkpoint: str | None, image, at, out: str, pokes: int = 16, seed: int = 0) -> Path:
    """`poke2video correlate`: the map of `image` at `at` for the model, drawn over the image to `out` (.png)."""
    from poke2video.data.video import image_header_size
    from poke2video.evaluate.sheets import correlation_figure, save_png
    from poke2video.poker import Poker, check_point, load_image

    tracker = get_flow_estimator(metrics.TRACKER)
    size = image_header_size(image)
    if size is not None:                        # before the model runs (the pokes take minutes on a photo)
        check_trackable(image, *size, tracker, purpose="correlate")
    out_path = Path(out)
    if out_path.suffix.lower() != ".png":
        raise UserError(f"{out_path}: output must end in .png")
    if not out_path.parent.is_dir():
        raise UserError(f"{out_path}: folder {out_path.parent} does not exist")
    rgb = load_image(image)
    at_xy = check_point("--at", at, rgb.shape[1], rgb.shape[0])
    if pokes < 2:
        raise UserError(f"--pokes must be at least 2 (a variance over pokes), got {pokes}")
    poker = Poker.load(checkpoint)
    with tqdm(total=pokes, desc="correlate", unit="poke") as bar:
        result = correlation_map(lambda frame, s, t, n: poker.animate(frame, s, t), rgb, at_xy, poker.frames,
                                 pokes, seed, flow=tracker, progress=bar.update)
    return save_png(out_path, correlation_figure(rgb, result.inverse_variance, at_xy))
