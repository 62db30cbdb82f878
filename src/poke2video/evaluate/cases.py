"""Evaluation cases: a clip of a split, the poke a model is given, and what its answer is scored against.

Two sources, chosen by the store (`load_cases`):
- PokeSim stores (`flow_method` "ground-truth" with `gt_poke` arrays, from `poke2video simulate`): the
  simulator's own poke of every clip. The true target is where the poked point really is at frame T;
  the ground-truth flow, segments and kinematic tree come along (motion error, structure).
- Any other store: the dataset's deterministic test pokes (`PokeDataset`, epoch 0): a moving pixel and
  its flow F(s -> s+T), a tenth of them on still background pixels (the expected video is then the
  source frame repeated, as in training).
A poke whose target falls off the image (only borrowed background vectors can) is clipped to the image.
A PokeSim store made with several pokes or pins (`gt_pokes`, `gt_pins`) gives every case all its pokes
and pins: the first poke stays the case's poke (endpoint error), the others and the pins go to every
method with it, and the truth (flow, frames) is the response to all of them at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from poke2video.data.dataset import PokeDataset
from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video.sim.scene import PIN_COLUMNS, POKE_COLUMNS

POKE = {name: index for index, name in enumerate(POKE_COLUMNS)}  # columns of gt_poke and gt_pokes
PIN = {name: index for index, name in enumerate(PIN_COLUMNS)}    # columns of gt_pins


@dataclass(frozen=True)
class EvalCase:
    clip: tuple[int, int]                 # (store video, clip row)
    expected_video: np.ndarray            # uint8 [T+1, H, W, 3]: frame 0 the source, then what a model should make
    poke_source: tuple[float, float]      # (x, y) pixel poked
    poke_target: tuple[float, float]      # (x, y) the target handed to the model (inside the image)
    true_target: tuple[float, float]      # (x, y) where the poked pixel really is at frame T
    is_background: bool
    gt_flow: np.ndarray | None = None     # float32 [T, 2, H, W]: flow from frame 0 to frames 1..T (PokeSim)
    tracked_motion: np.ndarray | None = None  # float32 [T, 2, H, W]: the store's tracked_motion (prepare
    #                                           --tracked-truth): the real clip tracked on larger frames
    segments: np.ndarray | None = None    # uint8 [H, W]: frame 0's segment ids, 0 background, s + 1 segment s
    parents: np.ndarray | None = None     # int16 [S]: parent segment of each segment, -1 root, -2 unused
    poked_segment: int | None = None
    more_pokes: tuple = ()                # ((source), (target handed to the model)) of the pokes after the first
    pins: tuple = ()                      # (x, y) of every pinned pixel

    @property
    def source_frame(self) -> np.ndarray:
        return self.expected_video[0]

    @property
    def frames(self) -> int:
        return len(self.expected_video) - 1

    @property
    def poke_length(self) -> float:
        """Distance from the poked pixel to its true position at frame T (a still video's endpoint error)."""
        return float(np.hypot(self.true_target[0] - self.poke_source[0], self.true_target[1] - self.poke_source[1]))

    @property
    def object_mask(self) -> np.ndarray | None:
        return None if self.segments is None else self.segments > 0

    def method_inputs(self) -> dict:
        """The keywords a method gets beside the first poke: {} for one poke and no pin, else every poke
        ("pokes": [(source, target), ...], the first one first) and the pins."""
        if not self.more_pokes and not self.pins:
            return {}
        return {"pokes": [(self.poke_source, self.poke_target), *self.more_pokes], "pins": list(self.pins)}

    def describe(self) -> dict:
        """JSON-ready summary of the clip and its pokes."""
        summary = {"video": self.clip[0], "row": self.clip[1], "is_background": self.is_background,
                   "source": list(self.poke_source), "target": list(self.poke_target),
                   "true_target": list(self.true_target)}
        if self.more_pokes or self.pins:
            summary["more_pokes"] = [[list(a), list(b)] for a, b in self.more_pokes]
            summary["pins"] = [list(pin) for pin in self.pins]
        return summary


def is_pokesim(store: Store) -> bool:
    """A PokeSim store: ground-truth flow and the simulator's pokes in every video."""
    return (store.manifest.get("flow_method") == "ground-truth" and len(store.videos) > 0
            and all(store.has_array(v, "gt_poke") for v in range(len(store.videos))))


def _inside(xy, width: int, height: int) -> tuple[float, float]:
    return float(np.clip(xy[0], 0, width - 1)), float(np.clip(xy[1], 0, height - 1))


def pokesim_case(store: Store, video: int, row: int) -> EvalCase:
    """The simulator's poke of clip (`video`, `row`) with its ground truth."""
    start, T = int(store.starts(video)[row]), store.clip_length
    clip = np.array(store.frames(video)[start:start + T + 1])  # a copy: writable, no hold on the memory map
    height, width = clip.shape[1:3]
    poke = np.asarray(store.array(video, "gt_poke")[row], np.float64)
    source = (float(poke[POKE["x"]]), float(poke[POKE["y"]]))
    drag = (poke[POKE["drag_x"]], poke[POKE["drag_y"]])
    background = bool(poke[POKE["is_background"]])
    return EvalCase(
        clip=(video, row), expected_video=clip, poke_source=source,
        poke_target=_inside((source[0] + drag[0], source[1] + drag[1]), width, height),
        true_target=(float(poke[POKE["target_x"]]), float(poke[POKE["target_y"]])),
        is_background=background,
        gt_flow=np.asarray(store.array(video, "gt_flow")[row, 1:], np.float32),
        segments=np.asarray(store.array(video, "gt_segments")[row, 0]),
        parents=np.asarray(store.array(video, "gt_parents")[row]),
        poked_segment=None if background else int(poke[POKE["segment"]]),
        **_several(store, video, row, width, height))


def _several(store: Store, video: int, row: int, width: int, height: int) -> dict:
    """{"more_pokes", "pins"} of a clip of a store with gt_pokes and gt_pins (unused rows, segment -1,
    left out); {} for a store without them."""
    if not (store.has_array(video, "gt_pokes") and store.has_array(video, "gt_pins")):
        return {}
    more = []
    for poke in np.asarray(store.array(video, "gt_pokes")[row, 1:], np.float64):
        if poke[POKE["segment"]] >= 0:
            source = (float(poke[POKE["x"]]), float(poke[POKE["y"]]))
            target = (source[0] + poke[POKE["drag_x"]], source[1] + poke[POKE["drag_y"]])
            more.append((source, _inside(target, width, height)))
    pins = [(float(pin[PIN["x"]]), float(pin[PIN["y"]]))
            for pin in np.asarray(store.array(video, "gt_pins")[row], np.float64) if pin[PIN["segment"]] >= 0]
    return {"more_pokes": tuple(more), "pins": tuple(pins)}


def dataset_case(dataset: PokeDataset, index: int) -> EvalCase:
    """Item `index` of the dataset with its epoch-0 poke; the true target is source + flow."""
    dataset.set_epoch(0)
    source, displacement, background = dataset.sample(index)
    video, start = dataset.clip_start(index)
    T = dataset.store.clip_length
    clip = np.array(dataset.store.frames(video)[start:start + T + 1])
    if background:
        clip[1:] = clip[0]
    height, width = clip.shape[1:3]
    target = (source[0] + displacement[0], source[1] + displacement[1])
    row = int(dataset.clips[index][1])
    tracked = None if background else stored_tracked_motion(dataset.store, video, row)
    return EvalCase(clip=(video, row), expected_video=clip,
                    poke_source=(float(source[0]), float(source[1])), poke_target=_inside(target, width, height),
                    true_target=(float(source[0]), float(source[1])) if background else target,
                    is_background=background, tracked_motion=tracked)


def tracked_truth(store: Store) -> dict | None:
    """The header of a store made with `prepare --tracked-truth` ({"tracker", "scale", "levels"}), else None."""
    return store.manifest.get("tracked_truth")


def stored_tracked_motion(store: Store, video: int, row: int) -> np.ndarray | None:
    """float32 [T, 2, H, W]: clip `row` of `video`'s `tracked_motion` in a store made with `--tracked-truth`;
    None in any other store. A UserError when such a store's video lacks the array."""
    if tracked_truth(store) is None:
        return None
    if not store.has_array(video, "tracked_motion"):
        raise UserError(f"{store.root}: video {video} has no tracked_motion.npy, though the store was prepared "
                        "with --tracked-truth")
    return np.asarray(store.array(video, "tracked_motion")[row], np.float32)


def split_size(store: Store, split: str, limit: int | None = None) -> int:
    """Clips of `split` that an evaluation visits (the first `limit`); a UserError when there are none."""
    count = len(store.clips(split))
    if count == 0:
        raise UserError(f"{store.root}: split {split!r} holds no clip of {store.clip_length + 1} frames")
    return count if limit is None else min(count, limit)


def load_cases(store: Store, split: str, limit: int | None = None) -> Iterator[EvalCase]:
    """The evaluation cases of the first `limit` clips of `split` (all when None), in the store's order."""
    count = split_size(store, split, limit)
    if is_pokesim(store):
        for video, row in store.clips(split)[:count]:
            yield pokesim_case(store, int(video), int(row))
        return
    dataset = PokeDataset(store, split)
    for index in range(count):
        yield dataset_case(dataset, index)


def subtree_segments(parents: np.ndarray, segment: int) -> np.ndarray:
    """Sorted ids of `segment` and every segment below it in the kinematic tree `parents`."""
    parents = np.asarray(parents)
    members = {int(segment)}
    grew = True
    while grew:
        children = {int(s) for s in np.nonzero(np.isin(parents, list(members)))[0]}
        grew = not children <= members
        members |= children
    return np.array(sorted(members), np.int64)


def subtree_mask(case: EvalCase) -> np.ndarray:
    """bool [H, W]: frame-0 pixels on the poked segment or a segment below it (they move with the poke)."""
    if case.segments is None or case.parents is None or case.poked_segment is None:
        raise ValueError("subtree_mask needs a PokeSim object poke (segments, parents, poked segment)")
    members = subtree_segments(case.parents, case.poked_segment)
    return np.isin(case.segments.astype(np.int64) - 1, members) & (case.segments > 0)
