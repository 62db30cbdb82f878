"""Video files: mp4 and gif written atomically and readable back; the poke overlay draws where it should."""
import av
import numpy as np
import pytest
from PIL import Image

from poke2video.errors import UserError
from poke2video.export import draw_poke_overlay, write_video


def gradient_video(frames=5, height=32, width=48) -> np.ndarray:
    ys, xs = np.mgrid[:height, :width]
    video = np.stack([np.stack([xs * 4 + t * 8, ys * 6, np.full_like(xs, 100)], -1) for t in range(frames)])
    return video.clip(0, 255).astype(np.uint8)


def read_mp4(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_mp4_round_trip(tmp_path):
    video = gradient_video()
    path = write_video(tmp_path / "v.mp4", video)
    back = read_mp4(path)
    assert back.shape == video.shape
    assert np.abs(back.astype(int) - video).mean() < 4
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_mp4_odd_size_is_padded_to_even(tmp_path):
    back = read_mp4(write_video(tmp_path / "odd.mp4", gradient_video(height=31, width=45)))
    assert back.shape == (5, 32, 46, 3)


def test_gif_round_trip(tmp_path):
    video = np.zeros((4, 20, 30, 3), np.uint8)
    for t in range(4):
        video[t, :, t * 5:t * 5 + 5] = (255, 0, 0)
    path = write_video(tmp_path / "v.gif", video)
    with Image.open(path) as gif:
        assert gif.n_frames == 4
        gif.seek(2)
        frame = np.asarray(gif.convert("RGB"))
    assert np.array_equal(frame, video[2])


def test_bad_suffix_or_folder_writes_nothing(tmp_path):
    with pytest.raises(UserError, match=r"\.mp4 or \.gif"):
        write_video(tmp_path / "v.avi", gradient_video())
    with pytest.raises(UserError, match="does not exist"):
        write_video(tmp_path / "missing" / "v.mp4", gradient_video())
    assert not list(tmp_path.iterdir())


def test_overlay_draws_arrow_and_target_dot_only_near_the_poke():
    video = np.full((3, 64, 64, 3), 128, np.uint8)
    drawn = draw_poke_overlay(video, source_xy=(10, 32), target_xy=(50, 32))
    assert np.array_equal(video, np.full_like(video, 128))            # input untouched
    changed = np.abs(drawn.astype(int) - video).sum(-1) > 30          # [T, H, W]
    assert changed[:, 32, 20:40].all()                                # along the arrow's shaft
    assert changed[:, 30:35, 48:53].all()                             # the target dot
    assert not changed[:, :20].any() and not changed[:, 45:].any()    # nothing far away
    assert np.array_equal(drawn[0], drawn[2])
    assert (drawn[:, 32, 50] == (40, 220, 255)).all()                 # dot colour at the target
