"""PokeSim datasets: the standard store, splits, determinism, resuming and the command line."""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video.sim import generate
from poke2video.sim.bodies import SPECIES
from poke2video.sim.generate import simulate_dataset

ARRAYS = ("frames", "flow", "motion", "starts", "gt_poke", "gt_track", "gt_flow", "gt_segments", "gt_parents",
          "gt_joints", "gt_object")


def all_arrays(store):
    return {(v, name): np.asarray(store.array(v, name)) for v in range(len(store.videos)) for name in ARRAYS}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "pokesim"
    simulate_dataset(out, clips=30, resolution=64, seed=5, kind="mixed", chunk_clips=12)
    return Store.open(out, verify_hashes=True)


def test_store_opens_with_the_standard_loader_and_has_the_splits(small):
    assert small.resolution == 64 and small.clip_length == 10
    assert small.manifest["flow_method"] == "ground-truth"
    assert len(small.videos) == 3
    counts = {split: len(small.clips(split)) for split in ("train", "test", "test_unseen")}
    assert counts == {"train": 24, "test": 3, "test_unseen": 3}
    info = small.manifest["extra"]["pokesim"]
    assert info["background_clips"] == {"train": 3, "test": 1, "test_unseen": 1}
    assert set(info["arrays"]) == {name for name in ARRAYS if name.startswith("gt_")}


def clip_rows(store, split):
    return [(int(v), int(c)) for v, c in store.clips(split)]


def test_held_out_species_only_in_test_unseen_and_background_pokes_in_every_split(small):
    for split in ("train", "test", "test_unseen"):
        objects = np.array([small.array(v, "gt_object")[c] for v, c in clip_rows(small, split)])
        held_out = {SPECIES[i].held_out for i in objects[:, 1]}
        assert held_out == {split == "test_unseen"}
        assert objects[0, 3] == 1 and objects[:, 3].sum() == -(-len(objects) // 10)


def test_frames_and_flow_sit_where_the_store_says(small):
    v, c = clip_rows(small, "test")[1]
    start = int(small.starts(v)[c])
    clip_frames = small.frames(v)[start:start + 11]
    assert clip_frames.shape == (11, 64, 64, 3)
    np.testing.assert_array_equal(small.flow(v)[c], small.array(v, "gt_flow")[c, -1])
    assert small.motion(v)[start + 10] == 0          # the step into the next clip of the chunk
    assert small.motion(v)[start:start + 10].max() > 0


def test_same_seed_gives_identical_bytes_with_any_worker_count(tmp_path, small):
    simulate_dataset(tmp_path / "again", clips=30, resolution=64, seed=5, kind="mixed", workers=2, chunk_clips=12)
    again = Store.open(tmp_path / "again")
    first, second = all_arrays(small), all_arrays(again)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    simulate_dataset(tmp_path / "other", clips=30, resolution=64, seed=6, kind="mixed", chunk_clips=12)
    other = Store.open(tmp_path / "other")
    assert not np.array_equal(np.asarray(other.frames(0)), np.asarray(small.frames(0)))


def test_a_killed_run_resumes_without_redoing_finished_chunks(tmp_path, monkeypatch):
    calls = []
    real = generate.render_chunk

    def dies_on_second(specs, scene):
        calls.append(len(specs))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(specs, scene)

    monkeypatch.setattr(generate, "render_chunk", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        simulate_dataset(tmp_path / "ds", clips=8, kind="figures", chunk_clips=4)
    assert not (tmp_path / "ds").exists() and (tmp_path / "ds.partial").exists()
    simulate_dataset(tmp_path / "ds", clips=8, kind="figures", chunk_clips=4)
    assert calls == [4, 4, 4]
    simulate_dataset(tmp_path / "clean", clips=8, kind="figures", chunk_clips=4)
    resumed, clean = all_arrays(Store.open(tmp_path / "ds")), all_arrays(Store.open(tmp_path / "clean"))
    assert all(np.array_equal(resumed[k], clean[k]) for k in clean)


@pytest.mark.parametrize("kind, wanted", [("plants", {"plant"}), ("figures", {"figure"})])
def test_kind_selects_the_objects(tmp_path, kind, wanted):
    simulate_dataset(tmp_path / kind, clips=4, kind=kind)
    objects = Store.open(tmp_path / kind).array(0, "gt_object")
    assert {SPECIES[i].kind for i in objects[:, 1]} == wanted


def test_bad_options_raise_one_line_user_errors(tmp_path):
    for kwargs in ({"resolution": 8}, {"seed": -1}, {"kind": "trees"}, {"sway": 0.5}):
        with pytest.raises(UserError) as err:
            simulate_dataset(tmp_path / "bad", clips=2, **kwargs)
        assert "\n" not in str(err.value)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad.partial").exists()


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "poke2video", "simulate", *args], capture_output=True, text=True)


