"""Periodic validation on a few held-back clips: PSNR, poke endpoint error, background stillness.

The clips come from the store's `test` split when it has one, else from a slice held back at the end of
the training split (and then excluded from training). A separate validation store (`train --val-data`)
gives its `test` split, else clips spread over its `train` split, and holds nothing back. Their pokes are
fixed (epoch 0). `SELECTION_SCORE` (lower is better) is what picks the best weights on such a store.
"""
from __future__ import annotations

import numpy as np
import torch

from poke2video.config import PokeConfig
from poke2video.data.dataset import PokeDataset
from poke2video.data.store import Store
from poke2video.evaluate import metrics
from poke2video.train.runlog import filmstrip
from poke2video.train.steps import Batch

VALIDATION_SPLIT = "test"
SELECTION_SCORE = "val/endpoint_error"
FILMSTRIP_CLIPS = 4


def split_has_clips(store: Store, split: str) -> bool:
    return split in store.splits and len(store.clips(split)) > 0


def held_back_positions(store: Store, val_clips: int) -> np.ndarray:
    """Train-split positions kept out of training: the last `val_clips` when there is no test split."""
    if split_has_clips(store, VALIDATION_SPLIT) or val_clips == 0:
        return np.zeros(0, np.int64)
    train_count = len(store.clips("train"))
    return np.arange(max(train_count - val_clips, 0), train_count, dtype=np.int64)


class Validator:
    """Scores a model on a fixed set of clips; `run` returns scalars and a filmstrip image."""

    def __init__(self, dataset: PokeDataset, positions: np.ndarray, impulse: bool):
        dataset.set_epoch(0)
        self.items = [dataset[int(i)] for i in positions]
        self.impulse = impulse  # impulse pokes give a direction and strength, not a target to score

    @classmethod
    def for_store(cls, store: Store, poke: PokeConfig, val_clips: int, separate: bool = False) -> "Validator":
        """`val_clips` clips spread over the test split, else the slice held back from train, or, for a
        `separate` validation store, clips spread over its train split."""
        has_test = split_has_clips(store, VALIDATION_SPLIT)
        if has_test or separate:
            dataset = PokeDataset(store, VALIDATION_SPLIT if has_test else "train", poke=poke)
            count = min(val_clips, len(dataset))
            positions = np.unique(np.linspace(0, len(dataset) - 1, count).round().astype(np.int64))
        else:
            dataset = PokeDataset(store, "train", poke=poke)
            positions = held_back_positions(store, val_clips)
        return cls(dataset, positions, poke.impulse)

    @torch.no_grad()
    def run(self, model: torch.nn.Module, device: torch.device, autocast) -> tuple[dict[str, float], np.ndarray]:
        was_training = model.training
        model.eval()
        batch = Batch.collate(self.items, device)
        with autocast():
            anchor_poke = None if self.impulse else batch.poke[:, :4]    # what Poker hands the model
            video = model.predict(batch.source, batch.poke_map, batch.target.shape[1], poke=anchor_poke).video
        model.train(was_training)
        scores = {"psnr": [], "endpoint_error": [], "static_endpoint_error": [], "background_change": []}
        strips = []
        for i in range(len(self.items)):
            source = metrics.to_uint8_video(batch.source[i: i + 1])           # [1, H, W, 3]
            generated = metrics.to_uint8_video(video[i])                        # [T, H, W, 3]
            real = metrics.to_uint8_video(batch.target[i])
            scores["psnr"].append(metrics.psnr(generated, real))
            self._score_poke(batch.poke[i].tolist(), np.concatenate([source, generated]), scores)
            if i < FILMSTRIP_CLIPS:
                strips.append(filmstrip(source[0], real, generated))
        summary = {f"val/{name}": float(np.mean(values)) for name, values in scores.items() if values}
        return summary, np.concatenate(strips, axis=0)

    def _score_poke(self, poke: list[float], video_with_source: np.ndarray, scores: dict) -> None:
        x, y, dx, dy, is_background = poke
        if is_background:
            scores["background_change"].append(metrics.background_stillness(video_with_source))
        elif not self.impulse:
            scores["endpoint_error"].append(metrics.poke_endpoint_error(video_with_source, (x, y), (x + dx, y + dy)))
            scores["static_endpoint_error"].append(float(np.hypot(dx, dy)))
