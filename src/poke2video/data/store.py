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

Opening a store (train, evaluate) checks the manifest, every listed file's presence, exact size (from
its .npy header), shape and dtype, the latter against the manifest and the format (`store_format`):
milliseconds, whatever the store's size. Reading every byte to
compare sha256s (`verify_hashes`, `poke2video verify`) costs about a second per GB and is on request.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from poke2video.data.npyfile import NpyAppender
from poke2video.data.store_format import check_video_arrays
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
        for stale in [*self.work.glob(".*.tmp-*"), *(self.work / "videos").glob(".*.tmp-*")]:
            remove_path(stale)  # a killed run's half-written video or JSON file

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

    @contextmanager
    def video(self, index: int, meta: dict[str, Any]) -> Iterator["VideoFiles"]:
        """Write one video's arrays atomically: `with writer.video(i, meta) as files: files.save(...)`.

        Inside, arrays are saved whole (`files.save`) or streamed row by row (`files.stream`); on a clean
        exit the hashes and record.json (`meta`, read then, plus the arrays) are written and the directory
        appears under its final name (`files.record` is its manifest record). On an error nothing is left.
        """
        name = video_dir_name(index)
        final = self.work / "videos" / name
        remove_path(final)  # a stale directory without record.json
        with atomic_path(final) as tmp:
            tmp.mkdir()
            files = VideoFiles(tmp)
            try:
                yield files
            finally:
                files.close_streams()
            files.finish(dict(meta, dir=f"videos/{name}"))

    def add_video(self, index: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, Any]:
        """Write one video's in-memory arrays atomically; returns its manifest record."""
        with self.video(index, meta) as files:
            for key, array in arrays.items():
                files.save(key, array)
        return files.record

    def adopt_video(self, index: int, source: Path, record: dict[str, Any]) -> None:
        """Place a finished video directory of another store (its files hard-linked, else copied)."""
        final = self.work / "videos" / video_dir_name(index)
        remove_path(final)
        with atomic_path(final) as tmp:
            tmp.mkdir()
            for name in [f"{key}.npy" for key in record["arrays"]] + ["record.json"]:
                link_or_copy(source / name, tmp / name)

    def finalize(self, records: list[dict[str, Any]], splits: dict[str, list[list[int]]],
                 skipped: list[dict[str, str]] | None = None, extra: dict[str, Any] | None = None,
                 fields: dict[str, Any] | None = None) -> Path:
        """Write the manifest (`fields` added at its top level, over the header's) and move the store to OUT."""
        manifest = {"format": STORE_FORMAT, "version": STORE_VERSION, **self.header,
                    "videos": records, "splits": splits, "skipped": skipped or [], "extra": extra or {},
                    **(fields or {})}
        _check_splits(manifest, Path(self.work))
        write_json(self.work / "manifest.json", manifest)
        remove_path(self.work / "header.json")
        if self.out.exists():
            remove_path(self.out)
        os.replace(self.work, self.out)
        return self.out


