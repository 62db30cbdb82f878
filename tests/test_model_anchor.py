"""Poke anchoring (model.poke_anchor): the poked pixel ends on the target; the model still decides what moves."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from poke2video.config import ModelConfig
from poke2video.errors import UserError
from poke2video.model import PokeModel, save_model
from poke2video.model.anchor import MAX_TURN, anchor_flows, own_displacement
from poke2video.poker import Poker
from script_support import load_script

torch.set_num_threads(1)
TINY = ModelConfig(resolution=16, stem_channels=4, channels=[4, 4], bottleneck_channels=4, levels=2, frames=3,
                   output="warp", poke_anchor=True)
MAX_GAIN = TINY.anchor_max_gain      # the default stretch limit
MIN_MOTION = TINY.anchor_min_share()  # without model.anchor_min_motion: 1 / MAX_GAIN


def translation(dx: float, dy: float, frames: int = 3, size: int = 16) -> torch.Tensor:
    """Backward flows [T, 1, 2, H, W] of a frame that slides by (dx, dy) t/T at frame t."""
    share = torch.arange(1, frames + 1, dtype=torch.float32).view(frames, 1, 1, 1, 1) / frames
    return -torch.tensor([dx, dy]).view(1, 1, 2, 1, 1) * share.expand(frames, 1, 2, size, size)


def rotation(angle: float, centre=(8.0, 8.0), size: int = 16) -> torch.Tensor:
    """The backward flow [1, 2, H, W] of a frame turned by `angle` about `centre`."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    x, y = xs - centre[0], ys - centre[1]
    cos, sin = math.cos(-angle), math.sin(-angle)           # where each pixel comes from: turned back
    return torch.stack([cos * x - sin * y - x, sin * x + cos * y - y])[None]


def end_point(last_flow: torch.Tensor, poke) -> np.ndarray:
    """Where the last frame's flow [1, 2, H, W] puts the poked pixel of `poke` (x, y, dx, dy)."""
    return own_displacement(last_flow.detach(), torch.tensor([poke], dtype=torch.float32))[0].numpy()


def test_own_displacement_follows_the_flow_back_to_the_poked_pixel():
    assert np.allclose(end_point(translation(2.0, -1.0)[-1], (5, 6, 3, 0)), (2.0, -1.0), atol=1e-4)
    # a turn by 20 degrees about (8, 8): the pixel at (12, 8) goes to (8 + 4 cos 20, 8 + 4 sin 20)
    turned = end_point(rotation(math.radians(20)), (12, 8, 0, 3))
    assert np.allclose(turned, (4 * math.cos(math.radians(20)) - 4, 4 * math.sin(math.radians(20))), atol=0.05)


def test_anchoring_turns_and_stretches_every_frame_onto_the_target():
    flows = translation(2.0, 0.0)
    drag = (2.4, 1.2)                                                  # 1.34x as long, turned 26.6 degrees
    anchored = anchor_flows(flows, torch.tensor([[5.0, 6.0, *drag]]), MAX_GAIN, MIN_MOTION)
    assert np.allclose(end_point(anchored[-1], (5, 6, *drag)), drag, atol=1e-4)
    # the same turn and stretch at every frame and pixel: frame 1 goes a third of the way
    assert torch.allclose(anchored[0, 0], -torch.tensor(drag).view(2, 1, 1).expand(2, 16, 16) / 3, atol=1e-5)


@pytest.mark.parametrize("drag, expected", [
    ((1.0, 0.0), (2.0 / MAX_GAIN, 0.0)),                                         # shrink limited
    ((0.0, 3.0), (3.0 * math.cos(MAX_TURN), 3.0 * math.sin(MAX_TURN))),          # turn limited (y is down)
    ((-2.0, 0.0), (2.0 * math.cos(MAX_TURN), 2.0 * math.sin(MAX_TURN))),         # opposite: still a limited turn
])
def test_anchoring_is_limited(drag, expected):
    anchored = anchor_flows(translation(2.0, 0.0), torch.tensor([[5.0, 6.0, *drag]]), MAX_GAIN, MIN_MOTION)
    found = end_point(anchored[-1], (5, 6, *drag))
    assert np.allclose(np.abs(found), np.abs(expected), atol=1e-3)


