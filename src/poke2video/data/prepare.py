"""`poke2video prepare`: videos -> dataset store (frames, clip flow, per-step motion, splits).

Each input video, in a fixed order, is read at the store's resolution, then:
    motion[t] = mean over pixels of |F(t -> t+1)|            float32 [N-1]  (impulse mode, appendix B)
    flow[k]   = F(s -> s+T) for s = starts[k] = k * start_step  float16 [K, 2, H, W]  (pokes are drawn here),
                the per-step flows F(t -> t+1) chained over the clip (data/flow.py, chain_flows)
    tracked_motion[k]  float16 [K, T, 2, H, W], only with `tracked_truth`: where each pixel of clip k's first
                frame is at its frames 1..T, followed on the frames the flow is estimated on (every frame
                of the source with `flow_every_frame`) by the metrics' tracker or a named estimator and
                averaged down; `evaluate` scores motion against it
streamed (one frame and the last T step flows in memory, whatever the video's length) into one atomic
video directory by StoreWriter. A re-run resumes after the last finished video and ends with the same
bytes as an uninterrupted run. Bad videos stop the run (finished work stays in OUT.partial)
or, with skip_bad, are listed in the manifest's `skipped` and on stderr.
"""
from __future__ import annotations

import hashlib
import os
import sys
from collections import deque
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from poke2video import metrics
from poke2video.config import DataConfig, to_dict
from poke2video.data.flow import (FlowEstimator, chain_flows, downscale_flow, get_flow_estimator,
                                  still_where_unchanged, tracker_for_larger_frames)
from poke2video.data.layouts import DatasetLayout, VideoSource, collect_sources, get_layout, make_splits
from poke2video.data.listing import Listing
from poke2video.data.shards import shard_header, shard_indices
from poke2video.data.prefetch import prefetched
from poke2video.data.store import StoreWriter, VideoFiles, file_sha256
from poke2video.data.video import Sampling, image_files, iter_frame_pairs
from poke2video.errors import DiskFull, UserError, print_line

STILL_FLOW_PX = 0.5  # a video whose clip flow never reaches this magnitude anywhere has no foreground


@dataclass
class PrepareOptions:
    """Everything that decides the bytes of a store (written to its header; a resume must match)."""

    layout: DatasetLayout
    data: DataConfig
    seed: int = 0
    tracked_truth: str | None = None   # the estimator that tracks the motion truth (`truth_tracker`), or none
    flow_every_frame: bool = False

    def header(self) -> dict[str, Any]:
        # "preset" names the layout in a store's header (the old word, kept so existing stores still resume)
        header = {"resolution": self.data.resolution, "clip_length": self.data.clip_length,
                  "flow_method": self.data.flow_method, "preset": self.layout.name,
                  "data_config": to_dict(self.data), "split_seed": self.seed}
        if self.tracked_truth:   # named only when set, so stores made before the option still resume
            tracker = truth_tracker(self.tracked_truth, self.data.flow_scale)
            header["tracked_truth"] = {"tracker": tracker.name, "scale": self.data.flow_scale}
            if hasattr(tracker, "levels"):
                header["tracked_truth"]["levels"] = tracker.levels
            if self.flow_every_frame:
                header["tracked_truth"]["every_frame"] = True
        if self.flow_every_frame:   # likewise
            header["flow_every_frame"] = True
        return header


