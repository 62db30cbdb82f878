import numpy as np
import pytest
from scipy import ndimage

from poke2video import metrics
from poke2video.errors import UserError
from poke2video.evaluate import baselines


def texture(size: int = 32, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).random((size, size, 3))
    smooth = ndimage.gaussian_filter(noise, sigma=(1.5, 1.5, 0))
    return ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)


def test_static_repeats_the_source_frame():
    frame = texture()
    video = baselines.get_baseline("static")(frame, (10, 12), (14, 12), 5)
    assert video.shape == (5, 32, 32, 3) and video.dtype == np.uint8
    assert all(np.array_equal(f, frame) for f in video)


def test_warp_carries_the_poked_pixel_to_the_target_over_time():
    frame = texture()
    source, target = (12, 14), (16, 12)  # poke (4, -2)
    video = baselines.get_baseline("warp")(frame, source, target, 4)
    assert video.shape == (4, 32, 32, 3) and video.dtype == np.uint8
    for t, (x, y) in ((2, (14, 13)), (4, (16, 12))):  # halfway and full poke land on whole pixels
        np.testing.assert_allclose(video[t - 1, y, x].astype(int), frame[source[1], source[0]].astype(int), atol=1)
    assert not np.array_equal(video[0], video[3])
    np.testing.assert_array_equal(video[3, 30:, 30:], frame[30:, 30:])  # far corner stays still


def test_warp_without_poke_is_static():
    frame = texture()
    video = baselines.get_baseline("warp")(frame, (10, 10), (10, 10), 3)
    assert all(np.array_equal(f, frame) for f in video)


def test_long_poke_still_lands_on_target():
    frame = texture(48)
    video = baselines.WarpBaseline()(frame, (10, 24), (34, 24), 3)  # 24 px poke: sigma widens to 20 px
    np.testing.assert_allclose(video[-1, 24, 34].astype(int), frame[24, 10].astype(int), atol=1)


def test_warp_beats_static_on_poke_endpoint_error():
    frame = texture(48, seed=3)
    source, target = (20, 24), (25, 24)
    errors = {}
    for name in ("static", "warp"):
        video = baselines.get_baseline(name)(frame, source, target, 5)
        errors[name] = metrics.poke_endpoint_error(np.concatenate([frame[None], video]), source, target)
    assert errors["static"] == pytest.approx(5.0, abs=0.5)
    assert errors["warp"] < 1.5


def test_unknown_baseline_names_the_option():
    with pytest.raises(UserError, match="--baselines"):
        baselines.get_baseline("nearest")