@pytest.mark.parametrize("flow, drag", [((2.0, 0.0), (3.2, 0.0)),    # it would take a stretch over MAX_GAIN
                                        ((0.5, 0.0), (3.0, 0.0)),    # the model moves 1/6 of the drag: its call
                                        ((0.0, 0.0), (3.0, 1.0)),    # nothing moves
                                        ((2.0, 0.0), (0.0, 0.0))])   # no drag
def test_a_model_that_does_not_move_the_point_is_left_alone(flow, drag):
    flows = translation(*flow)
    assert torch.equal(anchor_flows(flows, torch.tensor([[5.0, 6.0, *drag]]), MAX_GAIN, MIN_MOTION), flows)


def test_between_min_motion_and_the_stretch_limit_the_stretch_is_the_limit():
    flows, poke = translation(1.0, 0.0), torch.tensor([[5.0, 6.0, 3.0, 0.0]])   # moves a third of the drag
    assert torch.equal(anchor_flows(flows, poke, 1.5, 1 / 1.5), flows)           # the rule without the key
    assert torch.equal(anchor_flows(flows, poke, 1.5, 0.4), flows)               # a third is under 0.4
    stretched = anchor_flows(flows, poke, 1.5, 0.3)                              # over 0.3: stretched by 1.5
    assert np.allclose(end_point(stretched[-1], (5, 6, 3, 0)), (1.5, 0.0), atol=1e-4)
    assert torch.allclose(stretched, 1.5 * flows)


def sliding_model(poke_anchor: bool = True, **anchor_limits) -> PokeModel:
    """A tiny warp model whose flow head slides every frame 2 px right (the bias of the flow map) and whose
    mask takes every pixel from the warped source; `anchor_limits`: anchor_max_gain, anchor_min_motion."""
    torch.manual_seed(0)
    model = PokeModel(dataclasses.replace(TINY, poke_anchor=poke_anchor, **anchor_limits)).eval()
    with torch.no_grad():
        model.decoder.to_rgb.bias[3] = -0.5         # FLOW_SCALE 4: backward flow -2 px in x
        model.decoder.to_rgb.bias[5] = 30.0
    return model


def test_predict_anchors_only_with_the_switch_and_the_poke():
    source, poke_map = torch.rand(1, 3, 16, 16) * 2 - 1, torch.zeros(1, 2, 16, 16)
    poke = torch.tensor([[6.0, 7.0, 2.0, 1.0]])
    anchored = sliding_model().predict(source, poke_map, poke=poke)
    plain = sliding_model().predict(source, poke_map)
    switched_off = sliding_model(poke_anchor=False).predict(source, poke_map, poke=poke)
    assert torch.equal(plain.video, switched_off.video) and torch.equal(plain.backward_flow, switched_off.backward_flow)
    assert np.allclose(end_point(plain.backward_flow[:, -1], (6, 7, 2, 1)), (2, 0), atol=0.05)
    assert np.allclose(end_point(anchored.backward_flow[:, -1], (6, 7, 2, 1)), (2, 1), atol=0.05)
    assert not torch.allclose(anchored.video, plain.video)      # the frames are warped by the anchored flows


def test_poke_anchor_needs_the_warp_output():
    with pytest.raises(UserError, match="poke_anchor needs model.output: warp"):
        dataclasses.replace(TINY, output="pixels").validate()