def prepare_dataset(inputs, out, layout: str = "generic", resolution: int = 64, stride: int | None = None,
                    clip_length: int = 10, start_step: int = 1, seed: int = 0, skip_bad: bool = False,
                    overwrite: bool = False, shard: tuple[int, int] | None = None, flow_method: str | None = None,
                    flow_scale: int | None = None, flow_mask: str | None = None,
                    tracked_truth: bool | str = False, flow_every_frame: bool = False) -> Path:
    """Build the store at `out` from `inputs` (video files / folders); returns its path.

    `shard=(i, n)` prepares only the inputs at positions g with g mod n = i (see data/shards.py).
    `tracked_truth` also stores each clip's motion truth tracked on the flow's frames (`tracked_motion`):
    True for the metrics' tracker, or the name of a flow estimator that tracks it instead.
    `flow_every_frame` estimates the flow between every two consecutive frames of the source, the ones the
    stride or frame rate skips included, and chains it over each kept step (`kept_steps`); the truth then
    follows every frame too.
    """
    dataset_layout = get_layout(layout)
    flow = {name: value for name, value in (("flow_method", flow_method), ("flow_scale", flow_scale),
                                            ("flow_mask", flow_mask)) if value is not None}                                   # the config's defaults otherwise
    data = DataConfig(resolution=resolution, clip_length=clip_length,
                      frame_stride=stride or dataset_layout.frame_stride,
                      target_fps=None if stride else dataset_layout.target_fps, start_step=start_step, **flow)
    data.validate()
    get_flow_estimator(data.flow_method)   # an unknown method is refused before any video is read
    truth_method = metrics.TRACKER if tracked_truth is True else (tracked_truth or None)
    if truth_method is not None:
        truth_tracker(truth_method, data.flow_scale)   # likewise
    options = PrepareOptions(dataset_layout, data, seed, truth_method, flow_every_frame)
    listing = Listing()
    sources = collect_sources(dataset_layout, [str(p) for p in inputs], listing)
    header, indices = options.header(), list(range(len(sources)))
    if shard is not None:
        indices = shard_indices(len(sources), shard)
        header["shard"] = shard_header(sources, shard)
    writer = StoreWriter(out, header, overwrite=overwrite)
    done = _prepare_videos(writer, [(g, sources[g]) for g in indices], options, skip_bad)
    if not done.records and shard is None:
        raise UserError(f"no usable video among {len(sources)} input(s); see the messages above")
    splits = make_splits(dataset_layout, done.kept, [r["num_frames"] for r in done.records], seed)
    fields = None if shard is None else {"shard": dict(header["shard"], videos=done.kept_index,
                                                       skipped=done.skipped_index)}
    return writer.finalize(done.records, splits, listing.skipped + done.skipped, fields=fields)


@dataclass
class _Prepared:
    """The outcome per input: records of the kept videos, the skipped ones, and their global positions."""

    records: list[dict] = field(default_factory=list)
    kept: list[VideoSource] = field(default_factory=list)
    kept_index: list[int] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    skipped_index: list[int] = field(default_factory=list)


def _prepare_videos(writer: StoreWriter, jobs: list[tuple[int, VideoSource]], options: PrepareOptions,
                    skip_bad: bool) -> _Prepared:
    estimator = get_flow_estimator(options.data.flow_method)
    done = _Prepared()
    for index, source in tqdm(jobs, desc="prepare: videos", unit="video", file=sys.stderr):
        record = _still_valid(writer.completed(index), source)
        if record is None:
            try:
                record = _prepare_one(writer, index, source, options, estimator)
            except DiskFull:
                raise
            except UserError as exc:
                if not skip_bad:
                    raise UserError(f"{exc} (--skip-bad skips bad videos)") from exc
                print_line(f"poke2video prepare: skipping {exc}")
                done.skipped.append({"source": str(source.path), "name": source.name, "reason": str(exc)})
                done.skipped_index.append(index)
                continue
        done.records.append(record)
        done.kept.append(source)
        done.kept_index.append(index)
    return done


def _prepare_one(writer: StoreWriter, index: int, source: VideoSource, options: PrepareOptions,
                 estimator: FlowEstimator) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    with writer.video(index, meta) as files:
        write_video_arrays(files, source.path, options.data, estimator, options.tracked_truth,
                           options.flow_every_frame)
        meta.update(source_meta(source))  # hash the input only once it proved readable
    return files.record


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


def write_video_arrays(files: VideoFiles, path: Path, data: DataConfig, estimator: FlowEstimator,
                       tracked_truth: str | None = None, every_frame: bool = False) -> None:
    """Stream one video into `files` (frames, starts, flow, step_flow, motion and, with `tracked_truth`,
    tracked_motion); UserError if it is too short or still. `step_flow` [N-1, 2, H, W] holds every
    F(t -> t+1), from which a clip's flow to each of its frames is chained when a model trains on every frame
    (data/dataset.py). `every_frame` as in `kept_steps`.

    Frames are decoded, written and forgotten one at a time; only the last T per-step flows are kept, to
    chain each clip's flow as soon as its last frame has arrived. Memory does not grow with the video.
    """
    res, T = data.resolution, data.clip_length
    frames = files.stream("frames", np.uint8, (res, res, 3))      # [N, H, W, 3]
    flow = files.stream("flow", np.float16, (2, res, res))        # [K, 2, H, W]
    step_flow = files.stream("step_flow", np.float16, (2, res, res))   # [N-1, 2, H, W]
    motion = files.stream("motion", np.float32, ())              # [N-1]
    window: deque[np.ndarray] = deque(maxlen=T)                   # F(t -> t+1) for the last T steps
    truth = _TrackedTruth(files, data, tracked_truth) if tracked_truth else None
    previous_frame, fastest = None, 0.0
    sampling = Sampling(res, data.frame_stride, data.target_fps)
    pairs = prefetched(iter_frame_pairs(path, sampling, res * data.flow_scale, every_frame))  # decoded while flow runs
    with closing(pairs):   # an error here stops the reader and closes the file at once
        steps = kept_steps(tqdm(pairs, desc=f"read {path.name}", unit="frame", leave=False, file=sys.stderr),
                           estimator, res)
        for frame, step, larges in steps:
            frames.append(frame[None])
            if step is not None:
                if data.flow_mask == "changed":
                    step = still_where_unchanged(step, previous_frame, frame)
                motion.append(np.hypot(step[0], step[1])[None].mean(axis=(1, 2)))
                step_flow.append(step.astype(np.float16)[None])
                window.append(step)
                if truth is not None:
                    truth.step(larges)
                start = frames.rows - 1 - T
                if len(window) == T and start % data.start_step == 0:
                    clip = chain_flows(np.stack(window)).astype(np.float16)
                    flow.append(clip[None])
                    if truth is not None:
                        truth.add_clip()
                    fastest = max(fastest, float(np.hypot(clip[0], clip[1], dtype=np.float32).max()))
            previous_frame = frame
    _check_length(path, frames.rows, T)
    files.save("starts", np.arange(0, frames.rows - T, data.start_step, dtype=np.int32))
    if fastest < STILL_FLOW_PX:
        raise UserError(f"{path}: still video (no pixel moves {STILL_FLOW_PX} px within a clip): nothing to poke")


