import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import moving_square_frames
from poke2video import metrics


def smooth_texture(size: int, seed: int = 0) -> np.ndarray:
    """uint8 [size, size, 3] blurred random texture (trackable by optical flow)."""
    rng = np.random.default_rng(seed)
    noise = rng.random((size, size, 3))
    blurred = ndimage.gaussian_filter(noise, sigma=(2, 2, 0), mode="wrap")
    blurred = (blurred - blurred.min()) / (blurred.max() - blurred.min())
    return (blurred * 255).astype(np.uint8)


def shifted_video(texture: np.ndarray, steps: int, dx: int, dy: int) -> np.ndarray:
    """uint8 [steps+1, H, W, 3]: the texture moved by (dx, dy) px per frame (wrapping)."""
    return np.stack([np.roll(texture, (t * dy, t * dx), axis=(0, 1)) for t in range(steps + 1)])


def noisy_copy(video: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = video.astype(np.float64) + rng.normal(0, sigma, video.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@pytest.fixture
def video():
    return np.stack([smooth_texture(32, seed) for seed in range(3)])  # [3, 32, 32, 3]


def test_identical_videos_give_capped_psnr_and_unit_ssim(video):
    assert metrics.psnr(video, video) == metrics.PSNR_CAP_DB
    assert metrics.ssim(video, video) == pytest.approx(1.0, abs=1e-12)


def test_psnr_of_known_noise_matches_skimage_and_theory(video):
    noisy = noisy_copy(video, sigma=10.0)
    expected = np.mean([peak_signal_noise_ratio(v, n, data_range=255) for v, n in zip(video, noisy)])
    assert metrics.psnr(noisy, video) == pytest.approx(expected, abs=1e-9)
    assert metrics.psnr(noisy, video) == pytest.approx(20 * np.log10(255 / 10), abs=0.3)


def test_psnr_of_constant_offset_is_exact():
    target = np.full((2, 8, 8, 3), 100, np.uint8)
    assert metrics.psnr(target + 5, target) == pytest.approx(10 * np.log10(255**2 / 25))


def test_ssim_matches_skimage(video):
    noisy = noisy_copy(video, sigma=25.0)
    expected = [
        structural_similarity(
            n, v, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        for n, v in zip(noisy, video)
    ]
    assert metrics.ssim_per_frame(noisy, video) == pytest.approx(expected, abs=1e-9)
    assert 0.0 < metrics.ssim(noisy, video) < 0.99


def test_metrics_reject_wrong_inputs(video):
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(video, video[:2])
    with pytest.raises(ValueError, match="uint8"):
        metrics.ssim(video.astype(np.float32), video.astype(np.float32))
    with pytest.raises(ValueError, match="at least 11"):
        metrics.ssim(video[:, :8, :8], video[:, :8, :8])


def test_to_uint8_video_maps_model_range():
    frames = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4).expand(2, 3, 1, 4)  # [T, 3, H, W]
    out = metrics.to_uint8_video(frames)
    assert out.shape == (2, 1, 4, 3) and out.dtype == np.uint8
    assert out[0, 0, :, 0].tolist() == [0, 128, 255, 255]


def test_track_point_recovers_known_shift():
    video = shifted_video(smooth_texture(48), steps=4, dx=2, dy=-1)
    positions = metrics.track_point(video, (20.0, 24.0))
    expected = np.array([[20 + 2 * t, 24 - t] for t in range(5)], np.float64)
    assert positions.shape == (5, 2)
    np.testing.assert_allclose(positions, expected, atol=0.5)


@pytest.mark.parametrize("speed", [(1, 0), (1, 1)])
def test_track_point_follows_a_small_part_over_a_still_background(speed):
    video = moving_square_frames(count=11, size=64, speed=speed, seed=2)  # 16 px square, centre (24, 32)
    last_xy = metrics.track_point(video, (24, 32))[-1]
    np.testing.assert_allclose(last_xy, [24 + 10 * speed[0], 32 + 10 * speed[1]], atol=0.5)


def test_poke_endpoint_error_is_distance_to_target():
    video = shifted_video(smooth_texture(48), steps=4, dx=2, dy=0)  # pixel at (20, 24) ends at (28, 24)
    assert metrics.poke_endpoint_error(video, (20, 24), (28, 24)) < 0.5
    assert metrics.poke_endpoint_error(video, (20, 24), (28, 30)) == pytest.approx(6.0, abs=0.5)


def test_motion_error_small_for_true_flow_large_for_wrong_flow():
    video = shifted_video(smooth_texture(48), steps=3, dx=1, dy=1)
    true_flow = np.stack([np.full((2, 48, 48), float(t), np.float32) for t in (1, 2, 3)])  # [3, 2, H, W]
    mask = np.zeros((48, 48), bool)
    mask[12:36, 12:36] = True
    assert metrics.motion_error(video, true_flow, mask) < 0.3
    assert metrics.motion_error(video, np.zeros_like(true_flow), mask) == pytest.approx(np.hypot(2, 2), abs=0.3)
    last_only = metrics.motion_error(video, true_flow[2:], mask, frame_indices=[3])
    assert last_only < 0.3
    with pytest.raises(ValueError, match="frame_indices"):
        metrics.motion_error(video, true_flow, mask, frame_indices=[1, 2, 4])


def test_motion_error_follows_a_part_moving_further_than_its_size():
    video = moving_square_frames(count=11, size=64, speed=(1, 1), seed=2)  # 16 px square moves 10 px
    mask = np.zeros((64, 64), bool)
    mask[26:38, 18:30] = True  # inside the square at frame 0 (x 16..31, y 24..39)
    true_flow = np.stack([np.full((2, 64, 64), float(t), np.float32) for t in range(1, 11)])  # [10, 2, H, W]
    assert metrics.motion_error(video, true_flow, mask) < 0.5
    assert metrics.motion_error(video, true_flow[-1:] * 0, mask, frame_indices=[10]) == pytest.approx(
        np.hypot(10, 10), abs=0.5
    )


def test_background_stillness():
    still = np.full((4, 8, 8, 3), 77, np.uint8)
    assert metrics.background_stillness(still) == 0.0
    changed = still.copy()
    changed[1:] += 51  # every later frame differs by 51 = 0.2 * 255
    assert metrics.background_stillness(changed) == pytest.approx(0.2)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(0).normal(3.0, 1.0, 200)
    first = metrics.bootstrap_interval(values, seed=5)
    assert first == metrics.bootstrap_interval(values, seed=5)
    assert first.low < first.mean < first.high
    assert first.high - first.low == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.25)
    constant = metrics.bootstrap_interval([2.0] * 10)
    assert (constant.low, constant.mean, constant.high) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="finite"):
        metrics.bootstrap_interval([1.0, float("nan")])