@pytest.mark.parametrize("gain", [0.5, float("nan")])
def test_the_stretch_limit_is_at_least_one(gain):
    assert ModelConfig.from_dict({"output": "warp", "poke_anchor": True}).anchor_max_gain == 1.5   # files without
    #                                                           the key keep the rule they were made with
    with pytest.raises(UserError, match="anchor_max_gain must be at least 1"):
        dataclasses.replace(TINY, anchor_max_gain=gain).validate()


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan")])
def test_min_motion_is_a_share_of_the_drag(share):
    assert ModelConfig.from_dict({"output": "warp", "anchor_max_gain": 2.0}).anchor_min_share() == 0.5   # unset
    assert ModelConfig.from_dict({"output": "warp", "anchor_min_motion": 0.3}).anchor_min_share() == 0.3
    with pytest.raises(UserError, match="anchor_min_motion must be between 0 and 1"):
        dataclasses.replace(TINY, anchor_min_motion=share).validate()


def test_the_stretch_limit_travels_with_the_weights(tmp_path):
    # the model slides 2 px; a drag of 4 px needs a 2x stretch: over 1.5, within 2
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    videos = {}
    for gain in (1.5, 2.0):
        path = tmp_path / f"gain{gain}.safetensors"
        save_model(path, sliding_model(anchor_max_gain=gain), {"step": 1})
        poker = Poker.load(path)
        assert poker.model.cfg.anchor_max_gain == gain
        videos[gain] = (poker.animate(image, (5, 7), (9, 7)), poker.animate(image, (5, 7), (9, 7), anchor=False))
    assert np.array_equal(videos[1.5][0], videos[1.5][1])         # left as the model made it
    assert np.array_equal(videos[1.5][1], videos[2.0][1])         # the same model's own flows
    assert np.abs(videos[2.0][0][-1, 4:12, 9:13].astype(int) - image[4:12, 5:9]).max() <= 1   # moved all 4 px


def test_min_motion_travels_with_the_weights(tmp_path):
    # the model slides 2 px; a drag of 5 px: 0.4 of it, stretched by the limit 1.5 to 3 px where 0.35 is enough
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    last = {}
    for share in (None, 0.35):
        path = tmp_path / f"share{share}.safetensors"
        save_model(path, sliding_model(anchor_min_motion=share), {"step": 1})
        poker = Poker.load(path)
        assert poker.model.cfg.anchor_min_motion == share
        last[share] = poker.animate(image, (5, 7), (10, 7))[-1]
    assert np.array_equal(last[None], poker.animate(image, (5, 7), (10, 7), anchor=False)[-1])   # left alone
    assert np.abs(last[0.35][4:12, 8:13].astype(int) - image[4:12, 5:10]).max() <= 1              # moved 3 px


def test_poker_anchors_displacement_pokes_and_can_show_the_models_own(tmp_path):
    path = tmp_path / "model.safetensors"
    save_model(path, sliding_model(), {"step": 1})
    assert Poker.load(path).model.cfg.poke_anchor                 # the switch travels with the weights
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    poke = dict(source=(6, 7), target=(8, 8))
    traced, eager = Poker.load(path), Poker.load(path, trace=False)
    anchored = traced.animate(image, **poke)
    assert np.abs(anchored.astype(int) - eager.animate(image, **poke)).max() <= 1
    own = traced.animate(image, **poke, anchor=False)
    assert np.abs(own.astype(int) - eager.animate(image, **poke, anchor=False)).max() <= 1
    # frame T is the image slid by the drag (2, 1) when anchored, by the model's own (2, 0) when not
    assert np.abs(anchored[-1, 5:12, 6:12].astype(int) - image[4:11, 4:10]).max() <= 1
    assert np.abs(own[-1, 4:12, 6:12].astype(int) - image[4:12, 4:10]).max() <= 1


def test_impulse_models_are_not_anchored(tmp_path):
    path = tmp_path / "model.safetensors"
    save_model(path, sliding_model(), {"step": 1, "impulse_scale": 0.5})
    poker = Poker.load(path)
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for mode in poker.modes:
        assert np.array_equal(poker.animate(image, (6, 7), (8, 8), mode=mode),
                              poker.animate(image, (6, 7), (8, 8), mode=mode, anchor=False))