def kept_steps(pairs, estimator: FlowEstimator, res: int):
    """(store frame, F(previous kept frame -> this one) at `res`, the large frames from the previous kept one to
    this one) of every kept frame of `pairs` ((store frame or None where the sampling skips it, large frame),
    as `iter_frame_pairs` gives them); the flow and the frames are None for the first.

    Without skipped frames in `pairs` each step is the estimator's flow between two kept frames. With them
    it is the flows between every two consecutive frames, each averaged down and chained over the step:
    a part that turns further than its own width between kept frames moves a fraction of that between
    frames a faster camera took, where the estimator follows it (docs/evaluation.md, "Flow through the
    frames in between")."""
    since_kept: list[np.ndarray] = []        # F between consecutive frames since the last kept one, at res
    larges: list[np.ndarray] = []            # the large frames from the last kept one on
    for frame, large in pairs:
        if larges:
            since_kept.append(downscale_flow(estimator(larges[-1], large), res))
            larges.append(large)
        if frame is None:
            continue
        yield frame, _chained(since_kept), (larges or None)
        since_kept, larges = [], [large]


def _chained(flows: list[np.ndarray]) -> np.ndarray | None:
    """The flows chained: None for none, a single one as it is (to the bit)."""
    if len(flows) < 2:
        return flows[0] if flows else None
    return chain_flows(np.stack(flows))


def truth_tracker(method: str, scale: int) -> FlowEstimator:
    """The estimator that tracks `prepare --tracked-truth`'s motion truth on frames `scale` times the store's
    size: the metrics' tracker with its pyramid deepened (`tracker_for_larger_frames`), or the named one."""
    if method == metrics.TRACKER:
        return tracker_for_larger_frames(scale)
    return get_flow_estimator(method)


class _TrackedTruth:
    """A video's `tracked_motion`: the tracker's flows between consecutive large frames over each of the last
    T kept steps, and every clip's pixels followed along them and averaged down to the store's size, read at
    its kept frames, as its last frame arrives."""

    def __init__(self, files: VideoFiles, data: DataConfig, method: str):
        res, T = data.resolution, data.clip_length
        self.out = files.stream("tracked_motion", np.float16, (T, 2, res, res))
        self.window: deque[list[np.ndarray]] = deque(maxlen=T)
        self.tracker, self.resolution = truth_tracker(method, data.flow_scale), res

    def step(self, larges: list[np.ndarray]) -> None:
        """`larges`: the large frames from the previous kept one to this one (two without skipped frames)."""
        self.window.append([self.tracker(a, b) for a, b in zip(larges[:-1], larges[1:])])

    def add_clip(self) -> None:
        flows = [flow for step in self.window for flow in step]
        kept = np.cumsum([len(step) for step in self.window]) - 1      # the kept frames among 1..len(flows)
        motion = metrics.tracked_grid_motion(np.stack(flows), self.resolution)[kept]
        self.out.append(motion.astype(np.float16)[None])


def _check_length(path: Path, count: int, T: int) -> None:
    if count == 0:
        raise UserError(f"{path}: contains no frames")
    if count < T + 1:
        raise UserError(f"{path}: too short, {count} frame(s) after sampling; a clip needs {T + 1}")
