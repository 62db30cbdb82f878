"""Each dataset layout (`prepare --layout`) on a tiny fake tree laid out like its official download."""
from pathlib import Path

import numpy as np
import pytest

from conftest import moving_square_frames, write_image_folder, write_video
from poke2video.data.prepare import prepare_dataset
from poke2video.data.layouts import collect_sources, get_layout, make_splits
from poke2video.data.store import Store
from poke2video.errors import UserError

TINY = {"resolution": 16, "clip_length": 2}


def tiny_video(path, count=8, fps=25):
    return write_video(path, moving_square_frames(count=count, size=16, speed=(1, 1)), fps=fps)


def splits_of(store):
    return {name: [[store.videos[v]["name"], a, b] for v, a, b in segments]
            for name, segments in store.splits.items()}


def test_generic_seeded_80_20_split_of_whole_videos(tmp_path):
    for i in range(10):
        (tmp_path / "clips").mkdir(exist_ok=True)
        (tmp_path / "clips" / f"v{i}.mp4").write_bytes(b"")  # only paths matter for the split
    sources = collect_sources(get_layout("generic"), [str(tmp_path / "clips")])
    assert [s.name for s in sources] == [f"clips/v{i}.mp4" for i in range(10)]  # natural order
    counts = [20] * 10
    splits = make_splits(get_layout("generic"), sources, counts, seed=0)
    assert len(splits["test"]) == 2 and len(splits["train"]) == 8
    assert all(seg[1:] == [0, 20] for seg in splits["train"] + splits["test"])
    assert splits == make_splits(get_layout("generic"), sources, counts, seed=0)
    others = [make_splits(get_layout("generic"), sources, counts, seed=s)["test"] for s in range(1, 6)]
    assert any(test != splits["test"] for test in others)


def test_plants_last_fifth_of_each_video_is_test(tmp_path):
    tiny_video(tmp_path / "plants" / "plant_a.mp4", count=10)
    write_image_folder(tmp_path / "plants" / "plant_b", moving_square_frames(count=15, size=16, speed=(1, 0)))
    store = Store.open(prepare_dataset([tmp_path / "plants"], tmp_path / "d", layout="plants", **TINY))
    assert splits_of(store) == {"train": [["plants/plant_a.mp4", 0, 8], ["plants/plant_b", 0, 12]],
                                "test": [["plants/plant_a.mp4", 8, 10], ["plants/plant_b", 12, 15]]}
    test_clips = store.clips("test")
    assert all(store.starts(v)[row] >= 12 for v, row in test_clips if v == 1)


def test_iper_uses_its_train_and_test_lists(tmp_path):
    root = tmp_path / "iPER"
    for name in ("001_1_1", "001_1_2", "002_1_1"):
        tiny_video(root / "iPER_256_video_release" / f"{name}.mp4")
    (root / "train.txt").write_text("001/1/1\n002/1/1\n")
    (root / "test.txt").write_text("001/1/2\n")
    store = Store.open(prepare_dataset([root], tmp_path / "d", layout="iper", **TINY))
    assert splits_of(store) == {"train": [["001/1/1", 0, 8], ["002/1/1", 0, 8]], "test": [["001/1/2", 0, 8]]}
    (root / "test.txt").write_text("009/9/9\n")
    with pytest.raises(UserError, match=r"test.txt: video '009/9/9' not found"):
        collect_sources(get_layout("iper"), [str(root)])


def test_taichi_folders_and_stride_2(tmp_path):
    tiny_video(tmp_path / "taichi" / "train" / "a.mp4", count=12)
    tiny_video(tmp_path / "taichi" / "test" / "b.mp4", count=12)
    store = Store.open(prepare_dataset([tmp_path / "taichi"], tmp_path / "d", layout="taichi", **TINY))
    assert splits_of(store) == {"train": [["train/a.mp4", 0, 6]], "test": [["test/b.mp4", 0, 6]]}
    assert store.manifest["data_config"]["frame_stride"] == 2
    with pytest.raises(UserError, match="train/train is missing"):
        collect_sources(get_layout("taichi"), [str(tmp_path / "taichi" / "train")])


def test_h36m_subjects_9_and_11_are_test_at_6_25_hz(tmp_path):
    root = tmp_path / "h36m"
    for subject in ("S1", "S9", "S11"):
        tiny_video(root / subject / "Videos" / "Walking.54138969.mp4", count=32, fps=50)
    store = Store.open(prepare_dataset([root], tmp_path / "d", layout="h36m", **TINY))
    names = splits_of(store)
    assert [seg[0] for seg in names["train"]] == ["S1/Videos/Walking.54138969.mp4"]
    assert [seg[0] for seg in names["test"]] == ["S9/Videos/Walking.54138969.mp4",
                                                 "S11/Videos/Walking.54138969.mp4"]
    assert all(v["num_frames"] == 4 for v in store.videos)  # 32 frames at 50 Hz -> every 8th
    expected = moving_square_frames(count=32, size=16, speed=(1, 1))[::8].astype(int)
    assert np.abs(np.asarray(store.frames(0), int) - expected).mean() < 4


def test_unknown_layout_and_misplaced_input_errors(tmp_path):
    with pytest.raises(UserError, match="unknown dataset layout 'kinetics'"):
        get_layout("kinetics")
    (tmp_path / "loose.mp4").write_bytes(b"")
    with pytest.raises(UserError, match="not inside a subject folder"):
        collect_sources(get_layout("h36m"), [str(tmp_path)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no videos found"):
        collect_sources(get_layout("generic"), [str(tmp_path / "empty")])


def test_layout_option_and_its_former_name(capsys):
    from poke2video.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["prepare", "in", "--out", "d"]).layout == "generic"
    assert parse(["prepare", "in", "--out", "d", "--layout", "taichi"]).layout == "taichi"
    assert parse(["prepare", "in", "--out", "d", "--preset", "iper"]).layout == "iper"   # still accepted
    with pytest.raises(SystemExit):
        parse(["prepare", "--help"])
    help_text = capsys.readouterr().out
    assert "--layout" in help_text and "--preset" not in help_text


def test_unreadable_folder_is_named(tmp_path, monkeypatch):
    tiny_video(tmp_path / "clips" / "ok.mp4")
    (tmp_path / "clips" / "locked").mkdir()
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self.name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(UserError, match="locked: cannot read folder \\(Permission denied\\)"):
        collect_sources(get_layout("generic"), [str(tmp_path / "clips")])
