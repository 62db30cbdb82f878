"""Stores whose arrays agree with their manifest but not with the format (store_format.ARRAY_FORMAT): a
dtype, rank or shape the format does not allow is one line naming the file when the store is opened, by
every command that opens one, before anything memory-maps or reads the array."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import moving_square_frames, write_video
from poke2video.data.prepare import prepare_dataset
from poke2video.data.store import Store, file_sha256
from poke2video.data.store_format import ARRAY_FORMAT, expected_shape, shape_fits
from poke2video.errors import UserError
from test_fuzz_cli import PROGRESS, run
from train_support import RES, T, make_tiny_store


def replace_array(store: Path, video: int, name: str, array: np.ndarray | None = None, header: dict | None = None):
    """Write `array` (or a bare .npy `header` with zeroed data of the size it promises) as video `video`'s
    `name`.npy, and make the manifest agree with it: shape, dtype and sha256, so that only the format can
    tell it is wrong."""
    file = store / "videos" / f"{video:06d}" / f"{name}.npy"
    if array is not None:
        np.save(file, array, allow_pickle=False)
        shape, dtype = list(array.shape), str(array.dtype)
    else:
        with open(file, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"fortran_order": False, **header})
            f.write(b"\0" * (int(np.prod(header["shape"])) * np.dtype(header["descr"]).itemsize))
        shape, dtype = list(header["shape"]), str(np.dtype(header["descr"]))
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["videos"][video]["arrays"][name] = {"shape": shape, "dtype": dtype, "sha256": file_sha256(file)}
    (store / "manifest.json").write_text(json.dumps(manifest))
    return file


def object_starts(store: Path) -> Path:
    """The probe's case: starts.npy of dtype object (np.load(mmap_mode='r') refuses it: "can't be memory-mapped")."""
    clips = len(np.load(store / "videos/000000/starts.npy"))
    return replace_array(store, 0, "starts", header={"descr": "|O", "shape": (clips,)})


def current(store: Path, video: int, name: str) -> np.ndarray:
    return np.load(store / "videos" / f"{video:06d}" / f"{name}.npy")


DAMAGE = {                                                  # store -> (the file changed, words of its line)
    "object starts": lambda s: (object_starts(s), "is object [11]; a store's starts.npy is int32 [K]"),
    "2-D starts": lambda s: (replace_array(s, 1, "starts", np.stack([current(s, 1, "starts")] * 2, axis=1)),
                             "is int32 [11, 2]; a store's starts.npy is int32 [K]"),
    "float frames": lambda s: (replace_array(s, 0, "frames", current(s, 0, "frames").astype(np.float32)),
                               "is float32 [14, 32, 32, 3]; a store's frames.npy is uint8 [N, R, R, 3]"),
    "gt_flow of T frames": lambda s: (replace_array(s, 1, "gt_flow", current(s, 1, "gt_flow")[:, :T]),
                                      f"here float16 [11, {T + 1}, 2, {RES}, {RES}]"),
    "int64 motion": lambda s: (replace_array(s, 0, "motion", current(s, 0, "motion").astype(np.int64)),
                               "is int64 [13]; a store's motion.npy is float32 [N-1]"),
    "an extra array of strings": lambda s: (replace_array(s, 0, "notes", np.array(["a", "bc"])),
                                            "is a <U2 array; a store holds only numbers"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_opening_a_store_checks_every_array_against_the_format(tmp_path, case):
    store = make_tiny_store(tmp_path / "data", gt_flow=True)
    Store.open(store)                                       # intact, and the format's own writers pass
    file, words = DAMAGE[case](store)
    with pytest.raises(UserError) as caught:
        Store.open(store)
    line = str(caught.value)
    assert "\n" not in line and f"{file}" in line and words in line, line


def test_every_array_the_writers_make_is_in_the_table(tmp_path):
    """The table's sizes are the writers' own: a PokeSim store (with several pokes and pins, so every gt_ array
    is there) and a tiny prepared one pass, array by array."""
    from poke2video.sim.generate import simulate_dataset

    store = Store.open(simulate_dataset(tmp_path / "sim", clips=3, resolution=32, max_pokes=2, max_pins=1))
    names = set(store.videos[0]["arrays"])
    assert names == set(ARRAY_FORMAT) - {"step_flow", "tracked_motion"}
    write_video(tmp_path / "in" / "v.mp4", moving_square_frames(count=8, size=64))
    prepared = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "p", resolution=32, clip_length=4,
                                          flow_scale=2, tracked_truth=True))
    assert {"step_flow", "tracked_motion"} <= set(prepared.videos[0]["arrays"])
    for made in (store, prepared):
        record = made.videos[0]
        for name, info in record["arrays"].items():
            wanted = expected_shape(name, record["num_frames"], record["num_clips"], 32, made.clip_length)
            assert wanted is not None and shape_fits(info["shape"], wanted), name


def error_lines(err: str) -> list[str]:
    return [line for line in err.replace("\r", "\n").splitlines() if line.strip() and not PROGRESS.search(line)]


@pytest.mark.parametrize("argv", [
    ["evaluate", "--data", "{bad}", "--out", "report", "--lpips", "off", "--no-fvd"],
    ["train", "--data", "{bad}", "--out", "run", "--steps", "1"],
    ["train", "--data", "{good}", "--val-data", "{bad}", "--out", "run", "--steps", "1"],
    ["train", "--data", "{bad}", "--out", "run", "--steps", "1", "--in-memory"],
    ["verify", "{bad}"],
], ids=["evaluate", "train", "val-data", "in-memory", "verify"])
def test_every_command_refuses_an_object_array_in_one_line(tmp_path, argv):
    good, bad = make_tiny_store(tmp_path / "good"), make_tiny_store(tmp_path / "bad")
    file = object_starts(bad)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run([a.format(good=good, bad=bad) for a in argv], tmp_path)
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"poke2video {argv[0]}: error: ") and f"{file} is object" in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
