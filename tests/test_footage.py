"""footage/: every video is in train.txt or test.txt exactly once, SOURCES.md names each, prepare reads the split."""
from __future__ import annotations

import re
from pathlib import Path

import av
import pytest

FOOTAGE = Path(__file__).resolve().parents[1] / "footage"
NOT_VIDEOS = {"SOURCES.md", "train.txt", "test.txt"}
MIN_FRAMES = 11  # one clip of prepare's default length (10 frames after the first) at stride 1


def videos() -> list[str]:
    return sorted(p.name for p in FOOTAGE.iterdir() if p.name not in NOT_VIDEOS)


def split() -> dict[str, list[str]]:
    return {name: (FOOTAGE / f"{name}.txt").read_text().split() for name in ("train", "test")}


def test_split_has_train_and_test_videos():
    assert split()["train"] and split()["test"]


def test_split_lists_every_video_once():
    listed = split()["train"] + split()["test"]
    assert sorted(listed) == videos(), "footage/train.txt and test.txt must list every file in footage/ exactly once"


def test_train_and_test_share_no_video():
    assert not set(split()["train"]) & set(split()["test"])


def test_sources_names_every_video():
    rows = re.findall(r"^\| (\S+) \|", (FOOTAGE / "SOURCES.md").read_text(), flags=re.MULTILINE)
    named = [name for name in rows if name not in ("file", "---")]
    assert sorted(named) == videos(), "footage/SOURCES.md needs one table row per file in footage/"


@pytest.mark.parametrize("name", videos())
def test_video_opens_and_is_long_enough(name):
    with av.open(str(FOOTAGE / name)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for packet in container.demux(stream) if packet.size)
    assert frames >= MIN_FRAMES


def test_prepare_reads_the_split_by_video():
    from poke2video.data.layouts import collect_sources, get_layout

    sources = collect_sources(get_layout("iper"), [str(FOOTAGE)])
    assert {s.name: s.split for s in sources} == {name: part for part, names in split().items() for name in names}
