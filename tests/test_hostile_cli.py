"""Hostile but ordinary input to the command line: outputs that cannot be written, folders that link back
into themselves, weights files built to hurt, images the commands cannot handle, FIFOs and coordinates just
outside the image. Each is one line on stderr and exit status 2 (a loop: a note, and each file read once),
with nothing half-written left behind."""
import errno
import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app_support import TINY, hostile_checkpoint, tiny_checkpoint
from conftest import moving_square_frames, write_video
from test_fuzz_cli import PROGRESS, run
from test_fuzz_images import png_header
from poke2video import export
from poke2video.data.layouts import find_videos
from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video.fsutil import atomic_path
from poke2video.poker import check_point, load_image

LONG = "x" * 300                                 # longer than any file name the OS takes (255 bytes)


def error_lines(err: str) -> list[str]:
    return [line for line in err.replace("\r", "\n").splitlines() if line.strip() and not PROGRESS.search(line)]


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


class Hung(BaseException):
    """Raised in a block that ran too long (a BaseException: no `except Exception` or `except OSError` hides it)."""


@contextmanager
def deadline(seconds: int):
    """Fail, instead of hanging the suite, when the block runs longer than `seconds`."""
    def expire(*_):
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused(argv: list[str], root: Path, *words: str) -> str:
    """Run `argv` in `root`: exit 2, one stderr line naming each of `words`, no file added or removed."""
    before = listing(root)
    code, _, err = run(argv, root)
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1, (code, err)
    assert lines[0].startswith(f"poke2video {argv[0]}: error: ") and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    assert listing(root) == before, "something was written or removed"
    return lines[0]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    tiny_checkpoint(root / "tiny.safetensors")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (10, 20, 3), dtype=np.uint8)).save(root / "img.png")
    (root / "afile").write_text("a plain file")
    (root / "dir.mp4").mkdir()
    (root / "dir.png").mkdir()
    (root / "dir").mkdir()
    write_video(root / "vids" / "a.mp4", moving_square_frames(count=8, size=32))
    return root


# Commands that write: argv up to --out, and the suffix their output takes.
WRITERS = {
    "poke": (["poke", "--checkpoint", "tiny.safetensors", "--image", "img.png", "--source", "1", "1", "--target",
              "3", "3"], ".mp4"),
    "correlate": (["correlate", "--checkpoint", "tiny.safetensors", "--image", "img.png", "--at", "3", "3",
                   "--pokes", "2"], ".png"),
    "demo": (["demo", "--checkpoint", "tiny.safetensors"], ""),
    "simulate": (["simulate", "--clips", "1", "--res", "32"], ""),
    "prepare": (["prepare", "vids", "--res", "32", "--clip-length", "4"], ""),
    "merge": (["merge", "vids"], ""),
    "train": (["train", "--data", "vids", "--steps", "1"], ""),
    "evaluate": (["evaluate", "--checkpoint", "tiny.safetensors", "--data", "vids", "--lpips", "off", "--no-fvd"], ""),
}


def args_for(command: str, root: Path, image=None, checkpoint=None) -> list[str]:
    """WRITERS' argv for `command` (without --out), the fixture's files as absolute paths or those given."""
    swap = {"tiny.safetensors": str(checkpoint or root / "tiny.safetensors"), "img.png": str(image or root / "img.png")}
    return [swap.get(a, a) for a in WRITERS[command][0]]


BAD_OUTPUTS = {                                  # out (with {s}: the suffix) -> what the line says
    "under a plain file": ("afile/sub{s}", "afile is a file, not a folder"),
    "a name the OS refuses": (LONG + "{s}", "file name too long"),
    "a folder that takes no files": ("/proc/p2v-out{s}", "folder /proc does not take new files"),
    "something else in the way": ("dir{s}", None),
}


@pytest.mark.parametrize("case", list(BAD_OUTPUTS))
@pytest.mark.parametrize("command", list(WRITERS))
def test_an_output_that_cannot_be_written_is_one_line(root, command, case):
    argv, suffix = WRITERS[command]
    out, why = BAD_OUTPUTS[case]
    out = out.format(s=suffix)
    if out.startswith("/proc") and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    if case == "something else in the way":      # a folder where a file goes, a file where a folder goes
        out, why = (out, "it is a folder") if suffix else ("afile", "it exists and is not a folder")
    refused([*argv, "--out", out], root, f"cannot write {out}: {why}")


