"""Dataset layouts (`prepare --layout`): where the videos of each paper dataset lie in its official
download, the frame rate it is used at, and how it is split into train and test.

    generic  any videos / image folders; whole videos go to test by a seeded 80/20 split
    plants   Poking-Plants: one video per plant; the last fifth of every video's frames is test
    iper     iPER: videos named in the root's train.txt / test.txt (entries like 001/1/1 or 001_1_1)
    taichi   Tai-Chi-HD: ROOT/train/ and ROOT/test/ hold the videos; every 2nd frame is kept
    h36m     Human3.6M: ROOT/S<k>/... videos, resampled to 6.25 Hz; subjects S9 and S11 are test

A split is a list of segments [video, first_frame, end_frame) (see data/store.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poke2video.data.listing import Listing, find_videos, source_name
from poke2video.errors import UserError

TEST_FRACTION = 0.2
H36M_TEST_SUBJECTS = ("S9", "S11")


@dataclass(frozen=True)
class VideoSource:
    """One input video: its path, a stable name, and its fixed split ('train', 'test' or None)."""

    path: Path
    name: str
    split: str | None = None


@dataclass(frozen=True)
class DatasetLayout:
    name: str
    frame_stride: int = 1
    target_fps: float | None = None


LAYOUTS = {
    "generic": DatasetLayout("generic"),
    "plants": DatasetLayout("plants"),
    "iper": DatasetLayout("iper"),
    "taichi": DatasetLayout("taichi", frame_stride=2),
    "h36m": DatasetLayout("h36m", target_fps=6.25),
}


def get_layout(name: str) -> DatasetLayout:
    if name not in LAYOUTS:
        raise UserError(f"unknown dataset layout {name!r}; available: {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


# collecting inputs -------------------------------------------------------------------------------

def collect_sources(layout: DatasetLayout, inputs: list[str], listing: Listing | None = None) -> list[VideoSource]:
    """The layout's videos under `inputs`, in a deterministic order, each with its fixed split, each real file
    once (`listing` gathers what the walks passed over)."""
    roots = [Path(p) for p in inputs]
    listing = Listing() if listing is None else listing
    if layout.name in ("generic", "plants"):
        sources = [VideoSource(path, source_name(path, root))
                   for root in roots for path in find_videos(root, listing)]
    else:
        if len(roots) != 1:
            raise UserError(f"layout {layout.name} takes one folder (the dataset's root), got {len(roots)}")
        collect = {"iper": _collect_iper, "taichi": _collect_taichi, "h36m": _collect_h36m}[layout.name]
        sources = collect(roots[0], listing)
    if not sources:
        raise UserError(f"no videos found in {', '.join(inputs)} (mp4, avi, mkv, webm or image folders)")
    return sources


def _collect_iper(root: Path, listing: Listing) -> list[VideoSource]:
    videos = {_iper_key(p.relative_to(root).as_posix()): p for p in find_videos(root, listing)}
    sources = []
    for split in ("train", "test"):
        listing = root / f"{split}.txt"
        if not listing.is_file():
            raise UserError(f"{listing} is missing: the iper layout needs the official train.txt and test.txt")
        for line in listing.read_text().split():
            key = _iper_key(line)
            match = videos.get(key) or _unique_suffix_match(videos, key)
            if match is None:
                raise UserError(f"{listing}: video {line!r} not found under {root}")
            sources.append(VideoSource(match, line, split))
    return sources


def _iper_key(entry: str) -> str:
    """'001/1/1', '001_1_1.mp4' and 'images/001/1/1' all become '001_1_1'-style keys."""
    stem = re.sub(r"\.(mp4|avi|mkv|webm|mov)$", "", entry.strip(), flags=re.IGNORECASE)
    return stem.replace("/", "_")


def _unique_suffix_match(videos: dict[str, Path], key: str) -> Path | None:
    matches = [path for name, path in videos.items() if name.endswith("_" + key)]
    return matches[0] if len(matches) == 1 else None


def _collect_taichi(root: Path, listing: Listing) -> list[VideoSource]:
    sources = []
    for split in ("train", "test"):
        folder = root / split
        if not folder.is_dir():
            raise UserError(f"{folder} is missing: the taichi layout needs ROOT/train/ and ROOT/test/")
        sources += [VideoSource(p, f"{split}/{p.relative_to(folder).as_posix()}", split)
                    for p in find_videos(folder, listing)]   # one listing: a file in both is train's
    return sources


def _collect_h36m(root: Path, listing: Listing) -> list[VideoSource]:
    sources = []
    for path in find_videos(root, listing):
        relative = path.relative_to(root)
        subject = next((part for part in relative.parts if re.fullmatch(r"S\d+", part)), None)
        if subject is None:
            raise UserError(f"{path}: not inside a subject folder (S1, S5, ..., S11) of {root}")
        split = "test" if subject in H36M_TEST_SUBJECTS else "train"
        sources.append(VideoSource(path, relative.as_posix(), split))
    return sources


# splits ------------------------------------------------------------------------------------------

def make_splits(layout: DatasetLayout, sources: list[VideoSource], frame_counts: list[int],
                seed: int) -> dict[str, list[list[int]]]:
    """Train/test segments over the kept videos (index i = sources[i], with frame_counts[i] frames)."""
    splits: dict[str, list[list[int]]] = {"train": [], "test": []}
    if layout.name == "plants":
        for video, count in enumerate(frame_counts):
            cut = count - count // 5
            splits["train"].append([video, 0, cut])
            splits["test"].append([video, cut, count])
        return splits
    assigned = ([s.split for s in sources] if layout.name != "generic"
                else _seeded_video_split(len(sources), seed))
    for video, (split, count) in enumerate(zip(assigned, frame_counts)):
        splits[split].append([video, 0, count])
    return splits


def _seeded_video_split(count: int, seed: int) -> list[str]:
    """'test' for round(20 %) of the videos (at least one when there are two or more), chosen by seed."""
    test_count = int(round(TEST_FRACTION * count))
    if count >= 2:
        test_count = max(1, test_count)
    order = np.random.default_rng(seed).permutation(count)
    test = set(order[:test_count].tolist())
    return ["test" if i in test else "train" for i in range(count)]
