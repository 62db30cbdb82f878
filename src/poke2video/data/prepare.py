"""`poke2video prepare`: videos -> dataset store (frames, clip flow, per-step motion, splits).

Each input video, in a fixed order, is read at the store's resolution, then:
    motion[t] = mean over pixels of |F(t -> t+1)|            float32 [N-1]  (impulse mode, appendix B)
    flow[k]   = F(s -> s+T) for s = starts[k] = k * start_step  float16 [K, 2, H, W]  (pokes are drawn here),
                the per-step flows F(t -> t+1) chained over the clip (data/flow.py, chain_flows)
and written atomically by StoreWriter. A re-run resumes after the last finished video and ends with
the same bytes as an uninterrupted run. Bad videos stop the run (finished work stays in OUT.partial)
or, with skip_bad, are listed in the manifest's `skipped` and on stderr.
"""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from poke2video.config import DataConfig, to_dict
from poke2video.data.flow import FlowEstimator, chain_flows, get_flow_estimator
from poke2video.data.presets import DatasetPreset, VideoSource, collect_sources, get_preset, make_splits
from poke2video.data.store import StoreWriter, file_sha256
from poke2video.data.video import Sampling, image_files, iter_frames
from poke2video.errors import UserError

STILL_FLOW_PX = 0.5  # a video whose clip flow never reaches this magnitude anywhere has no foreground


@dataclass
class PrepareOptions:
    """Everything that decides the bytes of a store (written to its header; a resume must match)."""

    preset: DatasetPreset
    data: DataConfig
    seed: int = 0

    def header(self) -> dict[str, Any]:
        return {"resolution": self.data.resolution, "clip_length": self.data.clip_length,
                "flow_method": self.data.flow_method, "preset": self.preset.name,
                "data_config": to_dict(self.data), "split_seed": self.seed}


def prepare_dataset(inputs, out, preset: str = "generic", resolution: int = 64, stride: int | None = None,
                    clip_length: int = 10, start_step: int = 1, seed: int = 0, skip_bad: bool = False,
                    overwrite: bool = False) -> Path:
    """Build the store at `out` from `inputs` (video files / folders); returns its path."""
    dataset_preset = get_preset(preset)
    data = DataConfig(resolution=resolution, clip_length=clip_length,
                      frame_stride=stride or dataset_preset.frame_stride,
                      target_fps=None if stride else dataset_preset.target_fps, start_step=start_step)
    data.validate()
    options = PrepareOptions(dataset_preset, data, seed)
    sources = collect_sources(dataset_preset, [str(p) for p in inputs])
    writer = StoreWriter(out, options.header(), overwrite=overwrite)
    records, kept, skipped = _prepare_videos(writer, sources, options, skip_bad)
    if not records:
        raise UserError(f"no usable video among {len(sources)} input(s); see the messages above")
    splits = make_splits(dataset_preset, kept, [r["num_frames"] for r in records], seed)
    return writer.finalize(records, splits, skipped)


def _prepare_videos(writer: StoreWriter, sources: list[VideoSource], options: PrepareOptions,
                    skip_bad: bool) -> tuple[list[dict], list[VideoSource], list[dict]]:
    estimator = get_flow_estimator(options.data.flow_method)
    records, kept, skipped = [], [], []
    for index, source in enumerate(tqdm(sources, desc="prepare: videos", unit="video", file=sys.stderr)):
        record = _still_valid(writer.completed(index), source)
        if record is None:
            try:
                arrays = video_arrays(source.path, options.data, estimator)
            except UserError as exc:
                if not skip_bad:
                    raise UserError(f"{exc} (--skip-bad skips bad videos)") from exc
                print(f"poke2video prepare: skipping {exc}", file=sys.stderr)
                skipped.append({"source": str(source.path), "name": source.name, "reason": str(exc)})
                continue
            record = writer.add_video(index, arrays, source_meta(source))
        records.append(record)
        kept.append(source)
    return records, kept, skipped


def _still_valid(record: dict[str, Any] | None, source: VideoSource) -> dict[str, Any] | None:
    """A finished record from an earlier run, unless its input changed since (then it is redone)."""
    if record is None or record.get("name") != source.name or record.get("size") != _source_size(source):
        return None
    return record


def _source_files(source: VideoSource) -> list[Path]:
    return image_files(source.path) if source.path.is_dir() else [source.path]


def _source_size(source: VideoSource) -> int:
    return sum(os.path.getsize(f) for f in _source_files(source))


def source_meta(source: VideoSource) -> dict[str, Any]:
    """Name, path, size and sha256 of a video file, or of an image folder's files in order."""
    files = _source_files(source)
    if source.path.is_dir():
        digest = _sha256_of_lines(f"{f.name} {file_sha256(f)}" for f in files)
    else:
        digest = file_sha256(source.path)
    return {"name": source.name, "source": str(source.path), "split_hint": source.split,
            "size": _source_size(source), "sha256": digest}


def _sha256_of_lines(lines) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode() + b"\n")
    return h.hexdigest()


def video_arrays(path: Path, data: DataConfig, estimator: FlowEstimator) -> dict[str, np.ndarray]:
    """frames, starts, flow and motion of one video; UserError if it is too short or still."""
    sampling = Sampling(data.resolution, data.frame_stride, data.target_fps)
    frame_list = list(tqdm(iter_frames(path, sampling), desc=f"read {path.name}", unit="frame",
                           leave=False, file=sys.stderr))
    T = data.clip_length
    if len(frame_list) < T + 1:
        raise UserError(f"{path}: too short, {len(frame_list)} frame(s) after sampling; a clip needs {T + 1}")
    frames = np.stack(frame_list)  # uint8 [N, H, W, 3]
    starts = np.arange(0, len(frames) - T, data.start_step, dtype=np.int32)
    step_flows = np.stack([estimator(frames[t], frames[t + 1])  # F(t -> t+1): [N-1, 2, H, W]
                           for t in tqdm(range(len(frames) - 1), desc="flow", leave=False, file=sys.stderr)])
    motion = np.hypot(step_flows[:, 0], step_flows[:, 1]).mean(axis=(1, 2)).astype(np.float32)  # [N-1]
    flow = np.empty((len(starts), 2, *frames.shape[1:3]), np.float16)  # [K, 2, H, W]
    for k, s in enumerate(starts):
        flow[k] = chain_flows(step_flows[s:s + T])
    if float(np.hypot(flow[:, 0], flow[:, 1], dtype=np.float32).max()) < STILL_FLOW_PX:
        raise UserError(f"{path}: still video (no pixel moves {STILL_FLOW_PX} px within a clip): nothing to poke")
    return {"frames": frames, "starts": starts, "flow": flow, "motion": motion}