def test_a_folder_in_the_way_of_one_demo_file_stops_it_before_any_file(root, tmp_path):
    (tmp_path / "demo" / "contact_sheet.png").mkdir(parents=True)
    line = refused(["demo", "--checkpoint", str(root / "tiny.safetensors"), "--out", "demo"], tmp_path)
    assert "contact_sheet.png: it is a folder" in line


def test_atomic_path_names_the_output_the_os_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserError, match="cannot write .*taken: is a directory"):
        with atomic_path(tmp_path / "taken") as tmp:
            tmp.write_text("x")
    assert listing(tmp_path) == ["taken"]        # the temporary is gone too


def test_a_failure_while_encoding_names_the_output(root, monkeypatch, tmp_path):
    def broken_disk(path, video, fps, *options):
        Path(path).write_bytes(b"half")
        raise OSError(errno.EIO, "Input/output error")  # what PyAV raises: no file name

    monkeypatch.setattr(export, "_write_mp4", broken_disk)
    refused([*args_for("poke", root), "--out", "v.mp4"], tmp_path, "cannot write v.mp4: input/output error")


def test_any_other_os_error_is_one_line(root, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "locked.safetensors")

    monkeypatch.setattr("poke2video.poker.Poker.load", denied)
    refused([*WRITERS["poke"][0], "--out", "never.mp4"], root, "locked.safetensors: permission denied")


# Folder walks -----------------------------------------------------------------------------------------

def looping_folder(folder: Path) -> Path:
    """a.mp4 and b.mp4, a link to itself, two links back up to it from below, and a second name for a.mp4."""
    (folder / "sub").mkdir(parents=True)
    for name, seed in (("a.mp4", 0), ("b.mp4", 1)):
        write_video(folder / name, moving_square_frames(count=8, size=32, seed=seed, speed=(1, seed)))
    (folder / "sub" / "deeper").mkdir()
    os.symlink(".", folder / "self")
    os.symlink("..", folder / "sub" / "up")
    os.symlink("../..", folder / "sub" / "deeper" / "top")
    os.symlink("../a.mp4", folder / "sub" / "again.mp4")
    return folder


def test_a_folder_walk_reads_each_real_file_once_and_names_each_loop(tmp_path, capsys):
    folder = looping_folder(tmp_path / "in")
    with deadline(20):                           # the links made the old walk exponential
        found = find_videos(folder)
    assert found == [folder / "a.mp4", folder / "b.mp4"]
    notes = capsys.readouterr().err.splitlines()
    assert len(notes) == 4, notes                # self, up, top (loops) and again.mp4 (the same file)
    for link in ("self", "sub/up", "sub/deeper/top", "sub/again.mp4"):
        assert sum(f"{folder / link}:" in note for note in notes) == 1, notes
    assert sum("(a loop)" in note for note in notes) == 3, notes


def test_prepare_on_a_looping_folder_puts_each_video_on_one_side(tmp_path):
    looping_folder(tmp_path / "in")
    with deadline(120):
        code, _, err = run(["prepare", "in", "in/a.mp4", "--out", "d", "--res", "32", "--clip-length", "4"], tmp_path)
    assert code == 0, err
    store = Store.open(tmp_path / "d")
    assert [v["name"] for v in store.videos] == ["in/a.mp4", "in/b.mp4"]
    sides = [{segment[0] for segment in store.manifest["splits"][split]} for split in ("train", "test")]
    assert not sides[0] & sides[1] and sides[0] | sides[1] == {0, 1}
    assert len([line for line in error_lines(err) if "poke2video prepare: " in line]) == 5  # 3 loops, 2 repeats


# Weights files built to hurt ----------------------------------------------------------------------------

def tiny_config(**changes) -> str:
    return json.dumps({**TINY.to_dict(), **changes})


