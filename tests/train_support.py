"""Tiny stores and presets shared by the training tests (32 px, T = 3, a model of a few thousand weights)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from poke2video.data.store import StoreWriter

RES, T = 32, 3

TINY_MODEL = {"resolution": RES, "stem_channels": 4, "channels": [8, 8], "bottleneck_channels": 8,
              "encoder_blocks": 1, "decoder_blocks": 1, "skip_blocks": 0, "levels": 3, "frames": T,
              "discriminator": {"patch_channels": 4, "patch_layers": 2, "temporal_channels": 4}}
TINY_TRAIN = {"batch_size": 4, "log_every": 1, "val_every": 2, "val_clips": 2, "checkpoint_every": 2,
              "gan": {"start_step": -1}, "poke": {"poke_size": 3}}
TINY_FLOW_MODEL = {"architecture": "unet", "resolution": RES, "unet_channels": [4, 8], "time_basis": 2, "frames": T}
TINY_FLOW_TRAIN = {key: value for key, value in TINY_TRAIN.items() if key != "gan"}   # a flow model has no critics


def _moving_square_video(frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, RES, RES, 3] of a square moving right 1 px per frame on noise; its flow per clip."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 80, (RES, RES, 3), dtype=np.uint8)
    colour = rng.integers(150, 255, 3, dtype=np.uint8)
    video = np.repeat(background[None], frames, axis=0)
    starts = np.arange(frames - T, dtype=np.int32)
    flow = np.zeros((len(starts), 2, RES, RES), np.float16)
    for t in range(frames):
        x = t % (RES - 6)
        video[t, 5:10, x: x + 5] = colour
    for k, s in enumerate(starts):
        x = s % (RES - 6)
        flow[k, 0, 5:10, x: x + 5] = T
    return video, starts, flow


def per_frame_flow(flow: np.ndarray) -> np.ndarray:
    """PokeSim's `gt_flow` [K, T+1, 2, RES, RES] of `_moving_square_video`: F(s -> s+t) = t/T F(s -> s+T)."""
    steps = np.arange(T + 1, dtype=np.float32)[None, :, None, None, None] / T
    return (flow.astype(np.float32)[:, None] * steps).astype(np.float16)


def make_tiny_store(path: Path, videos: int = 2, frames: int = 14, test_split: bool = True,
                    gt_flow: bool = False) -> Path:
    writer = StoreWriter(path, {"resolution": RES, "clip_length": T, "flow_method": "ground-truth"})
    records, train, test = [], [], []
    for v in range(videos):
        video, starts, flow = _moving_square_video(frames, seed=v)
        motion = np.full(frames - 1, 0.5, np.float32)
        arrays = {"frames": video, "starts": starts, "flow": flow, "motion": motion}
        if gt_flow:
            arrays["gt_flow"] = per_frame_flow(flow)
        records.append(writer.add_video(v, arrays, {"name": f"square{v}"}))
        cut = frames - (T + 2) if test_split else frames
        train.append([v, 0, cut])
        if test_split:
            test.append([v, cut, frames])
    splits = {"train": train, **({"test": test} if test_split else {})}
    return writer.finalize(records, splits)


def write_preset(path: Path, model: dict | None = None, **train) -> Path:
    """A preset YAML: the tiny model (updated by `model`) and TINY_TRAIN updated by `train`."""
    merged_train = {**TINY_TRAIN, **train}
    path.write_text(yaml.safe_dump({"model": {**TINY_MODEL, **(model or {})}, "train": merged_train}))
    return path


def write_flow_preset(path: Path, model: dict | None = None, **train) -> Path:
    """A flow-model preset YAML: TINY_FLOW_MODEL (updated by `model`) and TINY_FLOW_TRAIN updated by `train`."""
    sections = {"model": {**TINY_FLOW_MODEL, **(model or {})}, "train": {**TINY_FLOW_TRAIN, **train}}
    path.write_text(yaml.safe_dump(sections))
    return path


def weights_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in module.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"weights differ: {different[:5]}"
