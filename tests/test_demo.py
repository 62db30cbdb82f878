"""`poke2video demo` end to end on a tiny model: files, frame counts, the contact sheet, the missing-model line."""
import subprocess
import sys

import av
import numpy as np
import pytest
from PIL import Image

from app_support import T, tiny_checkpoint
from poke2video import cli, demo
from poke2video import poker as poker_module
from poke2video.sim.examples import EXAMPLE_SPECS, example_scenes

NAMES = [spec[0] for spec in EXAMPLE_SPECS]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors")


def test_example_scenes_are_the_simulators_own():
    scenes = example_scenes(64)
    assert [s.name for s in scenes] == NAMES and {s.kind for s in scenes} == {"plant", "figure"}
    assert [s.background for s in scenes].count(True) == 1
    for scene in scenes:
        assert scene.frames.shape == (11, 64, 64, 3) and scene.frames.dtype == np.uint8
        assert all(0 <= v <= 63 for v in scene.source + scene.target)
        moved = np.abs(scene.frames[-1].astype(int) - scene.frames[0]).max()
        assert (moved == 0) == scene.background                  # only object pokes move anything
        if not scene.background:
            assert np.hypot(*np.subtract(scene.target, scene.source)) > 3     # clear motion to show
    assert np.array_equal(example_scenes(64)[0].frames, scenes[0].frames)


def test_true_frames_line_up_with_the_models():
    assert demo.true_frame_indices(10, 10) == list(range(1, 11))
    assert demo.true_frame_indices(3, 10) == [3, 7, 10]


@pytest.mark.slow
def test_demo_command_writes_videos_and_a_contact_sheet(checkpoint, tmp_path):
    out = tmp_path / "nested" / "demo"
    result = subprocess.run([sys.executable, "-m", "poke2video", "demo", "--out", str(out),
                             "--checkpoint", str(checkpoint)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert str(out / "contact_sheet.png") in result.stdout and "poke2video app" in result.stdout
    assert "demo" in result.stderr                                  # the progress bar
    expected = {f"{n}{s}" for n in NAMES for s in (".mp4", ".gif")} | {"contact_sheet.png"}
    assert {p.name for p in out.iterdir()} == expected             # nothing half-written left beside them
    size = 64 * demo.DISPLAY_SCALE
    with av.open(str(out / "willow.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == T + 1 and frames[0].shape == (size, size, 3)
    with Image.open(out / "background.gif") as gif:
        assert gif.n_frames == T + 1 and gif.size == (size, size)
    with Image.open(out / "contact_sheet.png") as sheet:
        tile = 64 * demo.SHEET_SCALE
        assert sheet.size == (demo.LABEL_WIDTH + (T + 1) * tile,
                              demo.HEADER_HEIGHT + len(NAMES) * (2 * tile + 4))


def test_demo_poke_arrow_is_drawn(checkpoint, tmp_path):
    written = demo.run_demo(str(tmp_path), checkpoint=str(checkpoint))
    with av.open(str(written["videos"][0])) as container:
        first = next(iter(container.decode(video=0))).to_ndarray(format="rgb24").astype(int)
    scene = example_scenes(64)[0]
    image = scene.image.repeat(demo.DISPLAY_SCALE, 0).repeat(demo.DISPLAY_SCALE, 1).astype(int)
    changed = np.abs(first - image).sum(-1) > 120
    x, y = (int((v + 0.5) * demo.DISPLAY_SCALE) for v in np.add(scene.source, scene.target) / 2)
    assert changed[y - 3:y + 4, x - 3:x + 4].any()                # the arrow's middle
    assert changed.mean() < 0.05                                   # and not much else


def test_demo_uses_the_bundled_model_by_default(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(poker_module, "DEFAULT_WEIGHTS", checkpoint)
    assert len(demo.run_demo(str(tmp_path))["videos"]) == 2 * len(NAMES)


def test_without_bundled_weights_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(poker_module, "DEFAULT_WEIGHTS", tmp_path / "missing.safetensors")
    assert cli.main(["demo", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no bundled model" in err[0] and "--checkpoint" in err[0]
    assert not (tmp_path / "out").exists()


def test_out_must_be_a_folder(checkpoint, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert cli.main(["demo", "--out", str(tmp_path / "file"), "--checkpoint", str(checkpoint)]) == 2
    assert "not a folder" in capsys.readouterr().err