HOSTILE = {
    "config not a mapping": ("[1, 2]", "{}", "not an object"),
    "config nested thousands deep": ("[" * 5000 + "]" * 5000, "{}", "not JSON"),
    "metadata not a mapping": (tiny_config(), '"text"', "not an object"),
    "metadata nested thousands deep": (tiny_config(), '{"a":' * 5000 + "1" + "}" * 5000, "not JSON"),
    "frames far beyond": (tiny_config(frames=10**9), "{}", "model.frames must be between 1 and 64"),
    "resolution far beyond": (tiny_config(resolution=2**20), "{}", "model.resolution must be between 8 and 1024"),
    "channels that would take tens of GiB": (tiny_config(stem_channels=4096, bottleneck_channels=4096),
                                             "{}", "where the config needs [4096"),
    "a step that is not a number": (tiny_config(), '{"step": "many"}', "step must be an integer"),
    "a megabyte of config": (tiny_config(name="x" * 2**20), "{}", "at most 65,536"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("command", ["poke", "demo"])
def test_a_weights_file_built_to_hurt_is_one_line(root, tmp_path, command, case):
    config, metadata, words = HOSTILE[case]
    checkpoint = hostile_checkpoint(tmp_path / "hostile.safetensors", config, metadata)
    out = "demo" if command == "demo" else "v.mp4"
    with deadline(60):                           # was: a poke of 10**9 frames, never ending
        refused([*args_for(command, root, checkpoint=checkpoint), "--out", out], tmp_path, str(checkpoint), words)


def test_the_app_refuses_a_weights_file_built_to_hurt_before_serving(tmp_path, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the app started serving"))
    checkpoint = hostile_checkpoint(tmp_path / "hostile.safetensors", tiny_config(frames=10**6))
    refused(["app", "--checkpoint", str(checkpoint), "--port", "1"], tmp_path, "model.frames")


# Images the commands cannot handle -------------------------------------------------------------------

def test_an_image_declaring_12000_by_12000_is_refused_before_decoding(root, tmp_path):
    (tmp_path / "big.png").write_bytes(png_header(12000, 12000))
    started = time.monotonic()
    for command in ("poke", "correlate"):
        refused([*args_for(command, root, image="big.png"), "--out", "o" + WRITERS[command][1]], tmp_path,
                "big.png: 12000x12000 pixels", "limit of 40 million")
    assert time.monotonic() - started < 20       # was: out of memory after 14 s


@pytest.mark.parametrize("suffix, limit", [(".mp4", 16384), (".gif", 65535)])
def test_a_very_wide_image_is_one_line_not_an_encoder_traceback(root, tmp_path, suffix, limit):
    Image.new("RGB", (100000, 1), (200, 10, 10)).save(tmp_path / "wide.png")
    argv = args_for("poke", root, image="wide.png")
    argv[argv.index("--source") + 2] = argv[argv.index("--target") + 2] = "0"
    refused([*argv, "--out", "o" + suffix], tmp_path, "100000x1", f"at most {limit} pixels a side")


@pytest.mark.parametrize("size", [(100000, 1), (20000, 20), (20, 16384)])
def test_correlate_refuses_an_image_too_wide_to_track(root, tmp_path, size):
    """Its tracker follows the frames enlarged twice (farneback-fine): 16383 pixels a side, not OpenCV's 32766;
    a 20000x20 image crashed in cv2.remap after all the pokes ran."""
    Image.new("RGB", size, (200, 10, 10)).save(tmp_path / "wide.png")
    argv = args_for("correlate", root, image="wide.png")
    argv[argv.index("--at") + 2] = "0"
    started = time.monotonic()
    refused([*argv, "--out", "map.png"], tmp_path, f"wide.png: {size[0]}x{size[1]} pixels",
            "at most 16383 pixels a side")
    assert time.monotonic() - started < 20       # refused from the header, before the model runs


def test_a_fifo_given_as_a_file_to_read_is_refused_at_once(root, tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    runs = [[*args_for(command, root, image="pipe.png"), "--out", "o" + WRITERS[command][1]]
            for command in ("poke", "correlate")]
    runs += [[*args_for("poke", root, checkpoint="pipe.png"), "--out", "o.mp4"],
             ["train", "--data", str(root / "vids"), "--vgg-weights", "pipe.png", "--out", "run"]]
    for argv in runs:
        with deadline(30):                       # was: blocked forever, waiting for a writer
            refused(argv, tmp_path, "pipe.png: a named pipe (FIFO), not a file")
    (tmp_path / "pipe.png").unlink()
    Image.new("RGB", (4, 4)).save(tmp_path / "pipe.png")
    os.mkfifo(tmp_path / "link.png")             # the one image reader refuses it too, for library callers
    with pytest.raises(UserError, match="link.png: a named pipe"), deadline(30):
        load_image(tmp_path / "link.png")


def gradient_image(mode: str, fmt: str, path: Path) -> Path:
    """A 16 x 16 gradient of `mode` saved as `fmt`: 16-bit, float, palette, CMYK, ... (not all of them 8-bit)."""
    ramp = np.linspace(0, 1, 256).reshape(16, 16)
    if mode.startswith("I"):
        image = Image.fromarray(np.round(ramp * 65535).astype(np.uint16))          # I;16
        image = image if mode == "I;16" else image.convert(mode)
    elif mode == "F":
        image = Image.fromarray(ramp.astype(np.float32), "F")
    else:
        rgb = np.stack([ramp, ramp[::-1], ramp.T], axis=-1)
        image = Image.fromarray(np.round(rgb * 255).astype(np.uint8)).convert(mode)
    if fmt == "JPEG-EXIF":                       # stored on its side, shown upright (orientation 6)
        exif = Image.Exif()
        exif[0x0112] = 6
        image.transpose(Image.Transpose.ROTATE_90).save(path, "JPEG", exif=exif, quality=95)
    else:
        image.save(path, fmt)
    return path


@pytest.mark.parametrize("mode, fmt", [("I;16", "PNG"), ("I;16", "TIFF"), ("I", "TIFF"), ("F", "TIFF"),
                                       ("CMYK", "JPEG"), ("P", "PNG"), ("LA", "PNG"), ("1", "PNG"), ("RGBA", "PNG"),
                                       ("RGB", "JPEG-EXIF")])
def test_every_command_reads_an_image_the_same_way(tmp_path, mode, fmt):
    from poke2video.app.images import Limits, decode_upload
    from poke2video.data.video import Sampling, read_frames
    from poke2video.poker import load_image

    folder = tmp_path / "frames"
    folder.mkdir()
    path = gradient_image(mode, fmt, folder / f"frame0.{'jpg' if 'JPEG' in fmt else fmt.lower()}")
    poked = load_image(path)                                           # poke, correlate
    uploaded = decode_upload(path.read_bytes(), Limits())              # the app
    prepared = read_frames(folder, Sampling(16))[0]                    # prepare's image folders
    assert np.array_equal(poked, uploaded) and np.array_equal(poked, prepared)
    if mode in ("I;16", "I", "F"):               # 16-bit and float gray: a ramp from black to white, not all white
        assert poked[0, 0, 0] == 0 and poked[-1, -1, 0] == 255 and abs(poked.mean() - 127.5) < 2
    if fmt == "JPEG-EXIF":                       # upright: red grows downwards (stored, it grows to the right)
        assert poked[-1, 0, 0] > poked[0, 0, 0] + 100


def test_a_target_just_outside_says_exactly_where_it_is(root, tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "square.png")
    with pytest.raises(UserError) as caught:
        check_point("target", (63.0000001, 0), 64, 64)
    assert str(caught.value) == "target (63.0000001, 0) is outside the 64x64 image (x from 0 to 63, y from 0 to 63)"
    argv = args_for("poke", root, image="square.png")
    argv[argv.index("--target") + 1] = "63.0000001"
    refused([*argv, "--out", "o.mp4"], tmp_path, "(63.0000001, 3) is outside")
    check_point("target", (63.0, 0), 64, 64)     # the last pixel itself is inside


def test_the_bounds_keep_every_preset_loadable():
    from poke2video.preset import load_preset

    for name in ("cpu-64", "cpu-64-pins", "cpu-64-video", "paper-64", "paper-128"):
        load_preset(name)
