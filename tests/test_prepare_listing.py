"""What `prepare` lists (data/listing.py): each real file once, by device and inode, so one video never lands on
both sides of a split; what a walk passes over (a second name, a link that leads nowhere, a FIFO named like a
video) is said on stderr and kept in the manifest's `skipped` list, shards and merge included."""
import json
import os
from pathlib import Path

import pytest

from conftest import moving_square_frames, write_video
from poke2video.data.listing import Listing
from poke2video.data.prepare import prepare_dataset
from poke2video.data.layouts import collect_sources, get_layout
from poke2video.data.shards import merge_shards
from poke2video.data.store import Store
from test_fuzz_cli import run
from test_prepare import store_bytes

TINY = {"resolution": 32, "clip_length": 4, "start_step": 2}


def videos(folder: Path, count: int) -> Path:
    for i in range(count):
        write_video(folder / f"v{i}.mp4", moving_square_frames(count=10, size=32, seed=i, speed=(1, i % 3)))
    return folder


def sides(store: Store) -> dict[str, set[str]]:
    """The sources (the real files) of each split's videos."""
    return {split: {os.path.realpath(store.videos[segment[0]]["source"]) for segment in segments}
            for split, segments in store.manifest["splits"].items()}


def test_a_hard_link_is_one_video_on_one_side_of_the_split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    videos(tmp_path / "in", 6)
    os.link("in/v0.mp4", "in/hard.mp4")           # was: 7 videos from 6 files, v0 in train and in test
    code, _, err = run(["prepare", "in", "--out", "d", "--res", "32", "--clip-length", "4"], tmp_path)
    assert code == 0, err
    store = Store.open(tmp_path / "d")
    assert len(store.videos) == 6 and [v["name"] for v in store.videos][0] == "in/hard.mp4"
    assert store.manifest["skipped"] == [{"source": "in/v0.mp4", "name": "in/v0.mp4",
                                          "reason": "skipped: the same file as in/hard.mp4"}]
    assert "poke2video prepare: in/v0.mp4: skipped: the same file as in/hard.mp4" in err.splitlines()
    split = sides(store)
    assert not split["train"] & split["test"] and len(split["train"] | split["test"]) == 6


@pytest.mark.parametrize("layout, make, given", [
    ("generic", lambda root: os.link(root / "in/v0.mp4", root / "elsewhere.mp4"), ["in", "elsewhere.mp4"]),
    ("generic", lambda root: os.symlink(root / "in", root / "again"), ["in", "again"]),
    ("taichi", lambda root: os.link(root / "in/train/v0.mp4", root / "in/test/copy.mp4"), ["in"]),
], ids=["a hard link given as an argument", "a folder given twice under two names", "taichi: train/ and test/"])
def test_a_second_name_is_listed_once_whatever_the_layout(tmp_path, monkeypatch, layout, make, given):
    monkeypatch.chdir(tmp_path)
    videos(tmp_path / "in" / ("train" if layout == "taichi" else ""), 2)
    if layout == "taichi":
        videos(tmp_path / "in" / "test", 1)
    make(tmp_path)
    listing = Listing()
    sources = collect_sources(get_layout(layout), given, listing)
    real = [(source.path.stat().st_dev, source.path.stat().st_ino) for source in sources]
    assert len(real) == len(set(real)) == (3 if layout == "taichi" else 2)
    assert len(listing.skipped) == 1 and "skipped: the same" in listing.skipped[0]["reason"]
    if layout == "taichi":                        # the file stays on the side listed first
        assert [s.split for s in sources] == ["train", "train", "test"]


def not_files(folder: Path) -> dict[str, str]:
    """Names ending in .mp4 that are no regular file -> what their skip says."""
    os.symlink("gone.mp4", folder / "dangling.mp4")
    os.symlink("loop.mp4", folder / "loop.mp4")
    os.mkfifo(folder / "pipe.mp4")
    return {"dangling.mp4": "skipped: a link that leads nowhere (no such file or directory)",
            "loop.mp4": "skipped: a link that leads nowhere (too many levels of symbolic links)",
            "pipe.mp4": "skipped: a named pipe (FIFO), not a file"}


def test_what_is_no_file_inside_a_folder_is_listed_as_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reasons = not_files(videos(tmp_path / "in", 2))
    code, _, err = run(["prepare", "in", "--out", "d", "--res", "32", "--clip-length", "4"], tmp_path)
    assert code == 0, err                         # was: passed over without a word
    skipped = {Path(item["source"]).name: item["reason"] for item in Store.open(tmp_path / "d").manifest["skipped"]}
    assert skipped == reasons
    for name, reason in reasons.items():
        assert f"poke2video prepare: in/{name}: {reason}" in err.splitlines()
    for name in reasons:                          # named directly, each stays a one-line error
        code, _, err = run(["prepare", f"in/{name}", "--out", f"d-{name}"], tmp_path)
        assert code == 2 and len(err.splitlines()) == 1 and f"in/{name}: " in err, err


def test_merged_shards_keep_what_the_listing_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    videos(tmp_path / "in", 3)
    os.link("in/v1.mp4", "in/v1-again.mp4")
    (tmp_path / "in" / "v3.mp4").write_bytes(b"not a video" * 40)     # skipped by --skip-bad, after the link
    not_files(tmp_path / "in")
    options = dict(TINY, skip_bad=True)
    reference = prepare_dataset(["in"], "all", **options)
    shards = [prepare_dataset(["in"], f"shard{i}", shard=(i, 2), **options) for i in range(2)]
    merged = merge_shards(shards, "merged")
    assert store_bytes(merged) == store_bytes(reference)
    skipped = json.loads((merged / "manifest.json").read_text())["skipped"]
    assert [Path(item["source"]).name for item in skipped] == ["dangling.mp4", "loop.mp4", "pipe.mp4",
                                                               "v1.mp4", "v3.mp4"]   # v1-again.mp4 comes first
