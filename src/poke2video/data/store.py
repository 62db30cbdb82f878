"""The dataset store: a directory with a versioned JSON manifest and memory-mappable arrays.

    DATA/manifest.json                  header, videos, splits, skipped inputs (written last)
    DATA/videos/000000/frames.npy       uint8   [N, H, W, 3]   RGB frames at the store's resolution
    DATA/videos/000000/starts.npy       int32   [K]            first frame of each clip
    DATA/videos/000000/flow.npy         float16 [K, 2, H, W]   flow F(s -> s+T) for s = starts[k];
                                                               channel 0 = x (right), 1 = y (down), pixels
    DATA/videos/000000/motion.npy       float32 [N-1]          mean |F(t -> t+1)| per step (impulse mode)
    DATA/videos/000000/<name>.npy       optional extra arrays (PokeSim ground truth)
    DATA/videos/000000/record.json      this video's manifest entry (lets a killed run resume)

A split is a list of segments `[video, first_frame, end_frame)`; a clip belongs to the split when all of
its T + 1 frames lie in one segment. Writing happens in `DATA.partial/`, which is renamed to `DATA`
only when complete, so `DATA` is never half-written and a re-run resumes from `DATA.partial/`.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from poke2video.errors import UserError
from poke2video.fsutil import atomic_path, disk_full_guard, remove_path, write_json

STORE_FORMAT = "poke2video-store"
STORE_VERSION = 1
CORE_ARRAYS = ("frames", "starts", "flow", "motion")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def video_dir_name(index: int) -> str:
    return f"{index:06d}"


class StoreWriter:
    """Builds a store in `OUT.partial/`, one atomic video directory at a time, then renames it to OUT.

    `header` holds what must match for a resume to be valid (resolution, clip length, flow method,
    preset...). It is fixed when the partial directory is created; resuming with a different header is
    an error rather than a silent mix.
    """

    def __init__(self, out: str | os.PathLike, header: dict[str, Any], *, overwrite: bool = False):
        self.out = Path(out)
        self.work = self.out.with_name(self.out.name + ".partial")
        self.header = dict(header)
        if self.out.exists() and not overwrite:
            raise UserError(f"{self.out} already exists; choose another --out or pass --overwrite")
        if self.out.exists() and not self.out.is_dir():
            raise UserError(f"{self.out} exists and is not a directory")
        with disk_full_guard(self.work):
            (self.work / "videos").mkdir(parents=True, exist_ok=True)
            self._check_or_write_header()
        for stale in (self.work / "videos").glob(".*.tmp-*"):  # a killed run's half-written video
            remove_path(stale)

    def _check_or_write_header(self) -> None:
        path = self.work / "header.json"
        if path.exists():
            try:
                previous = json.loads(path.read_text())
            except json.JSONDecodeError:
                previous = None
            if previous != json.loads(json.dumps(self.header)):
                raise UserError(
                    f"{self.work} holds an unfinished run made with other options; "
                    "re-run with the same options to resume, or delete it to start over")
        else:
            write_json(path, self.header)

    def completed(self, index: int) -> dict[str, Any] | None:
        """The record of video `index` if an earlier run finished it, else None."""
        path = self.work / "videos" / video_dir_name(index) / "record.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None

    def add_video(self, index: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, Any]:
        """Write one video's arrays atomically; returns its manifest record."""
        missing = [name for name in CORE_ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"video arrays missing {missing}")
        name = video_dir_name(index)
        final = self.work / "videos" / name
        remove_path(final)  # a stale directory without record.json
        record = dict(meta, dir=f"videos/{name}", num_frames=int(arrays["frames"].shape[0]),
                      num_clips=int(arrays["starts"].shape[0]), arrays={})
        with atomic_path(final) as tmp:
            tmp.mkdir()
            for key, array in arrays.items():
                file = tmp / f"{key}.npy"
                np.save(file, np.ascontiguousarray(array))
                record["arrays"][key] = {"shape": list(array.shape), "dtype": str(array.dtype),
                                         "sha256": file_sha256(file)}
            write_json(tmp / "record.json", record)
        return record

    def finalize(self, records: list[dict[str, Any]], splits: dict[str, list[list[int]]],
                 skipped: list[dict[str, str]] | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Write the manifest and move the finished store to OUT."""
        manifest = {"format": STORE_FORMAT, "version": STORE_VERSION, **self.header,
                    "videos": records, "splits": splits, "skipped": skipped or [], "extra": extra or {}}
        _check_splits(manifest, Path(self.work))
        write_json(self.work / "manifest.json", manifest)
        remove_path(self.work / "header.json")
        if self.out.exists():
            remove_path(self.out)
        os.replace(self.work, self.out)
        return self.out


class Store:
    """A validated, read-only view of a dataset store. Arrays are memory-mapped on first use."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = root
        self.manifest = manifest
        self.resolution: int = manifest["resolution"]
        self.clip_length: int = manifest["clip_length"]
        self.videos: list[dict[str, Any]] = manifest["videos"]
        self.splits: dict[str, list[list[int]]] = manifest["splits"]
        self._clips_cache: dict[str, np.ndarray] = {}

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify_hashes: bool = False) -> "Store":
        root = Path(path)
        manifest = _read_manifest(root)
        for index, record in enumerate(manifest["videos"]):
            _check_video(root, index, record, manifest, verify_hashes)
        _check_splits(manifest, root)
        return cls(root, manifest)

    # arrays ---------------------------------------------------------------------------------------
    def array(self, video: int, name: str) -> np.ndarray:
        return _mmap(str(self.root / self.videos[video]["dir"] / f"{name}.npy"))

    def frames(self, video: int) -> np.ndarray:   # uint8 [N, H, W, 3]
        return self.array(video, "frames")

    def flow(self, video: int) -> np.ndarray:     # float16 [K, 2, H, W]
        return self.array(video, "flow")

    def starts(self, video: int) -> np.ndarray:   # int32 [K]
        return self.array(video, "starts")

    def motion(self, video: int) -> np.ndarray:   # float32 [N - 1]
        return self.array(video, "motion")

    def has_array(self, video: int, name: str) -> bool:
        return name in self.videos[video]["arrays"]

    # clips ----------------------------------------------------------------------------------------
    def clips(self, split: str) -> np.ndarray:
        """int64 [M, 2]: (video index, clip row) of every clip inside `split`, in a fixed order."""
        if split not in self.splits:
            raise UserError(f"{self.root}: no split {split!r}; it has {', '.join(sorted(self.splits))}")
        if split not in self._clips_cache:
            rows = []
            for video, first, end in self.splits[split]:
                starts = self.starts(video).astype(np.int64)
                inside = np.nonzero((starts >= first) & (starts + self.clip_length < end))[0]
                rows.append(np.stack([np.full_like(inside, video), inside], axis=1))
            clips = np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)
            self._clips_cache[split] = np.unique(clips, axis=0) if len(clips) else clips
        return self._clips_cache[split]


