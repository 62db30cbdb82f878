"""Training items from a dataset store: `(source_frame, poke_map, target_video, poke, target_flow)`.

    source_frame  float32 [3, H, W]     frame s in [-1, 1]
    poke_map      float32 [2, H, W]     see data/pokes.make_poke_map
    target_video  float32 [T, 3, H, W]  frames s+1 .. s+T in [-1, 1]; a background poke gets frame s, T times
    poke          float32 [5]           (x, y, dx, dy, is_background) in store pixels
    target_flow   float32 [2, H, W]     the clip's flow F(s -> s+T) in pixels; zeros for a background poke
                  float32 [T, 2, H, W]  with flow_frames="all": F(s -> s+t) for t = 1..T (PokeSim's `gt_flow`)

From a PokeSim store made with several pokes or pins (`simulate --max-pokes/--max-pins`, arrays gt_pokes and
gt_pins) and poke source "sim", an item has two more fields, and its poke map is the sum of every poke's:

    pokes         float32 [K, 5]        every poke (x, y, dx, dy, present: 1, or 0 for an unused row); row 0 is `poke`
    pins          float32 [P, 3]        every pin (x, y, present)

The poke of item i in epoch e is drawn from the clip's flow F(s -> s+T) with a generator seeded by
(seed, e, i), so it is reproducible and changes from epoch to epoch. With `impulse=True` (appendix B)
(dx, dy) is the flow's direction times a strength in [0, 1]: the clip's mean per-step motion m divided
by `impulse_scale` (a high percentile of m over the training clips), so small pokes go with calm clips.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from poke2video.config import FLOW_FRAMES, PokeConfig, poke_size_for
from poke2video.data.flow import ESTIMATORS, chained_flows, get_flow_estimator
from poke2video.data.pokes import impulse_vector, make_poke_map, make_pokes_map, sample_poke
from poke2video.data.store import Store
from poke2video.errors import UserError

IMPULSE_SCALE_PERCENTILE = 95.0


class PokeDataset(Dataset):
    def __init__(self, store_or_path: Store | str | os.PathLike, split: str = "train",
                 poke: PokeConfig | None = None, flow_frames: str = "last"):
        """`flow_frames`: "last" (the item's flow is F(s -> s+T)), "all" (F(s -> s+t) for every t; needs
        PokeSim's `gt_flow`) or "auto" ("all" where every video has `gt_flow`, else "last")."""
        self.store = store_or_path if isinstance(store_or_path, Store) else Store.open(store_or_path)
        self.split = split
        self.poke = poke or PokeConfig(poke_size=poke_size_for(self.store.resolution))
        self.poke.validate()
        self.clips = self.store.clips(split)  # int64 [M, 2]: (video, clip row)
        if len(self.clips) == 0:
            raise UserError(f"{self.store.root}: split {split!r} holds no clip of {self.store.clip_length + 1} frames")
        self.clip_motion = clip_mean_motion(self.store, self.clips)  # float32 [M]
        self.impulse_scale = dataset_impulse_scale(self.store)
        if flow_frames not in FLOW_FRAMES:
            raise UserError(f"flow_frames must be one of {', '.join(FLOW_FRAMES)}, got {flow_frames!r}")
        self.has_gt_flow = all(self.store.has_array(v, "gt_flow") for v in range(len(self.store.videos)))
        self.flow_frames = ("all" if self.has_gt_flow else "last") if flow_frames == "auto" else flow_frames
        self._estimator = None   # the store's flow method, made on first use (flow_frames all without gt_flow)
        if self.flow_frames == "all" and not self.has_gt_flow:
            self._check_step_flows()
        has_sim_pokes = all(self.store.has_array(v, "gt_poke") for v in range(len(self.store.videos)))
        if self.poke.source == "sim" and not has_sim_pokes:
            raise UserError(f"{self.store.root} has no simulator pokes (`gt_poke`, written by `poke2video "
                            "simulate`): poke.source: sim needs a PokeSim store")
        self.poke_source = ("sim" if has_sim_pokes else "flow") if self.poke.source == "auto" else self.poke.source
        self.several = self.poke_source == "sim" and all(
            self.store.has_array(v, "gt_pokes") and self.store.has_array(v, "gt_pins") for v in range(len(self.store.videos)))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.clips)

    def _check_step_flows(self) -> None:
        """flow_frames all on a store of real videos: its per-step flows, or a flow method that can be rerun."""
        method = self.store.manifest.get("flow_method")
        if method not in ESTIMATORS and not all(self.store.has_array(v, "step_flow")
                                                for v in range(len(self.store.videos))):
            raise UserError(f"{self.store.root} has no flow of every frame (`gt_flow` or `step_flow`) and its flow "
                            f"method {method!r} cannot be rerun; `prepare` the videos again")

    def clip_start(self, index: int) -> tuple[int, int]:
        """(video, first frame) of item `index`."""
        video, row = self._video_row(index)
        return video, int(self.store.starts(video)[row])

    def _video_row(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        video, row = (int(v) for v in self.clips[index])
        return video, row

    def clip_flow(self, index: int) -> np.ndarray:
        """float32 [2, H, W]: the flow F(s -> s+T) of item `index`'s clip, in pixels."""
        video, row = self._video_row(index)
        return np.asarray(self.store.flow(video)[row], np.float32)

    def clip_flows(self, index: int, steps: int | None = None) -> np.ndarray:
        """float32 [T, 2, H, W]: F(s -> s+t) for t = 1..T of item `index`'s clip (t = 1..`steps` if given):
        PokeSim's `gt_flow`, or for a store of real videos its per-step flows chained (`step_flow`; a store
        prepared before it existed: the store's flow method run on each frame step)."""
        video, row = self._video_row(index)
        T = self.store.clip_length if steps is None else steps
        if self.has_gt_flow:
            return np.asarray(self.store.array(video, "gt_flow")[row, 1:1 + T], np.float32)
        start = int(self.store.starts(video)[row])
        if self.store.has_array(video, "step_flow"):
            return chained_flows(np.asarray(self.store.array(video, "step_flow")[start:start + T], np.float32))
        if self._estimator is None:
            self._estimator = get_flow_estimator(self.store.manifest["flow_method"])
        clip = np.asarray(self.store.frames(video)[start:start + T + 1])
        return chained_flows(np.stack([self._estimator(a, b) for a, b in zip(clip[:-1], clip[1:])]))

    def target_flow(self, index: int) -> np.ndarray:
        """The flow target of item `index`: `clip_flows` with flow_frames "all", else `clip_flow`."""
        return self.clip_flows(index) if self.flow_frames == "all" else self.clip_flow(index)

    def sample(self, index: int) -> tuple[tuple[float, float], tuple[float, float], bool]:
        """The poke of item `index` this epoch: ((x, y), (dx, dy), is_background), read from the same flows
        as the item itself."""
        return self._poke(index, self._poke_flows(index, self.target_flow(index)))

    def _poke_flows(self, index: int, target_flow: np.ndarray) -> np.ndarray:
        """[1 or 2, 2, H, W]: the flows a poke of item `index` reads: F(s -> s+T) last, and with poke.place onset
        F(s -> s+1) first. `target_flow`: the item's flow target (`target_flow`)."""
        last = target_flow[-1:] if target_flow.ndim == 4 else target_flow[None]
        if self.poke_source == "flow" and self.poke.place == "onset":
            first = target_flow[:1] if target_flow.ndim == 4 else self.clip_flows(index, steps=1)
            return np.concatenate([first, last])
        return last

    def _poke(self, index: int, flows: np.ndarray) -> tuple[tuple[float, float], tuple[float, float], bool]:
        """flows [1 or 2, 2, H, W]: `_poke_flows`: the flow to frame T last; with poke.place onset the one to
        frame 1 first."""
        if self.poke_source == "sim":
            video, row = self._video_row(index)
            x, y, _, _, drag_x, drag_y, *_, is_background = (float(v) for v in self.store.array(video, "gt_poke")[row])
            return (x, y), (drag_x, drag_y), bool(is_background)
        return self._poke_from_flow(index, flows)

    def _poke_from_flow(self, index: int, flows: np.ndarray) -> tuple[tuple[int, int], tuple[float, float], bool]:
        rng = np.random.default_rng([self.poke.seed & 0xFFFFFFFF, self.epoch, index])
        background = bool(rng.random() < self.poke.background_fraction)
        source_xy, displacement = sample_poke(flows[-1], self.poke.poke_size, rng, background=background,
                                              background_percentile=self.poke.background_percentile,
                                              fastest_fraction=self.poke.fastest_fraction,
                                              start_flow=flows[0] if self.poke.place == "onset" else None,
                                              onset_speed=self.poke.onset_speed)
        if self.poke.impulse:
            displacement = impulse_vector(displacement, self.clip_motion[index] / self.impulse_scale)
        return source_xy, displacement, background

    def __getitem__(self, index: int):
        # Read once: the flow target, and F(s -> s+T) that gives the poke (with flow_frames "all" the
        # targets' last frame: simulate writes `flow` as gt_flow's last frame).
        target_flow = self.target_flow(index)
        source_xy, displacement, background = self._poke(index, self._poke_flows(index, target_flow))
        video, start = self.clip_start(index)
        T = self.store.clip_length
        clip = np.array(self.store.frames(video)[start:start + T + 1])  # uint8 [T+1, H, W, 3]
        targets = np.repeat(clip[:1], T, axis=0) if background else clip[1:]
        poke = np.array([*source_xy, *displacement, float(background)], np.float32)
        if background:
            target_flow = np.zeros_like(target_flow)
        if self.several:
            pokes, pins = self.sim_pokes_and_pins(index)
            present = pokes[pokes[:, 4] > 0]
            poke_map = make_pokes_map(self.store.resolution, zip(present[:, :2], present[:, 2:4]), self.poke.poke_size)
            return (_to_unit_range(clip[0]), torch.from_numpy(poke_map), _to_unit_range(targets),
                    torch.from_numpy(poke), torch.from_numpy(target_flow), torch.from_numpy(pokes), torch.from_numpy(pins))
        poke_map = make_poke_map(self.store.resolution, source_xy, displacement, self.poke.poke_size)
        return (_to_unit_range(clip[0]), torch.from_numpy(poke_map),
                _to_unit_range(targets), torch.from_numpy(poke), torch.from_numpy(target_flow))

    def sim_pokes_and_pins(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(pokes float32 [K, 5] (x, y, dx, dy, present), pins float32 [P, 3] (x, y, present)) of item `index`
        from a store's gt_pokes and gt_pins (an unused row, segment -1, has present 0)."""
        video, row = self._video_row(index)
        rows = np.asarray(self.store.array(video, "gt_pokes")[row], np.float32)       # [K, 10]
        pinned = np.asarray(self.store.array(video, "gt_pins")[row], np.float32)      # [P, 3]
        pokes = np.concatenate([rows[:, [0, 1, 4, 5]], (rows[:, 8:9] >= 0).astype(np.float32)], axis=1)
        pins = np.concatenate([pinned[:, :2], (pinned[:, 2:3] >= 0).astype(np.float32)], axis=1)
        return pokes * pokes[:, 4:], pins * pins[:, 2:]


def _to_unit_range(frames: np.ndarray) -> torch.Tensor:
    """uint8 [..., H, W, 3] -> float32 [..., 3, H, W] in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)
    return tensor.movedim(-1, -3).contiguous()


def clip_mean_motion(store: Store, clips: np.ndarray) -> np.ndarray:
    """float32 [M]: m = mean over the clip's T steps of the per-step mean flow magnitude."""
    T = store.clip_length
    motion = np.empty(len(clips), np.float32)
    for video in np.unique(clips[:, 0]):
        rows = clips[:, 0] == video
        steps = np.concatenate([[0.0], np.cumsum(store.motion(int(video)), dtype=np.float64)])  # [N]
        starts = np.asarray(store.starts(int(video)), np.int64)[clips[rows, 1]]
        motion[rows] = (steps[starts + T] - steps[starts]) / T
    return motion


def dataset_impulse_scale(store: Store) -> float:
    """Motion that maps to impulse strength 1: the manifest's `extra.impulse_scale` if set, else the
    95th percentile of the clip motion m over the train split (all clips when there is none)."""
    stored = store.manifest.get("extra", {}).get("impulse_scale")
    if stored is not None:
        return float(stored)
    reference = "train" if "train" in store.splits and len(store.clips("train")) else None
    clips = store.clips(reference) if reference else _all_clips(store)
    motion = clip_mean_motion(store, clips)
    scale = float(np.percentile(motion, IMPULSE_SCALE_PERCENTILE)) if len(motion) else 0.0
    return scale if scale > 0 else 1.0


def _all_clips(store: Store) -> np.ndarray:
    rows = [np.stack([np.full(len(store.starts(v)), v), np.arange(len(store.starts(v)))], axis=1)
            for v in range(len(store.videos))]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 2), np.int64)
