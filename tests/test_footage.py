"""footage/: every video is in split.json exactly once, train and test share none, SOURCES.md names each."""
from __future__ import annotations

import json
import re
from pathlib import Path

import av
import pytest

FOOTAGE = Path(__file__).resolve().parents[1] / "footage"
NOT_VIDEOS = {"SOURCES.md", "split.json"}
MIN_FRAMES = 11  # one clip of prepare's default length (10 frames after the first) at stride 1


def videos() -> list[str]:
    return sorted(p.name for p in FOOTAGE.iterdir() if p.name not in NOT_VIDEOS)


def split() -> dict[str, list[str]]:
    return json.loads((FOOTAGE / "split.json").read_text())


def test_split_has_exactly_train_and_test():
    assert sorted(split()) == ["test", "train"]
    assert split()["train"] and split()["test"]


def test_split_lists_every_video_once():
    listed = split()["train"] + split()["test"]
    assert sorted(listed) == videos(), "footage/split.json must list every file in footage/ exactly once"


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
