import urllib.error

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from poke2video.errors import WeightsUnavailable
from poke2video.evaluate import fvd
from poke2video.pretrained.i3d import load_i3d


class TinyI3D(nn.Module):
    """Stand-in with the port's call signature; checks the clip layout it is given."""

    def __init__(self):
        super().__init__()
        self.project = nn.Linear(3 * 16, 400)

    def forward(
        self, videos: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False
    ) -> torch.Tensor:
        assert videos.shape[1:] == (3, 16, 224, 224), "expected [B, 3, 16, 224, 224]"
        assert not rescale and not resize and return_features, "expected prepared clips, features out"
        assert bool(videos.min() >= -1.0) and bool(videos.max() <= 1.0), "expected values in [-1, 1]"
        return self.project(videos.mean(dim=(3, 4)).flatten(1))


@pytest.fixture
def i3d_file(tmp_path):
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning):
        scripted = torch.jit.script(TinyI3D())
    path = tmp_path / "i3d_torchscript.pt"
    scripted.save(str(path))
    return path


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    rng = np.random.default_rng(0)
    mean_a, mean_b = rng.normal(size=6), rng.normal(size=6)
    var_a, var_b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((mean_a - mean_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))
    assert fvd.frechet_distance(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(expected, rel=1e-10)
    assert fvd.frechet_distance(mean_a, np.diag(var_a), mean_a, np.diag(var_a)) == pytest.approx(0.0, abs=1e-10)


def test_frechet_distance_of_full_covariances_matches_scipy_sqrtm():
    rng = np.random.default_rng(1)
    factor_a, factor_b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    cov_a, cov_b = factor_a @ factor_a.T, factor_b @ factor_b.T
    mean_a, mean_b = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real)
    assert fvd.frechet_distance(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected, rel=1e-8)


def test_gaussian_stats_needs_two_samples():
    mean, cov = fvd.gaussian_stats(np.array([[0.0, 1.0], [2.0, 3.0]]))
    np.testing.assert_allclose(mean, [1.0, 2.0])
    np.testing.assert_allclose(cov, [[2.0, 2.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match="N >= 2"):
        fvd.gaussian_stats(np.zeros((1, 3)))


def test_prepare_clips_stretches_time_and_resizes():
    video = np.stack([np.full((8, 8, 3), 20 * t, np.uint8) for t in range(11)])[None]  # [1, 11, 8, 8, 3]
    clips = fvd.prepare_clips(video)
    assert clips.shape == (1, 3, 16, 224, 224)
    frame_values = clips[0, 0, :, 100, 100]  # one pixel over time
    expected = torch.tensor([(20 * ((i * 11) // 16)) / 127.5 - 1 for i in range(16)])
    torch.testing.assert_close(frame_values, expected)


def test_fvd_through_the_torchscript_loading_path(i3d_file):
    model = load_i3d(i3d_file)
    rng = np.random.default_rng(0)
    videos_a = rng.integers(0, 128, (4, 11, 16, 16, 3), dtype=np.uint8)
    videos_b = rng.integers(100, 256, (4, 11, 16, 16, 3), dtype=np.uint8)
    assert fvd.fvd(videos_a, videos_a, model, batch=3) == pytest.approx(0.0, abs=1e-6)
    features_a = fvd.i3d_features(videos_a, model, batch=3)
    features_b = fvd.i3d_features(videos_b, model, batch=3)
    assert features_a.shape == (4, 400)
    expected = fvd.frechet_distance(*fvd.gaussian_stats(features_a), *fvd.gaussian_stats(features_b))
    assert fvd.fvd(videos_a, videos_b, model, batch=2) == pytest.approx(expected, rel=1e-6)
    assert expected > 0


def test_missing_or_corrupt_i3d_names_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailable, match="--i3d-weights PATH"):
        load_i3d()
    corrupt = tmp_path / "broken.pt"
    corrupt.write_bytes(b"\x00" * 10)
    with pytest.raises(WeightsUnavailable, match="--i3d-weights"):
        load_i3d(corrupt)