@lru_cache(maxsize=256)
def _mmap(path: str) -> np.ndarray:
    return np.load(path, mmap_mode="r")


def _read_manifest(root: Path) -> dict[str, Any]:
    if not root.exists():
        partial = root.with_name(root.name + ".partial")
        if partial.exists():
            raise UserError(f"{root} is unfinished ({partial} exists): re-run the same command to finish it")
        raise UserError(f"{root}: no such dataset directory")
    path = root / "manifest.json"
    if not path.is_file():
        raise UserError(f"{root} is not a dataset store: manifest.json is missing")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is damaged: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        raise UserError(f"{path} is not a poke2video dataset manifest")
    version = manifest.get("version")
    if version != STORE_VERSION:
        raise UserError(f"{path} has format version {version}; this poke2video reads version {STORE_VERSION}")
    for key in ("resolution", "clip_length", "videos", "splits"):
        if key not in manifest:
            raise UserError(f"{path} is damaged: field {key!r} is missing")
    return manifest


def _check_video(root: Path, index: int, record: dict, manifest: dict, verify_hashes: bool) -> None:
    res, T = manifest["resolution"], manifest["clip_length"]
    where = f"{root}: video {index} ({record.get('name', '?')})"
    arrays = record.get("arrays", {})
    for name in CORE_ARRAYS:
        if name not in arrays:
            raise UserError(f"{where}: array {name!r} is not listed in the manifest")
    for name, info in arrays.items():
        file = root / record["dir"] / f"{name}.npy"
        if not file.is_file():
            raise UserError(f"{where}: {file} is missing")
        try:
            array = np.load(file, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise UserError(f"{where}: {file} is damaged or truncated ({exc})") from exc
        if list(array.shape) != info["shape"] or str(array.dtype) != info["dtype"]:
            raise UserError(f"{where}: {file} has shape {list(array.shape)} {array.dtype}, "
                            f"manifest says {info['shape']} {info['dtype']}")
        if verify_hashes and file_sha256(file) != info["sha256"]:
            raise UserError(f"{where}: {file} was altered (sha256 differs from the manifest)")
    n, k = arrays["frames"]["shape"][0], arrays["starts"]["shape"][0]
    expected = {"frames": [n, res, res, 3], "flow": [k, 2, res, res], "motion": [max(n - 1, 0)]}
    for name, shape in expected.items():
        if arrays[name]["shape"] != shape:
            raise UserError(f"{where}: {name} has shape {arrays[name]['shape']}, expected {shape}")
    starts = np.load(root / record["dir"] / "starts.npy", mmap_mode="r")
    if k and (starts.min() < 0 or starts.max() + T >= n):
        raise UserError(f"{where}: clip starts run past the end of the video")


def _check_splits(manifest: dict, root: Path) -> None:
    count = len(manifest["videos"])
    for split, segments in manifest["splits"].items():
        for segment in segments:
            if len(segment) != 3 or not 0 <= segment[0] < count or segment[1] > segment[2]:
                raise UserError(f"{root}: split {split!r} has a bad segment {segment}")
