"""Periodic validation on held-back clips: PSNR, background stillness, and the model's motion.

Every model gets PSNR against the real clip and, for background pokes, how still its video stays; its
family's runner adds the scores of its motion (`StepRunner.validation_scores`): a flow model's own flows
against the clip's flow of every frame (train/flow_steps.py), the paper's model's poked pixel tracked
through its video (train/gru_steps.py). PokeSim stores give the object mask, other stores count every pixel.

The clips come from the store's `test` split when it has one, else from a slice held back at the end of
the training split (and then excluded from training). A separate validation store (`train --val-data`)
gives clips spread over its `train` split, and holds nothing back. Their pokes are
fixed (epoch 0). The runner's `selection_score` names the score (lower is better) that picks the best
weights on such a store.
"""
from __future__ import annotations

import numpy as np
import torch

from poke2video import metrics
from poke2video.config import PokeConfig
from poke2video.data.dataset import PokeDataset
from poke2video.data.store import Store
from poke2video.train.batch import Batch
from poke2video.train.runlog import filmstrip
from poke2video.train.runner import StepRunner

VALIDATION_SPLIT = "test"
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
        self.object_masks = [_object_mask(dataset, int(i)) for i in positions]   # bool [H, W] each

    @classmethod
    def for_store(cls, store: Store, poke: PokeConfig, val_clips: int, separate: bool = False,
                  flow_frames: str = "last") -> "Validator":
        """`val_clips` clips spread over a `separate` validation store's train split (all of it is unseen),
        else over the store's test split, else the slice held back from its train split. `flow_frames`: the
        clip flows the items carry (data/dataset.py)."""
        has_test = split_has_clips(store, VALIDATION_SPLIT)
        split = "train" if separate else (VALIDATION_SPLIT if has_test else None)
        dataset = PokeDataset(store, split or "train", poke=poke, flow_frames=flow_frames)
        if split is None:
            positions = held_back_positions(store, val_clips)
        else:
            count = min(val_clips, len(dataset))
            positions = np.unique(np.linspace(0, len(dataset) - 1, count).round().astype(np.int64))
        return cls(dataset, positions, poke.impulse)

    @torch.no_grad()
    def run(self, model: torch.nn.Module, device: torch.device,
            runner: StepRunner) -> tuple[dict[str, float], np.ndarray]:
        """(`val/` scalars, a filmstrip of the first clips) of `model` on the clips, scored as `runner`'s family is."""
        was_training = model.training
        model.eval()
        batch = Batch.collate(self.items, device)
        with runner.autocast():
            poke = batch.pokes if batch.pokes is not None else batch.poke[:, :4]
            prediction = model.predict(batch.source, batch.poke_map, batch.target.shape[1], poke=poke, pins=batch.pins)
        model.train(was_training)
        video = prediction.video.float()
        scores = {"psnr": [], "background_change": []}
        videos, strips = [], []
        for i in range(len(self.items)):
            source = metrics.to_uint8_video(batch.source[i: i + 1])           # [1, H, W, 3]
            generated = metrics.to_uint8_video(video[i])                        # [T, H, W, 3]
            real = metrics.to_uint8_video(batch.target[i])
            videos.append(np.concatenate([source, generated]))
            scores["psnr"].append(metrics.psnr(generated, real))
            if batch.poke[i, 4]:
                scores["background_change"].append(metrics.background_stillness(videos[-1]))
            if i < FILMSTRIP_CLIPS:
                strips.append(filmstrip(source[0], real, generated))
        scores.update(runner.validation_scores(prediction, batch, videos, self.object_masks, self.impulse))
        summary = {f"val/{name}": float(np.mean(values)) for name, values in scores.items() if values}
        return summary, np.concatenate(strips, axis=0)


def _object_mask(dataset: PokeDataset, index: int) -> np.ndarray:
    """bool [H, W]: the object pixels of the clip's first frame (PokeSim's segments), else every pixel."""
    video, row = (int(v) for v in dataset.clips[index])
    if not dataset.store.has_array(video, "gt_segments"):
        return np.ones((dataset.store.resolution,) * 2, bool)
    return np.asarray(dataset.store.array(video, "gt_segments")[row, 0]) > 0