def test_command_line_writes_a_store_and_rejects_bad_arguments(tmp_path):
    done = run_cli("--out", str(tmp_path / "cli"), "--clips", "3", "--res", "64", "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert len(Store.open(tmp_path / "cli").clips("train")) == 1
    again = run_cli("--out", str(tmp_path / "cli"), "--clips", "3")
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = run_cli("--out", str(tmp_path / "x"), "--clips", "3", "--res", "8")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "--res" in bad.stderr


def test_128_pixel_dataset_has_consistent_shapes(tmp_path):
    simulate_dataset(tmp_path / "big", clips=6, resolution=128, seed=2, kind="mixed")
    store = Store.open(tmp_path / "big")
    assert store.resolution == 128 and store.frames(0).shape == (66, 128, 128, 3)
    assert store.array(0, "gt_flow").shape == (6, 11, 2, 128, 128)
    assert store.array(0, "gt_segments").shape == (6, 11, 128, 128)
    poke = store.array(0, "gt_poke")
    assert poke[1, 9] == 0                      # train clip 1 is an object poke
    x, y = int(poke[1, 0]), int(poke[1, 1])
    assert store.array(0, "gt_segments")[1, 0, y, x] == poke[1, 8] + 1


def test_ambient_sway_moves_even_background_poke_clips(tmp_path):
    simulate_dataset(tmp_path / "sway", clips=3, kind="plants", sway=0.05)
    store = Store.open(tmp_path / "sway")
    assert store.array(0, "gt_object")[:, 3].all()              # three splits of one clip: all background pokes
    frames = np.asarray(store.frames(0)).reshape(3, 11, 64, 64, 3)
    assert all(not np.array_equal(clip[0], clip[-1]) for clip in frames)


def _stat_fields(process: Path) -> list[str]:
    """/proc/PID/stat after the command name: [state, parent pid, ...]; OSError once the process is gone."""
    return (process / "stat").read_text().rsplit(")", 1)[1].split()


def _spawned_workers(parent_pid: int) -> list[int]:
    """Pids of the multiprocessing workers whose parent is `parent_pid` (Linux /proc)."""
    pids = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if int(_stat_fields(process)[1]) == parent_pid and b"spawn_main" in (process / "cmdline").read_bytes():
                pids.append(int(process.name))
        except (OSError, IndexError, ValueError):
            continue   # the process ended while it was read
    return pids


def _running(pid: int) -> bool:
    try:
        state = _stat_fields(Path(f"/proc/{pid}"))[0]
    except OSError:
        return False
    return state not in ("Z", "X")   # a zombie is dead, only not yet reaped


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with the parent on Linux (prctl)")
def test_workers_die_with_a_killed_simulate(tmp_path):
    """SIGKILL on `simulate --workers 2` alone: its workers die too, instead of finishing their chunks beside
    the run that resumes it (each would then write a 600-clip chunk after the kill)."""
    out = tmp_path / "store"
    command = [sys.executable, "-m", "poke2video", "simulate", "--out", str(out), "--clips", "1200",
               "--chunk-clips", "600", "--workers", "2"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(workers := _spawned_workers(run.pid)) < 2:
        assert run.poll() is None and time.monotonic() < deadline, "simulate never started its two workers"
        time.sleep(0.05)
    videos = out.with_name("store.partial") / "videos"
    finished_before = sorted(p.name for p in videos.glob("[0-9]*")) if videos.is_dir() else []
    run.kill()
    run.wait()
    deadline = time.monotonic() + 120
    while any(_running(pid) for pid in workers):
        assert time.monotonic() < deadline, "the workers outlived simulate by two minutes"
        time.sleep(0.05)
    assert sorted(p.name for p in videos.glob("[0-9]*")) == finished_before
    simulate_dataset(out, clips=1200, resolution=64, seed=0, kind="mixed", workers=2, chunk_clips=600)
    assert len(Store.open(out).clips("train")) == 960


def test_a_clip_pushed_again_answers_like_a_spring(small):
    """scene.repoke: the clip's object from its own first frame, still without force, pushed back when
    pushed the other way, further when pushed harder."""
    from poke2video.sim.generate import store_clip_spec
    from poke2video.sim.scene import repoke

    video, row = next((int(v), int(r)) for v, r in small.clips("test")
                      if not small.array(int(v), "gt_poke")[int(r)][9])
    spec, scene = store_clip_spec(small.manifest, video, row)
    force = small.array(video, "gt_poke")[row][6:8]
    videos, drags = repoke(spec, scene, [force, force, -force, force], [0.0, 0.2, 0.2, 0.4])
    start = int(small.starts(video)[row])
    assert videos.shape == (4, 11, 64, 64, 3) and drags.shape == (4, 2)
    assert np.array_equal(videos[:, 0], np.repeat(small.frames(video)[start][None], 4, axis=0))
    assert np.array_equal(videos[0], np.repeat(videos[0, :1], 11, axis=0)) and np.allclose(drags[0], 0.0)
    assert np.dot(drags[1], drags[2]) < 0 and np.dot(drags[1], force) > 0
    assert np.hypot(*drags[3]) > np.hypot(*drags[1]) > 0.5
    with pytest.raises(UserError, match="no clip"):
        store_clip_spec(small.manifest, 99, 0)
