"""What training reads from PokeSim and from videos: the simulator's pokes, made-up species, clips as video
files, and every frame's flow chained from a prepared store's per-step flows."""
import numpy as np
import pytest

from poke2video.config import PokeConfig
from poke2video.data.dataset import PokeDataset
from poke2video.data.prepare import prepare_dataset
from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video.sim.bodies import SPECIES, TRAIN_LEAF_SHAPES, procedural_species
from poke2video.sim.generate import simulate_dataset
from poke2video.sim.videos import simulate_videos
from poke2video.data.video import Sampling, read_frames, source_fps


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_dataset(tmp_path_factory.mktemp("sim") / "store", clips=30, seed=3)


def test_sim_pokes_are_the_simulators_own(sim):
    store = Store.open(sim)
    dataset = PokeDataset(store, "train", poke=PokeConfig(source="sim"), flow_frames="all")
    for index in (0, 1, 5):
        video, row = (int(v) for v in dataset.clips[index])
        x, y, _, _, dx, dy, *_, background = store.array(video, "gt_poke")[row]
        poke = dataset[index][3].numpy()
        assert np.allclose(poke, [x, y, dx, dy, background])
    assert PokeDataset(store, "train", poke=PokeConfig(source="auto")).poke_source == "sim"


def test_sim_pokes_need_a_pokesim_store_and_auto_falls_back_to_flow(tmp_path):
    from train_support import make_tiny_store

    plain = make_tiny_store(tmp_path / "plain")
    with pytest.raises(UserError, match="poke.source: sim needs a PokeSim store"):
        PokeDataset(plain, "train", poke=PokeConfig(source="sim"))
    assert PokeDataset(plain, "train", poke=PokeConfig(source="auto")).poke_source == "flow"


def test_procedural_species_tie_looks_to_physics_and_never_copy_held_out_leaves():
    rng = np.random.default_rng(0)
    made = [procedural_species(rng, "plant") for _ in range(300)]
    assert all(s.leaf_shape in TRAIN_LEAF_SHAPES and not s.held_out for s in made)
    assert len({s.omega for s in made}) == 300                       # a new species every time
    stiff = sorted(made, key=lambda s: s.omega)
    soft_brightness = np.mean([sum(s.stem_colour) for s in stiff[:50]])
    stiff_brightness = np.mean([sum(s.stem_colour) for s in stiff[-50:]])
    assert stiff_brightness < soft_brightness and np.mean([s.thickness for s in stiff[-50:]]) > \
        np.mean([s.thickness for s in stiff[:50]])
    assert "heart" not in TRAIN_LEAF_SHAPES and any(s.leaf_shape == "heart" for s in SPECIES if s.held_out)


def test_procedural_store_makes_up_train_species_and_keeps_the_test_splits(tmp_path):
    store = Store.open(simulate_dataset(tmp_path / "p", clips=30, seed=3, procedural=True))
    plain = Store.open(simulate_dataset(tmp_path / "n", clips=30, seed=3))
    objects, named = store.array(0, "gt_object"), plain.array(0, "gt_object")
    train = store.clips("train")[:, 1]
    tests = np.concatenate([store.clips("test")[:, 1], store.clips("test_unseen")[:, 1]])
    assert (objects[train, 1] == -1).all()                          # procedural species: no index
    assert np.array_equal(objects[tests], named[tests])             # the test splits are the same clips
    assert np.array_equal(store.frames(0)[-11:], plain.frames(0)[-11:])


def test_clips_as_videos_prepare_into_a_store_with_every_frames_flow(tmp_path):
    folder = simulate_videos(tmp_path / "videos", clips=6, seed=2)
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"pokesim-{j:06d}.mp4" for j in range(6)]
    simulate_videos(folder, clips=6, seed=2)                       # a rerun keeps the files it finds
    assert [f.stat().st_mtime_ns for f in sorted(folder.iterdir())] == [f.stat().st_mtime_ns for f in files]
    store = Store.open(prepare_dataset([str(folder)], str(tmp_path / "store")))
    assert all(store.has_array(v, "step_flow") for v in range(len(store.videos)))
    assert not any(store.has_array(v, "gt_flow") or store.has_array(v, "gt_poke") for v in range(len(store.videos)))
    dataset = PokeDataset(store, "train", poke=PokeConfig(source="auto"), flow_frames="all")
    flows = dataset[0][4].numpy()                                   # [T, 2, H, W] chained from step flows
    assert flows.shape == (10, 2, 64, 64) and dataset.poke_source == "flow"
    difference = np.abs(flows[-1] - dataset.clip_flow(0))          # frame T: the store's own clip flow,
    assert difference.mean() < 0.01 and difference.max() < 0.3      # up to float16 steps chained
    assert np.abs(flows[-1]).max() > 1.0


def test_videos_with_frames_between_steps_prepare_into_the_same_store_frames(tmp_path):
    plain = simulate_videos(tmp_path / "plain", clips=3, seed=5)
    fast = simulate_videos(tmp_path / "fast", clips=3, seed=5, frames_per_step=2)
    assert source_fps(fast / "pokesim-000000.mp4") == 2 * source_fps(plain / "pokesim-000000.mp4")
    assert len(read_frames(fast / "pokesim-000000.mp4", Sampling(64))) == 21
    kept = Store.open(prepare_dataset([str(fast)], str(tmp_path / "kept"), stride=2, flow_every_frame=True))
    base = Store.open(prepare_dataset([str(plain)], str(tmp_path / "base")))
    assert kept.manifest["flow_every_frame"] is True and "flow_every_frame" not in base.manifest
    for v in range(3):   # the kept frames are the plain video's frames, up to H.264's noise
        difference = np.abs(kept.frames(v).astype(int) - base.frames(v))
        assert kept.frames(v).shape == base.frames(v).shape and difference.mean() < 2.0
        assert kept.array(v, "step_flow").shape == base.array(v, "step_flow").shape


def test_a_rerun_with_another_frame_rate_is_refused_and_keeps_the_videos(tmp_path):
    folder = simulate_videos(tmp_path / "videos", clips=2, seed=5)
    before = [f.stat().st_mtime_ns for f in sorted(folder.iterdir())]
    with pytest.raises(UserError, match="is at 8 fps, where these clips would be 16 fps"):
        simulate_videos(folder, clips=3, seed=5, frames_per_step=2)
    assert [f.stat().st_mtime_ns for f in sorted(folder.iterdir())] == before     # nothing added or changed


def test_frames_per_step_is_refused_unless_it_divides_the_substeps(tmp_path):
    with pytest.raises(UserError, match="--frames-per-step must be one of 1, 2, 4, 8, got 3"):
        simulate_videos(tmp_path / "v", clips=1, frames_per_step=3)
    assert not (tmp_path / "v" / "pokesim-000000.mp4").exists()
