"""The dataset store: write, open, clips per split, and precise messages for damaged stores."""
import json
import os
import shutil

import numpy as np
import pytest

from poke2video.data.store import Store, StoreWriter
from poke2video.errors import UserError

RES, T = 8, 2


def tiny_arrays(frames=6, seed=0):
    rng = np.random.default_rng(seed)
    starts = np.arange(frames - T, dtype=np.int32)
    return {"frames": rng.integers(0, 255, (frames, RES, RES, 3), dtype=np.uint8), "starts": starts,
            "flow": rng.normal(size=(len(starts), 2, RES, RES)).astype(np.float16),
            "motion": rng.random(frames - 1).astype(np.float32)}


@pytest.fixture
def store_path(tmp_path):
    writer = StoreWriter(tmp_path / "data", {"resolution": RES, "clip_length": T, "flow_method": "dis"})
    records = [writer.add_video(i, tiny_arrays(seed=i), {"name": f"v{i}"}) for i in range(2)]
    return writer.finalize(records, {"train": [[0, 0, 6]], "test": [[1, 0, 4], [1, 4, 6]]})


def test_roundtrip_and_clips(store_path):
    store = Store.open(store_path, verify_hashes=True)
    assert store.resolution == RES and store.clip_length == T and len(store.videos) == 2
    assert (np.asarray(store.frames(1)) == tiny_arrays(seed=1)["frames"]).all()
    assert store.clips("train").tolist() == [[0, 0], [0, 1], [0, 2], [0, 3]]
    assert store.clips("test").tolist() == [[1, 0], [1, 1]]  # a clip may not cross a segment end
    assert not (store_path.parent / "data.partial").exists()
    with pytest.raises(UserError, match="no split 'val'"):
        store.clips("val")


def edit_manifest(path, change):
    manifest = json.loads((path / "manifest.json").read_text())
    change(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_truncated_array(store_path):
    flow = store_path / "videos/000001/flow.npy"
    flow.write_bytes(flow.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"video 1 \(v1\).*flow.npy is damaged or truncated"):
        Store.open(store_path)


def test_edited_manifest_shape(store_path):
    edit_manifest(store_path, lambda m: m["videos"][0]["arrays"]["frames"].update(shape=[7, RES, RES, 3]))
    with pytest.raises(UserError, match=r"frames.npy has shape \[6, 8, 8, 3\] uint8, manifest says \[7"):
        Store.open(store_path)


def test_wrong_version(store_path):
    edit_manifest(store_path, lambda m: m.update(version=99))
    with pytest.raises(UserError, match="format version 99; this poke2video reads version 1"):
        Store.open(store_path)


def test_missing_file_and_manifest(store_path):
    (store_path / "videos/000000/motion.npy").unlink()
    with pytest.raises(UserError, match="motion.npy is missing"):
        Store.open(store_path)
    (store_path / "manifest.json").unlink()
    with pytest.raises(UserError, match="manifest.json is missing"):
        Store.open(store_path)


def test_altered_bytes_and_bad_json(store_path):
    frames = store_path / "videos/000000/frames.npy"
    data = bytearray(frames.read_bytes())
    data[-1] ^= 0xFF
    frames.write_bytes(bytes(data))
    Store.open(store_path)  # same shape: only the hash check notices
    with pytest.raises(UserError, match="altered"):
        Store.open(store_path, verify_hashes=True)
    (store_path / "manifest.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        Store.open(store_path)


def test_resume_with_other_options_is_refused(tmp_path):
    StoreWriter(tmp_path / "d", {"resolution": RES, "clip_length": T})
    with pytest.raises(UserError, match="unfinished run made with other options"):
        StoreWriter(tmp_path / "d", {"resolution": RES, "clip_length": T + 1})


def point_outside(store_path, how):
    """Edit the store at `store_path` so that video 0 is read from the intact store `other` beside it."""
    other = store_path.parent / "other"
    if not other.exists():
        writer = StoreWriter(other, {"resolution": RES, "clip_length": T, "flow_method": "dis"})
        writer.finalize([writer.add_video(0, tiny_arrays(seed=0), {"name": "v0"})], {"train": [[0, 0, 6]]})
    outside = other / "videos/000000"
    if how == "relative":
        edit_manifest(store_path, lambda m: m["videos"][0].update(dir="../other/videos/000000"))
    elif how == "absolute":
        edit_manifest(store_path, lambda m: m["videos"][0].update(dir=str(outside.resolve())))
    elif how == "dotdot inside":
        edit_manifest(store_path, lambda m: m["videos"][0].update(dir="videos/../videos/000000"))
    elif how == "array name":
        edit_manifest(store_path, lambda m: m["videos"][0]["arrays"].update(
            {"../../../other/videos/000000/flow": m["videos"][0]["arrays"]["flow"]}))
    elif how == "nul byte":
        edit_manifest(store_path, lambda m: m["videos"][0].update(dir="videos/000000\0"))
    elif how == "not a string":
        edit_manifest(store_path, lambda m: m["videos"][0].update(dir=["videos", "000000"]))
    elif how == "symlink":
        shutil.rmtree(store_path / "videos/000000")
        (store_path / "videos/000000").symlink_to(outside.resolve(), target_is_directory=True)


@pytest.mark.parametrize("how", ["relative", "absolute", "dotdot inside", "array name", "nul byte", "not a string",
                                 "symlink"])
def test_manifest_paths_stay_inside_the_store(store_path, how):
    point_outside(store_path, how)
    with pytest.raises(UserError, match=r"video 0 \(v0\): the manifest names .* not a path inside the store") as err:
        Store.open(store_path)
    assert "\n" not in str(err.value)


def test_a_store_reached_through_a_symlink_still_opens(store_path):
    """The check compares resolved paths: a link to the whole store, or a relative root, is not an escape."""
    link = store_path.parent / "link"
    link.symlink_to(store_path, target_is_directory=True)
    assert len(Store.open(link).videos) == 2
    assert len(Store.open(os.path.relpath(link)).videos) == 2
