"""Correlation maps and their structure score: known AUCs, the kinematic subtree, a tiny model, the command."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from eval_support import make_tiny_checkpoint
from poke2video.errors import UserError
from poke2video.evaluate.baselines import WarpBaseline, static_baseline
from poke2video.evaluate.cases import EvalCase, subtree_mask, subtree_segments
from poke2video.evaluate.correlate import (average_ranks, correlate_to_file, correlation_map, random_targets,
                                           structure_auc)
from poke2video.poker import Poker
from test_evaluate_baselines import texture


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors")


def test_auc_of_a_perfect_map_is_one_and_of_its_inverse_zero():
    positive = np.zeros((8, 8), bool)
    positive[2:5, 3:6] = True
    score = positive.astype(float) + np.random.default_rng(0).uniform(0, 0.5, (8, 8))
    assert structure_auc(score, positive) == 1.0
    assert structure_auc(-score, positive) == 0.0
    assert structure_auc(np.ones((8, 8)), positive) == 0.5       # all tied: chance
    among = np.zeros((8, 8), bool)
    among[2:5, :] = True                                            # only rows 2-4 count
    flipped = score.copy()
    flipped[7, 7] = 10.0                                            # outside `among`: ignored
    assert structure_auc(flipped, positive, among) == 1.0
    assert np.isnan(structure_auc(score, np.ones((8, 8), bool)))   # no negatives


def test_auc_matches_pairwise_counting():
    rng = np.random.default_rng(1)
    score = rng.integers(0, 5, 60).astype(float)                  # many ties
    positive = rng.random(60) < 0.4
    pairs = [(p > n) + 0.5 * (p == n) for p in score[positive] for n in score[~positive]]
    assert structure_auc(score, positive) == pytest.approx(np.mean(pairs))
    np.testing.assert_array_equal(average_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1.0, 3.5, 2.0])


def test_subtree_follows_the_kinematic_tree():
    parents = np.array([-1, 0, 1, 1, 0, 4, -2, -2], np.int16)     # 0 root; 1 -> (2, 3); 4 -> 5
    assert subtree_segments(parents, 1).tolist() == [1, 2, 3]
    assert subtree_segments(parents, 4).tolist() == [4, 5]
    assert subtree_segments(parents, 0).tolist() == [0, 1, 2, 3, 4, 5]
    segments = np.array([[0, 1, 2], [3, 4, 5], [6, 0, 0]], np.uint8)  # ids = segment + 1
    case = EvalCase((0, 0), np.zeros((2, 3, 3, 3), np.uint8), (1, 1), (1, 1), (1, 1), False,
                    segments=segments, parents=parents, poked_segment=1)
    np.testing.assert_array_equal(subtree_mask(case), [[False, False, True], [True, True, False],
                                                       [False, False, False]])


def test_random_targets_stay_inside_the_image():
    targets = random_targets((1.0, 30.0), 32, 32, 200, np.random.default_rng(0))
    assert targets.shape == (200, 2) and targets.min() >= 0 and targets.max() <= 31
    lengths = np.hypot(*(targets - [1.0, 30.0]).T)
    assert lengths.max() <= 0.15 * 32 + 1e-9 and lengths.max() > 0.03 * 32


def test_still_video_gives_a_flat_map_and_warp_ties_the_neighbourhood():
    image = texture(32, seed=2)
    still = correlation_map(static_baseline, image, (16, 16), frames=4, pokes=6)
    np.testing.assert_allclose(still.variance, still.still_variance)  # every pixel: d = |poke|
    warped = correlation_map(WarpBaseline(), image, (16, 16), frames=4, pokes=6)
    near, far = warped.variance[14:19, 14:19].mean(), warped.variance[:4, :4].mean()
    assert near < 0.25 * far                                          # moves with the poke near (16, 16)


def test_tiny_model_map_and_command(checkpoint, tmp_path):
    poker = Poker.load(checkpoint)
    image = texture(32, seed=4)
    result = correlation_map(lambda f, s, t, n: poker.animate(f, s, t), image, (10, 20), poker.frames, pokes=3)
    assert result.variance.shape == (32, 32) and np.isfinite(result.inverse_variance).all()
    assert result.pokes.shape == (3, 2) and (result.variance >= 0).all()
    Image.fromarray(image).save(tmp_path / "img.png")
    out = correlate_to_file(str(checkpoint), tmp_path / "img.png", (10, 20), str(tmp_path / "map.png"), pokes=3)
    with Image.open(out) as figure:
        assert figure.format == "PNG" and figure.size[0] > 2 * 256
    with pytest.raises(UserError, match="at least 2"):
        correlate_to_file(str(checkpoint), tmp_path / "img.png", (10, 20), str(tmp_path / "m.png"), pokes=1)


def run_correlate(*args):
    return subprocess.run([sys.executable, "-m", "poke2video", "correlate", *map(str, args)],
                          capture_output=True, text=True)


@pytest.mark.slow
def test_correlate_command(checkpoint, tmp_path):
    Image.fromarray(texture(32, seed=5)).save(tmp_path / "img.png")
    common = ["--checkpoint", checkpoint, "--image", tmp_path / "img.png", "--pokes", 2]
    assert run_correlate(*common, "--at", 5, 6, "--out", tmp_path / "map.png").returncode == 0
    assert (tmp_path / "map.png").is_file()
    for extra, message in [(["--at", 40, 6, "--out", tmp_path / "a.png"], "outside"),
                           (["--at", 5, 6, "--out", tmp_path / "a.jpg"], ".png"),
                           (["--at", 5, 6, "--out", tmp_path / "no" / "a.png"], "does not exist")]:
        result = run_correlate(*common, *extra)
        assert result.returncode == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png", "map.png"]


# Images the figure is drawn over: a read-only photo (Pillow's arrays are) or a memory-mapped frame, at sizes
# shown unscaled (256 px and over) and enlarged (below).
@pytest.mark.parametrize("side", [255, 256, 512])
@pytest.mark.parametrize("kind", ["read-only", "memory-mapped"])
def test_the_figure_draws_over_an_image_it_does_not_own(tmp_path, side, kind):
    from poke2video.evaluate.sheets import correlation_figure, upscale

    image = np.ascontiguousarray(texture(side, seed=6))
    if kind == "read-only":
        image.setflags(write=False)
    else:
        np.save(tmp_path / "frame.npy", image)
        image = np.load(tmp_path / "frame.npy", mmap_mode="r")
    before = np.array(image)
    inverse_variance = np.random.default_rng(0).uniform(0.1, 1.0, (side, side))
    figure = correlation_figure(image, inverse_variance, (side // 2, side // 3))
    assert figure.dtype == np.uint8 and figure.shape[1] >= 2 * side
    np.testing.assert_array_equal(image, before)                     # drawn on a copy
    for factor in (1, 2):
        enlarged = upscale(image, factor)
        assert enlarged.flags.writeable and not np.shares_memory(enlarged, image)


def test_correlate_maps_a_256_px_jpeg(checkpoint, tmp_path):
    Image.fromarray(texture(256, seed=7)).save(tmp_path / "photo.jpg", quality=90)   # was: cv2.circle, "readonly"
    out = correlate_to_file(str(checkpoint), tmp_path / "photo.jpg", (128, 100), str(tmp_path / "map.png"), pokes=2)
    with Image.open(out) as figure:
        assert figure.size[0] > 2 * 256
