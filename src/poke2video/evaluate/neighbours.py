"""Appendix B.3: the training frames nearest to a query image in the object encoder's bottleneck space.

A frame's embedding is its coarsest object state sigma_0^0 (level 0 of `PokeModel.encode_object`,
[C, h, w]) averaged over space: [C]. Distances are cosine (1 - cosine similarity) or L2. The bank holds
the source frame of every clip of a split (the frames a model is poked from). A query whose neighbours
are near copies (PokeSim `test`: same species) differs from one whose neighbours are merely similar
(`test_unseen`: held-out species): the model has to generalise there.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from poke2video.data.store import Store
from poke2video.errors import UserError

METRICS = ("cosine", "l2")


def object_embeddings(model, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """float32 [N, C]: spatial means of the bottleneck object state of uint8 frames [N, H, W, 3]."""
    resolution = model.cfg.resolution
    device = next(model.parameters()).device
    embeddings = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch):
            chunk = [_resize(frame, resolution) for frame in frames[start:start + batch]]
            pixels = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
            bottleneck = model.encode_object(pixels)[0]                   # [B, C, h, w]
            embeddings.append(bottleneck.mean(dim=(2, 3)).float().cpu())
    return torch.cat(embeddings).numpy()


def _resize(frame: np.ndarray, side: int) -> np.ndarray:
    if frame.shape[:2] == (side, side):
        return np.ascontiguousarray(frame)
    shrinking = side < max(frame.shape[:2])
    return cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def source_frames(store: Store, split: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """uint8 [M, H, W, 3]: the first frame of every clip of `split`, and each clip's (video, row)."""
    clips = [(int(v), int(r)) for v, r in store.clips(split)]
    if not clips:
        raise UserError(f"{store.root}: split {split!r} holds no clip")
    frames = np.stack([np.asarray(store.frames(v)[int(store.starts(v)[r])]) for v, r in clips])
    return frames, clips


def nearest(queries: np.ndarray, bank: np.ndarray, k: int, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(indices int64 [Q, k], distances float64 [Q, k]) of the k bank rows nearest to each query row."""
    if metric not in METRICS:
        raise UserError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    queries, bank = np.asarray(queries, np.float64), np.asarray(bank, np.float64)
    if metric == "cosine":
        unit_q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        unit_b = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
        distances = 1.0 - unit_q @ unit_b.T                                # [Q, N]
    else:
        squared = (queries**2).sum(1)[:, None] + (bank**2).sum(1)[None] - 2 * queries @ bank.T
        distances = np.sqrt(np.maximum(squared, 0.0))
    k = min(k, len(bank))
    indices = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return indices, np.take_along_axis(distances, indices, axis=1)


def neighbour_sheet(queries: np.ndarray, query_labels: list[str], bank_frames: np.ndarray, bank_labels: list[str],
                    indices: np.ndarray, distances: np.ndarray, metric: str) -> np.ndarray:
    """One row per query: the query, then its neighbours, each captioned with its clip and distance."""
    from poke2video.evaluate.sheets import display_scale, grid_image, upscale

    side = bank_frames.shape[1]
    scale = display_scale(side)
    rows, captions = [], []
    for query, row_indices, row_distances in zip(queries, indices, distances):
        rows.append([upscale(_resize(query, side), scale)] + [upscale(bank_frames[i], scale) for i in row_indices])
        captions.append(["query"] + [f"{bank_labels[i]}  d={d:.3f}" for i, d in zip(row_indices, row_distances)])
    columns = ["query"] + [f"neighbour {j + 1}" for j in range(indices.shape[1])]
    return grid_image(rows, query_labels, column_labels=columns, captions=captions,
                      title=f"nearest training frames, bottleneck object state ({metric} distance)")


def nearest_neighbours_to_file(checkpoint: str | None, data: str, out: str, images: list[str] | None = None,
                               query_split: str | None = None, queries: int = 4, k: int = 5,
                               bank_split: str = "train", metric: str = "cosine") -> Path:
    """Write the neighbour sheet (.png) for query `images`, or the first `queries` clips of `query_split`."""
    from poke2video.evaluate.sheets import save_png
    from poke2video.poker import Poker, load_image

    if not str(out).lower().endswith(".png"):
        raise UserError(f"{out}: output must end in .png")
    store = Store.open(data)
    if images:
        query_frames, labels = [load_image(path) for path in images], [Path(p).name for p in images]
    elif query_split:
        frames, clips = source_frames(store, query_split)
        query_frames, labels = list(frames[:queries]), [f"{query_split}\n{v}/{r}" for v, r in clips[:queries]]
    else:
        raise UserError("give query --image files or a --query-split")
    model = Poker.load(checkpoint).model
    bank_frames, bank_clips = source_frames(store, bank_split)
    indices, distances = nearest(object_embeddings(model, np.stack([_resize(q, model.cfg.resolution) for q in query_frames])),
                                 object_embeddings(model, bank_frames), k, metric)
    sheet = neighbour_sheet(query_frames, labels, bank_frames, [f"{v}/{r}" for v, r in bank_clips], indices,
                            distances, metric)
    return save_png(out, sheet)
