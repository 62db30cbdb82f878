"""Poker and `poke2video poke` end to end on tiny models: shapes, coordinate scaling, inputs, errors."""
import dataclasses
import subprocess
from pathlib import Path
import sys

import av
import numpy as np
import pytest
import torch
from PIL import Image

from poke2video import poker as poker_module
from poke2video.errors import UserError
from poke2video.families import model_config_from_dict
from poke2video.flow_config import FlowModelConfig
from poke2video.gru_config import GRUModelConfig
from poke2video.model import PokeModel, build_model, save_model
from poke2video.poker import Poker, load_image, weights_path

torch.set_num_threads(1)
TINY = GRUModelConfig(resolution=16, stem_channels=4, channels=[4, 4], bottleneck_channels=4, levels=2, frames=3)


class RecordingModel(PokeModel):
    """Returns the source frame T times and remembers the poke map it was given."""

    def forward(self, source_frame, poke_map, steps=None, poke=None):
        self.poke_map = poke_map.clone()
        return source_frame[:, None].repeat(1, steps, 1, 1, 1), []


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_model(path, PokeModel(TINY), {"step": 1})
    return path


def smooth_image(height, width) -> np.ndarray:
    ys, xs = np.mgrid[:height, :width]
    return np.stack([xs * 255 // width, ys * 255 // height, np.full_like(xs, 90)], -1).astype(np.uint8)


def test_animate_shapes_and_dtype(checkpoint):
    poker = Poker.load(checkpoint)
    video = poker.animate(smooth_image(24, 40), source=(5, 6), target=(9, 3))
    assert video.shape == (3, 24, 40, 3) and video.dtype == np.uint8
    small = poker.animate(smooth_image(24, 40), source=(5, 6), target=(9, 3), output_size="model")
    assert small.shape == (3, 16, 16, 3)
    assert poker.metadata == {"step": 1}


def test_coordinates_are_scaled_both_ways():
    poker = Poker(RecordingModel(TINY))
    image = smooth_image(32, 64)                          # W = 4 x 16, H = 2 x 16
    video = poker.animate(image, source=(41.5, 9.5), target=(49.5, 5.5))
    poke_map = poker.model.poke_map[0].numpy()            # [2, 16, 16]
    ys, xs = np.nonzero(poke_map[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (9, 11, 3, 5)   # centre (41.5+.5)/4-.5, (9.5+.5)/2-.5
    assert np.allclose(poke_map[0, ys, xs], 8 / 4) and np.allclose(poke_map[1, ys, xs], -4 / 2)
    assert video.shape == (3, 32, 64, 3)
    assert np.abs(video[0].astype(int) - image).mean() < 6   # identity model: the image comes back


def test_impulse_checkpoints_get_direction_and_strength():
    poker = Poker(RecordingModel(TINY), {"impulse_scale": 1.0})
    poker.animate(smooth_image(16, 16), source=(8, 8), target=(8, 9.5))   # length 1.5 < scale * T = 3
    assert np.allclose(poker.model.poke_map[0, :, 8, 8].numpy(), [0.0, 0.5])
    poker.animate(smooth_image(16, 16), source=(0, 8), target=(12, 8))    # strength capped at 1
    assert np.allclose(poker.model.poke_map[0, :, 8, 0].numpy(), [1.0, 0.0])


def test_modes_follow_the_checkpoint():
    assert Poker(RecordingModel(TINY), {"impulse_scale": None}).modes == ("displacement",)
    with pytest.raises(UserError, match="not available"):
        Poker(RecordingModel(TINY), {}).animate(smooth_image(16, 16), (8, 8), (8, 10), mode="impulse")
    poker = Poker(RecordingModel(TINY), {"impulse_scale": 1.0})
    assert poker.modes == ("impulse", "displacement")
    poker.animate(smooth_image(16, 16), source=(8, 8), target=(8, 14), mode="displacement")   # the drag as is
    assert np.allclose(poker.model.poke_map[0, :, 8, 8].numpy(), [0.0, 6.0])
    with pytest.raises(UserError, match="mode 'sideways' is not available"):
        poker.animate(smooth_image(16, 16), (8, 8), (8, 10), mode="sideways")


def test_image_kinds_give_the_same_video(checkpoint, tmp_path):
    poker = Poker.load(checkpoint)
    gray = smooth_image(16, 16)[..., 0]
    rgb = np.repeat(gray[..., None], 3, axis=2)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    rgba = np.concatenate([rgb, np.full_like(gray, 7)[..., None]], -1)
    reference = poker.animate(rgb, (3, 4), (6, 4))
    for image in (gray, gray[..., None], rgba, Image.fromarray(rgb), tmp_path / "gray.png", str(tmp_path / "gray.png"),
                  rgb.astype(np.float32) / 255):
        assert np.array_equal(poker.animate(image, (3, 4), (6, 4)), reference)


@pytest.mark.parametrize("source, target, message", [
    ((16, 3), (4, 4), "source .* outside"), ((3, 3), (-1, 4), "target .* outside"),
    ((float("nan"), 3), (4, 4), "finite"), ((3, 3), (4, float("inf")), "finite"), ((3,), (4, 4), "two numbers")])
def test_bad_pokes(checkpoint, source, target, message):
    with pytest.raises(UserError, match=message):
        Poker.load(checkpoint).animate(smooth_image(16, 16), source, target)


def test_bad_images(checkpoint, tmp_path):
    poker = Poker.load(checkpoint)
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="junk.png"):
        poker.animate(tmp_path / "junk.png", (1, 1), (2, 2))
    with pytest.raises(UserError, match="cannot read image"):
        poker.animate(tmp_path / "missing.png", (1, 1), (2, 2))
    with pytest.raises(UserError, match="empty"):
        load_image(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(UserError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_no_bundled_model_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr(poker_module, "DEFAULT_WEIGHTS", tmp_path / "default.safetensors")
    with pytest.raises(UserError, match="poke2video train"):
        Poker.load(None)
    with pytest.raises(UserError, match=r"no bundled from-video model \(.*from_video.safetensors is missing"):
        Poker.load("from-video")


def test_a_bundled_model_s_name_reads_its_file_unless_a_file_of_that_name_is_there(monkeypatch, tmp_path):
    monkeypatch.setattr(poker_module, "DEFAULT_WEIGHTS", tmp_path / "weights" / "default.safetensors")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "default.safetensors").write_bytes(b"x")
    assert weights_path(None) == weights_path("default") == tmp_path / "weights" / "default.safetensors"
    (tmp_path / "weights" / "from_video.safetensors").write_bytes(b"x")
    assert weights_path("from-video") == tmp_path / "weights" / "from_video.safetensors"
    (tmp_path / "from-video").write_bytes(b"y")                 # a file of that name here: the user's own
    assert weights_path("from-video") == Path("from-video")
    assert weights_path("runs/a/model.safetensors") == Path("runs/a/model.safetensors")
    with pytest.raises(UserError, match=r"not found: from-videoo \(a weights file, or a bundled model: default, "):
        weights_path("from-videoo")                             # a mistyped name: the names it could be


def run_poke(*args):
    return subprocess.run([sys.executable, "-m", "poke2video", "poke", *map(str, args)],
                          capture_output=True, text=True)


@pytest.mark.slow
def test_poke_command_writes_mp4_and_gif(checkpoint, tmp_path):
    Image.fromarray(smooth_image(20, 30)).save(tmp_path / "img.png")
    common = ["--checkpoint", checkpoint, "--image", tmp_path / "img.png", "--source", 4, 5, "--target", 9, 8]
    result = run_poke(*common, "--out", tmp_path / "poke.mp4", "--overlay")
    assert result.returncode == 0, result.stderr
    with av.open(str(tmp_path / "poke.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == TINY.frames + 1 and frames[0].shape == (20, 30, 3)
    assert run_poke(*common, "--out", tmp_path / "poke.gif").returncode == 0
    with Image.open(tmp_path / "poke.gif") as gif:
        assert gif.n_frames == TINY.frames + 1 and gif.size == (30, 20)
        first = np.asarray(gif.convert("RGB")).astype(int)
    assert np.abs(first - smooth_image(20, 30)).mean() < 8      # the image itself opens the video (palette)


@pytest.mark.slow
def test_poke_command_errors_leave_nothing(checkpoint, tmp_path):
    Image.fromarray(smooth_image(20, 30)).save(tmp_path / "img.png")
    for out, extra, message in [("v.avi", [], ".mp4 or .gif"), ("v.mp4", ["--source", 40, 5], "outside")]:
        args = ["--checkpoint", checkpoint, "--image", tmp_path / "img.png", "--source", 4, 5, "--target", 9, 8]
        result = run_poke(*args, *extra, "--out", tmp_path / out)
        assert result.returncode == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["img.png"]


def test_traced_and_eager_videos_agree(checkpoint):
    traced, eager = Poker.load(checkpoint), Poker.load(checkpoint, trace=False)
    image = smooth_image(16, 16)
    first = traced.animate(image, source=(5, 6), target=(9, 3))
    assert traced.adapter.traced and not eager.adapter.traced
    assert np.abs(first.astype(int) - eager.animate(image, source=(5, 6), target=(9, 3))).max() <= 1
    other = traced.animate(image, source=(12, 3), target=(2, 9))     # the same trace, another poke
    assert np.abs(other.astype(int) - eager.animate(image, source=(12, 3), target=(2, 9))).max() <= 1
    assert not np.array_equal(first, other)


def test_the_bundled_model_loads_and_has_a_model_card():
    poker = Poker.load()
    assert poker_module.DEFAULT_WEIGHTS.is_file() and poker.resolution == 64 and poker.frames == 10
    assert poker.model.cfg.family == "unet" and poker.has_flow and poker.metadata["step"] > 0
    card = poker_module.DEFAULT_WEIGHTS.with_suffix(".md").read_text()
    assert "poke2video train" in card and "Measured" in card
    video = poker.animate(smooth_image(64, 64), source=(30, 30), target=(34, 27))
    assert video.shape == (10, 64, 64, 3) and video.dtype == np.uint8


def test_the_from_video_model_loads_and_has_a_model_card():
    poker = Poker.load("from-video")
    assert weights_path("from-video").name == "from_video.safetensors"
    assert poker.model.cfg.family == "unet" and poker.resolution == 64 and poker.frames == 10
    assert poker.metadata["train"]["poke"]["place"] == "onset"     # pokes sampled where the motion starts
    card = weights_path("from-video").with_suffix(".md").read_text()
    assert "poke2video prepare" in card and "cpu-64-video" in card and "Measured" in card
    bar = np.full((64, 64, 3), 200, np.uint8)
    bar[20:44, 26:34] = (200, 40, 40)                                  # a red bar on a plain grey background
    video = poker.animate(bar, source=(30, 24), target=(35, 22))         # its top dragged right
    changed = np.abs(video[-1].astype(int) - bar).sum(-1) > 30
    assert video.shape == (10, 64, 64, 3) and changed[14:50, 20:44].sum() > 20 and not changed[:, 52:].any()


@pytest.fixture(scope="module")
def flow_checkpoint(tmp_path_factory):
    """A tiny flow model whose head moves pixels (random head weights)."""
    torch.manual_seed(0)
    model = build_model(FlowModelConfig(resolution=16, unet_channels=[4, 8], time_basis=2, frames=3))
    torch.nn.init.normal_(model.head.weight, std=0.3)
    path = tmp_path_factory.mktemp("flow") / "model.safetensors"
    save_model(path, model, {"step": 1})
    return path


def test_a_flow_model_moves_the_full_resolution_image(flow_checkpoint):
    traced, eager = Poker.load(flow_checkpoint), Poker.load(flow_checkpoint, trace=False)
    image = smooth_image(48, 80)
    video = traced.animate(image, source=(30, 20), target=(36, 17))
    assert video.shape == (3, 48, 80, 3) and not np.array_equal(video[-1], image)
    assert np.abs(video.astype(int) - eager.animate(image, source=(30, 20), target=(36, 17))).max() <= 1
    flows = traced.forward_flow(image, source=(30, 20), target=(36, 17))
    assert flows.shape == (3, 2, 48, 80) and np.abs(flows).max() > 0.5
    assert traced.animate(image, (30, 20), (36, 17), output_size="model").shape == (3, 16, 16, 3)


@pytest.mark.parametrize("mode", ["impulse", "sideways"])
def test_a_flow_model_reads_a_drag_as_a_displacement_only(flow_checkpoint, mode):
    for metadata in ({}, {"impulse_scale": 1.0}):        # an impulse_scale in its metadata changes nothing
        poker = Poker(Poker.load(flow_checkpoint, trace=False).model, metadata)
        assert poker.modes == ("displacement",)
        refused = f"^mode '{mode}' is not available for this model \\(modes: displacement\\)$"
        with pytest.raises(UserError, match=refused):
            poker.animate(smooth_image(16, 16), (8, 8), (8, 10), mode=mode)
    assert np.array_equal(poker.animate(smooth_image(16, 16), (8, 8), (8, 10), mode="displacement"),
                          poker.animate(smooth_image(16, 16), (8, 8), (8, 10)))


def test_a_models_drag_scale_hands_the_network_each_drag_times_it(flow_checkpoint, tmp_path):
    plain = Poker.load(flow_checkpoint, trace=False)
    scaled_model = build_model(dataclasses.replace(plain.model.cfg, drag_scale=0.5))
    scaled_model.load_state_dict(plain.model.state_dict())
    save_model(tmp_path / "scaled.safetensors", scaled_model, {"step": 1})
    scaled = Poker.load(tmp_path / "scaled.safetensors")
    assert scaled.model.cfg.drag_scale == 0.5
    image, source = smooth_image(16, 16), (8.0, 6.0)
    for drag in ((4.0, -2.0), (0.0, 6.0)):
        whole = scaled.forward_flow(image, source=source, target=(source[0] + drag[0], source[1] + drag[1]))
        half = plain.forward_flow(image, source=source, target=(source[0] + drag[0] / 2, source[1] + drag[1] / 2))
        assert np.allclose(whole, half, atol=1e-5)
        assert not np.allclose(whole, plain.forward_flow(image, source=source,
                                                         target=(source[0] + drag[0], source[1] + drag[1])), atol=1e-3)
    for bad in (0.0, -1.0, 11.0, True, "0.8"):                 # as a preset or a weights file would give it
        with pytest.raises(UserError, match="drag_scale must be"):
            model_config_from_dict("unet", {"drag_scale": bad})


def test_pixels_the_flow_leaves_still_are_the_users_own(flow_checkpoint):
    poker = Poker.load(flow_checkpoint, trace=False)
    with torch.no_grad():
        poker.model.head.weight.zero_()                  # a model that moves nothing
        poker.model.head.bias.zero_()
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    video = poker.animate(image, source=(10, 10), target=(20, 15))
    assert np.array_equal(video, np.repeat(image[None], 3, axis=0))


def test_the_bundled_model_keeps_most_of_a_photo_untouched():
    """A poke on a 584 x 388 photo: the motion is applied at full resolution, so the pixels that do not move
    stay within 2/255 of the user's own."""
    from skimage import data

    photo = np.asarray(Image.fromarray(data.coffee()).resize((584, 388), Image.BILINEAR))
    video = Poker.load().animate(photo, source=(300, 150), target=(320, 140))
    assert video.shape == (10, 388, 584, 3)
    unchanged = (np.abs(video.astype(int) - photo[None]) <= 2).all(axis=-1)       # [T, H, W]
    assert unchanged.mean() >= 0.8


def _mirror_flows(flows: np.ndarray) -> np.ndarray:
    out = flows[..., ::-1].copy()
    out[:, 0] *= -1
    return out


def test_mirror_average_averages_the_flows_for_the_image_and_its_mirror(tmp_path):
    torch.manual_seed(3)
    cfg = FlowModelConfig(resolution=16, unet_channels=[4, 8], time_basis=2, frames=4, pin_input=True, drag_scale=0.5)
    plain_model = build_model(cfg)
    with torch.no_grad():
        for tensor in plain_model.parameters():          # an untrained head gives zero flow: make it move
            tensor.normal_(0, 0.3)
    save_model(tmp_path / "plain.safetensors", plain_model, {"step": 1})
    mirror_model = build_model(dataclasses.replace(cfg, mirror_average=True))
    mirror_model.load_state_dict(plain_model.state_dict())
    save_model(tmp_path / "mirror.safetensors", mirror_model, {"step": 1})
    plain, averaged = Poker.load(tmp_path / "plain.safetensors"), Poker.load(tmp_path / "mirror.safetensors")
    assert averaged.model.cfg.mirror_average and not plain.model.cfg.mirror_average
    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    flipped = np.ascontiguousarray(image[:, ::-1])
    pokes, pins = [((4.0, 6.0), (7.0, 5.0))], [(12.0, 3.0)]
    mirror_pokes, mirror_pins = [((11.0, 6.0), (8.0, 5.0))], [(3.0, 3.0)]
    expected = (plain.forward_flow(image, pokes=pokes, pins=pins)
                + _mirror_flows(plain.forward_flow(flipped, pokes=mirror_pokes, pins=mirror_pins))) / 2
    got = averaged.forward_flow(image, pokes=pokes, pins=pins)
    assert np.allclose(got, expected, atol=1e-5)
    assert not np.allclose(got, plain.forward_flow(image, pokes=pokes, pins=pins), atol=1e-3)
    # the averaged model answers a mirrored poke with the mirror of its answer
    assert np.allclose(averaged.forward_flow(flipped, pokes=mirror_pokes, pins=mirror_pins), _mirror_flows(got),
                       atol=1e-5)
    for bad in (1, "yes", None):
        with pytest.raises(UserError, match="mirror_average must be"):
            model_config_from_dict("unet", {"mirror_average": bad})