def test_poker_benchmark_times_every_variant(tmp_path, monkeypatch, capsys):
    path = tmp_path / "model.safetensors"
    save_model(path, sliding_model(poke_anchor=False), {"step": 1})       # switched on for the benchmark
    monkeypatch.setattr("sys.argv", ["bench_poker.py", "--checkpoint", str(path), "--repeats", "2"])
    load_script("bench_poker").main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| traced") or
            line.startswith("| eager")]
    assert [row.split("|")[1:3] for row in rows] == [[" traced ", " on "], [" traced ", " off "],
                                                      [" eager ", " on "], [" eager ", " off "]]
    assert rows[0].endswith("| 1.00x |") and all(float(row.split("|")[3]) > 0 for row in rows)


def test_evaluate_scores_anchored_videos_unless_told_not_to(tmp_path, monkeypatch):
    from poke2video import cli
    from poke2video.evaluate import evaluator

    path = tmp_path / "model.safetensors"
    save_model(path, sliding_model(), {"step": 1})
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    anchored, own = evaluator.model_method(str(path)), evaluator.model_method(str(path), anchor=False)
    assert np.array_equal(anchored.animate(image, (6, 7), (8, 8), 3), Poker.load(path).animate(image, (6, 7), (8, 8)))
    assert np.array_equal(own.animate(image, (6, 7), (8, 8), 3),
                          Poker.load(path).animate(image, (6, 7), (8, 8), anchor=False))
    assert not np.array_equal(anchored.animate(image, (6, 7), (8, 8), 3), own.animate(image, (6, 7), (8, 8), 3))
    calls = []
    monkeypatch.setattr(evaluator, "evaluate_to_dir", lambda **kwargs: calls.append(kwargs["anchor"]))
    for extra in ([], ["--no-anchor"]):
        assert cli.main(["evaluate", "--data", str(tmp_path), "--out", str(tmp_path / "r"), *extra]) == 0
    assert calls == [True, False]


def test_evaluation_can_change_anchorings_limits_in_memory(tmp_path):
    from poke2video.evaluate import evaluator

    path, saved = tmp_path / "model.safetensors", tmp_path / "share.safetensors"
    save_model(path, sliding_model(), {"step": 1})
    save_model(saved, sliding_model(anchor_min_motion=0.35), {"step": 1})
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    changed = evaluator.model_method(str(path), anchor_limits={"anchor_min_motion": 0.35})
    as_saved = Poker.load(saved).animate(image, (5, 7), (10, 7))            # 2 of 5 px: stretched by 1.5
    assert np.array_equal(changed.animate(image, (5, 7), (10, 7), 3), as_saved)
    assert not np.array_equal(as_saved, Poker.load(path).animate(image, (5, 7), (10, 7)))
    with pytest.raises(UserError, match="anchor_max_gain must be at least 1"):
        evaluator.model_method(str(path), anchor_limits={"anchor_max_gain": 0.5})
    with pytest.raises(ValueError, match="not an anchoring limit"):
        evaluator.model_method(str(path), anchor_limits={"frames": 4})


@pytest.mark.parametrize("impulse", [False, True])
def test_validation_scores_videos_as_poker_makes_them(tmp_path, monkeypatch, impulse):
    from poke2video.config import PokeConfig
    from poke2video.data.store import Store
    from poke2video.model import poke_model
    from poke2video.train.validate import Validator
    from train_support import RES, make_tiny_store

    handed = []
    monkeypatch.setattr(poke_model, "anchor_flows", lambda flows, poke, max_gain, min_motion: handed.append(poke.clone()) or flows)
    validator = Validator.for_store(Store.open(make_tiny_store(tmp_path / "store")),
                                    PokeConfig(poke_size=3, impulse=impulse), val_clips=2)
    validator.run(PokeModel(dataclasses.replace(TINY, resolution=RES)), torch.device("cpu"), torch.no_grad)
    pokes = torch.stack([item[3] for item in validator.items])[:, :4]        # (x, y, dx, dy) of each clip
    assert [p.tolist() for p in handed] == ([] if impulse else [pokes.tolist()])