class VideoFiles:
    """The array files of one video being written into a temporary directory (see StoreWriter.video)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.record: dict[str, Any] = {}
        self._shapes: dict[str, tuple[list[int], str]] = {}
        self._streams: dict[str, NpyAppender] = {}

    def save(self, name: str, array: np.ndarray) -> None:
        np.save(self.folder / f"{name}.npy", np.ascontiguousarray(array))
        self._shapes[name] = (list(array.shape), str(array.dtype))

    def stream(self, name: str, dtype, row_shape: tuple[int, ...]) -> NpyAppender:
        """A new array written row by row (`.append(rows)`); its shape is [rows appended, *row_shape]."""
        self._streams[name] = NpyAppender(self.folder / f"{name}.npy", dtype, row_shape)
        return self._streams[name]

    def close_streams(self) -> None:
        for name, stream in self._streams.items():
            stream.close()
            self._shapes[name] = (list(stream.shape), str(stream.dtype))
        self._streams = {}

    def finish(self, meta: dict[str, Any]) -> None:
        missing = [name for name in CORE_ARRAYS if name not in self._shapes]
        if missing:
            raise ValueError(f"video arrays missing {missing}")
        arrays = {name: {"shape": shape, "dtype": dtype, "sha256": file_sha256(self.folder / f"{name}.npy")}
                  for name, (shape, dtype) in self._shapes.items()}
        self.record = dict(meta, num_frames=arrays["frames"]["shape"][0], num_clips=arrays["starts"]["shape"][0],
                           arrays=arrays)
        write_json(self.folder / "record.json", self.record)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link `source` at `target`; copy it (in chunks, by the OS) where links are not possible."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


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
        self._held: dict[tuple[int, str], np.ndarray] = {}   # (video, array) -> in RAM (`hold_in_memory`)

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify_hashes: bool = False) -> "Store":
        root = Path(path)
        manifest = _read_manifest(root)
        try:
            for index, record in enumerate(manifest["videos"]):
                _check_video(root, index, record, manifest, verify_hashes)
            _check_splits(manifest, root)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:  # fields of the wrong kind
            raise UserError(f"{root / 'manifest.json'} is damaged: unexpected content "
                            f"({type(exc).__name__}: {exc})") from exc
        return cls(root, manifest)

    # arrays ---------------------------------------------------------------------------------------
    def array(self, video: int, name: str) -> np.ndarray:
        held = self._held.get((video, name))
        if held is not None:
            return held
        return _mmap(str(self.root / self.videos[video]["dir"] / f"{name}.npy"))

    def hold_in_memory(self, names: list[str], videos=None) -> None:
        """Read the named arrays of `videos` (default: all) into RAM once, so that later reads never wait on
        the disk; arrays a video does not have are skipped."""
        videos = range(len(self.videos)) if videos is None else videos
        for video in tqdm(list(videos), desc="read into memory", unit="video", file=sys.stderr, leave=False):
            for name in names:
                if self.has_array(video, name) and (video, name) not in self._held:
                    self._held[(video, name)] = np.array(self.array(video, name))

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


def verify_store(path: str | os.PathLike) -> dict[str, float]:
    """`poke2video verify`: Store.open's checks, then every array's sha256 against the manifest."""
    start = time.perf_counter()
    store = Store.open(path)
    files = [(_where(store.root, index, record), store.root / record["dir"] / f"{name}.npy", info)
             for index, record in enumerate(store.videos) for name, info in record["arrays"].items()]
    total = sum(file.stat().st_size for _, file, _ in files)
    with tqdm(total=total, unit="B", unit_scale=True, desc="verify", file=sys.stderr) as bar:
        for where, file, info in files:
            check_hash(where, file, info)
            bar.update(file.stat().st_size)
    summary = {"videos": len(store.videos), "files": len(files), "bytes": total,
               "seconds": time.perf_counter() - start}
    print(f"{store.root}: ok, {summary['videos']} videos, {summary['files']} arrays, {total / 1e9:.3f} GB, "
          f"every sha256 matches the manifest ({summary['seconds']:.1f} s)")
    return summary


def _where(root: Path, index: int, record: dict) -> str:
    return f"{root}: video {index} ({record.get('name', '?')})"


def _check_video(root: Path, index: int, record: dict, manifest: dict, verify_hashes: bool) -> None:
    res, T = manifest["resolution"], manifest["clip_length"]
    where = _where(root, index, record)
    arrays = record.get("arrays", {})
    for name in CORE_ARRAYS:
        if name not in arrays:
            raise UserError(f"{where}: array {name!r} is not listed in the manifest")
    _inside_store(root, where, record["dir"])
    for name, info in arrays.items():
        _check_array_file(where, _inside_store(root, where, f"{record['dir']}/{name}.npy"), info, verify_hashes)
    check_video_arrays(where, root / record["dir"], arrays, res, T)
    n, k = arrays["frames"]["shape"][0], arrays["starts"]["shape"][0]
    starts = np.load(root / record["dir"] / "starts.npy", mmap_mode="r")
    if k and (starts.min() < 0 or starts.max() + T >= n):
        raise UserError(f"{where}: clip starts run past the end of the video")


def _inside_store(root: Path, where: str, relative: Any) -> Path:
    """`root / relative` for a path read from the manifest; UserError unless it stays inside the store.

    Refused: a non-string, an empty or absolute path, a `..` part, a NUL byte, and a path that a symbolic
    link inside the store leads out of it."""
    path = PurePosixPath(relative) if isinstance(relative, str) and relative and "\0" not in relative else None
    if path is None or path.is_absolute() or ".." in path.parts \
            or not (root / path).resolve().is_relative_to(root.resolve()):
        raise UserError(f"{where}: the manifest names {str(relative)[:200]!r}, which is not a path inside the store "
                        f"({root}); paths in a manifest must stay inside the store")
    return root / path


def _check_array_file(where: str, file: Path, info: dict, verify_hashes: bool) -> None:
    """Presence, exact size, shape and dtype of one array file (and its sha256 when asked)."""
    if not file.is_file():
        raise UserError(f"{where}: {file} is missing")
    shape, dtype, needed = _npy_layout(where, file)
    size = file.stat().st_size
    if size != needed:
        raise UserError(f"{where}: {file} is damaged or truncated ({size} bytes where its header needs {needed})")
    if list(shape) != info["shape"] or str(dtype) != info["dtype"]:
        raise UserError(f"{where}: {file} has shape {list(shape)} {dtype}, "
                        f"manifest says {info['shape']} {info['dtype']}")
    if verify_hashes:
        check_hash(where, file, info)


def check_hash(where: str, file: Path, info: dict) -> None:
    if file_sha256(file) != info["sha256"]:
        raise UserError(f"{where}: {file} was altered (sha256 differs from the manifest)")


def _npy_layout(where: str, file: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and the exact file size an .npy header promises (reads only the header)."""
    fmt = np.lib.format
    try:
        with open(file, "rb") as f:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise UserError(f"{where}: {file} is damaged or truncated (no valid .npy header: {exc})") from exc
    return shape, dtype, offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize


def _check_splits(manifest: dict, root: Path) -> None:
    count = len(manifest["videos"])
    for split, segments in manifest["splits"].items():
        for segment in segments:
            if len(segment) != 3 or not 0 <= segment[0] < count or segment[1] > segment[2]:
                raise UserError(f"{root}: split {split!r} has a bad segment {segment}")
