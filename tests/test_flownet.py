"""The flow network: its generated training pairs, the network, its training run and `prepare --flow net`."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import poke2video.flownet.scenes as scenes
from poke2video.cli import main
from poke2video.data.flow import get_flow_estimator
from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video.flownet.estimator import NetFlow, load_flow_net
from poke2video.flownet.model import FlowNet
from poke2video.flownet.train import FlowTrainOptions, save_weights, train_flow_net
from tests.conftest import moving_square_frames, textured_background, write_video


def _sharp(rng, frame):
    return np.clip(np.round(frame), 0, 255).astype(np.uint8)


def test_a_pair_s_flow_carries_the_first_frame_onto_the_second(monkeypatch):
    """Inside each moving piece, the second frame read at pixel + flow is the first frame's colour; read at
    the pixel itself (no motion) it is not."""
    monkeypatch.setattr(scenes, "degrade", _sharp)   # no noise or JPEG, to compare colours exactly
    rng = np.random.default_rng(3)
    size = 64
    ys, xs = np.mgrid[:size, :size].astype(np.float32)
    carried, unmoved = [], []
    for _ in range(30):
        first, second, flow = scenes.scene_pair(rng, size)
        assert first.shape == second.shape == (size, size, 3) and flow.shape == (2, size, size)
        rough = sum(np.abs(cv2.Laplacian(flow[c], cv2.CV_32F)) for c in range(2))
        inside = (np.hypot(*flow) > 1) & (rough < 0.05)   # moving, away from any piece's outline
        if inside.sum() < 20:
            continue
        read = cv2.remap(second.astype(np.float32), xs + flow[0], ys + flow[1], cv2.INTER_LINEAR)
        carried.append(np.abs(read - first).mean(-1)[inside].mean())
        unmoved.append(np.abs(second.astype(np.float32) - first).mean(-1)[inside].mean())
    assert len(carried) >= 10
    assert np.median(carried) < 0.3 * np.median(unmoved)


def test_pairs_repeat_from_a_seed_and_still_scenes_have_zero_flow():
    first = scenes.scene_pair(np.random.default_rng(7), 32)
    again = scenes.scene_pair(np.random.default_rng(7), 32)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    flows = [scenes.scene_pair(np.random.default_rng(seed), 32)[2] for seed in range(40)]
    assert any(np.abs(flow).max() == 0 for flow in flows) or \
        any((np.abs(flow) == 0).mean() > 0.5 for flow in flows)   # still backgrounds are exactly still


def test_network_gives_flow_of_the_frame_s_size_and_refuses_other_sides():
    net = FlowNet().eval()
    with torch.no_grad():
        flow = net(torch.zeros(2, 3, 48, 32), torch.zeros(2, 3, 48, 32))
        assert flow.shape == (2, 2, 48, 32)
        with pytest.raises(ValueError, match="multiples of 16"):
            net(torch.zeros(1, 3, 40, 32), torch.zeros(1, 3, 40, 32))


def test_estimator_pads_any_frame_size_and_names_the_command_for_missing_weights(tmp_path):
    save_weights(FlowNet(), tmp_path / "flow_net.safetensors", {"step": 0})
    estimator = NetFlow(tmp_path / "flow_net.safetensors")
    frame = np.zeros((37, 50, 3), np.uint8)
    assert estimator(frame, frame).shape == (2, 37, 50)
    with pytest.raises(UserError, match="train-flow"):
        load_flow_net(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not weights")
    with pytest.raises(UserError, match="not flow network weights"):
        load_flow_net(tmp_path / "bad.safetensors")


def _tiny(**kwargs) -> FlowTrainOptions:
    return FlowTrainOptions(**{"pairs": 12, "val_pairs": 4, "size": 32, "crop": 32, "batch": 4, "val_every": 2,
                               "save_every": 1, **kwargs})


def _shifted_pair(rng, size):
    """A smooth texture and the same texture shifted by a random whole-pixel vector of up to 3 px."""
    image = textured_background(size + 8, size + 8, int(rng.integers(1 << 30)))
    dx, dy = (int(v) for v in rng.integers(-3, 4, 2))
    first = image[4:4 + size, 4:4 + size]
    second = image[4 - dy:4 - dy + size, 4 - dx:4 - dx + size]
    flow = np.stack([np.full((size, size), dx, np.float32), np.full((size, size), dy, np.float32)])
    return first, second, flow


@pytest.mark.slow
def test_training_lowers_the_flow_error_of_whole_frame_shifts(tmp_path, monkeypatch):
    """On frames that shift as a whole, a few hundred steps bring the validation error (other seed) well
    below that of answering no motion."""
    monkeypatch.setattr("poke2video.flownet.train.scene_pair", _shifted_pair)
    run = tmp_path / "run"
    train_flow_net(run, _tiny(steps=400, val_every=400, batch=8, pairs=128, val_pairs=16))
    net, config = load_flow_net(run / "flow_net.safetensors")
    assert config["step"] == 400
    val = np.load(run / "val_pairs.npz")
    first, second = (torch.from_numpy(val[k]).permute(0, 3, 1, 2).float() for k in ("first", "second"))
    truth = torch.from_numpy(val["flow"].astype(np.float32))
    with torch.no_grad():
        error = torch.linalg.vector_norm(net(first, second) - truth, dim=1).mean()
    assert error < 0.5 * torch.linalg.vector_norm(truth, dim=1).mean()


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    train_flow_net(tmp_path / "whole", _tiny(steps=4))
    train_flow_net(tmp_path / "parts", _tiny(steps=4), max_minutes=0)    # stops, saved, after one step
    assert torch.load(tmp_path / "parts" / "last.pt", weights_only=False)["state"]["step"] == 1
    with pytest.raises(UserError, match="--resume"):
        train_flow_net(tmp_path / "parts", _tiny(steps=4))
    train_flow_net(tmp_path / "parts", _tiny(steps=4), resume=True)
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)
    parts = torch.load(tmp_path / "parts" / "last.pt", weights_only=False)
    assert parts["state"]["step"] == whole["state"]["step"] == 4
    for name, value in whole["net"].items():
        torch.testing.assert_close(parts["net"][name], value)


def test_prepare_with_the_bundled_flow_network_follows_a_moving_square(tmp_path):
    """`prepare --flow net` runs the bundled network on every frame step: the stored flow moves the square
    by its speed and leaves the background still."""
    frames = moving_square_frames(count=14, speed=(2, 1))
    write_video(tmp_path / "videos" / "a.mp4", frames)
    assert main(["prepare", str(tmp_path / "videos"), "--flow", "net", "--flow-scale", "1",
                 "--out", str(tmp_path / "store")]) == 0
    store = Store.open(tmp_path / "store")
    assert store.manifest["flow_method"] == "net"
    step = np.asarray(store.array(0, "step_flow")[3], np.float32)     # [2, 64, 64], frame 3 -> 4
    x, y = 16 + 2 * 3, 24 + 1 * 3                                     # the square's corner in frame 3
    inside = step[:, y + 4:y + 12, x + 4:x + 12].reshape(2, -1)
    assert np.median(inside[0]) == pytest.approx(2, abs=0.3) and np.median(inside[1]) == pytest.approx(1, abs=0.3)
    assert np.abs(step[:, 50:, 50:]).max() < 0.3                       # background far from the square


@pytest.mark.slow
def test_train_flow_command_writes_weights_and_refuses_a_run_without_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("poke2video.flownet.train.scene_pair", _shifted_pair)   # cheaper pairs, same path
    run = tmp_path / "run"
    assert main(["train-flow", "--out", str(run), "--pairs", "8", "--steps", "1"]) == 0
    assert (run / "flow_net.safetensors").is_file()
    assert main(["train-flow", "--out", str(run), "--pairs", "8", "--steps", "2"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train-flow", "--out", str(run), "--pairs", "8", "--steps", "2", "--resume"]) == 0
    assert torch.load(run / "last.pt", weights_only=False)["state"]["step"] == 2
