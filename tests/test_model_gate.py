"""Flow gate (model.flow_gate): a full-resolution map that scales every frame's flow of a warp model."""
import dataclasses
import math

import pytest
import torch

from poke2video.config import ModelConfig, TrainConfig, load_preset
from poke2video.errors import UserError
from poke2video.model import PokeModel, save_model
from poke2video.model.blocks import OPEN_BIAS
from poke2video.model.gate import FlowGate
from poke2video.poker import Poker
from poke2video.train import losses
from poke2video.train.steps import build_optimizers
from train_support import moving_warp_model, write_preset

torch.set_num_threads(1)
TINY = ModelConfig(resolution=16, stem_channels=4, channels=[4, 4], bottleneck_channels=4, levels=2, frames=3,
                   output="warp", flow_gate=True)


def inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    source = torch.rand(2, 3, 16, 16, generator=generator) * 2 - 1
    poke_map = torch.zeros(2, 2, 16, 16)
    poke_map[:, :, 6:9, 6:9] = 3.0
    return source, poke_map


def moving_model(gated: bool) -> PokeModel:
    return moving_warp_model(dataclasses.replace(TINY, flow_gate=gated))


def test_a_new_gate_is_open_and_has_one_value_per_pixel():
    gate = FlowGate()
    source, _ = inputs()
    flow = torch.randn(2, 2, 16, 16)
    value = gate(source, flow)
    assert value.shape == (2, 1, 16, 16)
    assert torch.allclose(value, torch.sigmoid(torch.tensor(OPEN_BIAS)))


def test_the_gate_reads_the_pixels_the_flow_fetches():
    torch.manual_seed(1)
    gate = FlowGate()
    torch.nn.init.normal_(gate.net[-1].weight, 0, 0.5)                  # a trained-looking last layer
    source, _ = inputs()
    still, shifted = torch.zeros(2, 2, 16, 16), torch.zeros(2, 2, 16, 16)
    shifted[:, 0] = 3.0
    shifted_far = shifted.clone()
    shifted_far[:, 0] = 5.0
    assert not torch.allclose(gate(source, still), gate(source, shifted))
    assert not torch.allclose(gate(source, shifted), gate(source, shifted_far))
    assert ((gate(source, shifted) >= 0) & (gate(source, shifted) <= 1)).all()


def test_predict_scales_every_frame_of_a_video_by_one_gate():
    gated, plain = moving_model(True), moving_model(False)
    plain.load_state_dict({k: v for k, v in gated.state_dict().items() if not k.startswith("flow_gate.")})
    source, poke_map = inputs()
    with torch.no_grad():
        open_gate = gated.predict(source, poke_map).backward_flow            # [B, T, 2, H, W]
        ungated = plain.predict(source, poke_map).backward_flow
        assert ungated.abs().mean() > 0.5
        assert torch.allclose(open_gate, ungated * torch.sigmoid(torch.tensor(OPEN_BIAS)), atol=1e-5)
        gated.flow_gate.net[-1].bias.fill_(-30.0)                            # a closed gate: nothing moves
        closed = gated.predict(source, poke_map)
        assert closed.backward_flow.abs().max() < 1e-9
        # the map: left half open, right half closed, the same at every frame
        gated.flow_gate.net[-1].bias.zero_()
        gated.flow_gate.net[-1].weight.zero_()
        halves = gated.flow_gate.net[-1]
        halves.register_forward_hook(lambda module, args, out: torch.cat(
            [torch.full_like(out[..., :8], 30.0), torch.full_like(out[..., 8:], -30.0)], -1))
        split = gated.predict(source, poke_map).backward_flow
    assert torch.allclose(split[..., :8], ungated[..., :8], atol=1e-5)
    assert split[..., 8:].abs().max() < 1e-9


def test_flow_gate_needs_the_warp_output():
    with pytest.raises(UserError, match="flow_gate needs model.output: warp"):
        ModelConfig(output="pixels", flow_gate=True).validate()


def test_the_dynamics_stage_trains_the_gate():
    model = moving_model(True)
    optimizers = build_optimizers(model, None, TrainConfig())
    gate_parameters = {id(p) for p in model.flow_gate.parameters()}
    owned = {name: {id(p) for group in opt.param_groups for p in group["params"]} for name, opt in optimizers.items()}
    assert gate_parameters <= owned["stage2"] and not gate_parameters & owned["stage1"]
    single = build_optimizers(model, None, TrainConfig(schedule="single"))
    assert gate_parameters <= {id(p) for group in single["joint"].param_groups for p in group["params"]}


def test_the_gate_travels_with_the_weights(tmp_path):
    model = moving_model(True)
    torch.nn.init.normal_(model.flow_gate.net[-1].weight, 0, 0.5)
    path = tmp_path / "model.safetensors"
    save_model(path, model, {"step": 1})
    poker, eager = Poker.load(path), Poker.load(path, trace=False)
    assert poker.model.cfg.flow_gate
    assert torch.equal(poker.model.flow_gate.net[-1].weight, model.flow_gate.net[-1].weight)
    image = (torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(2)) * 255).byte().numpy()
    traced_video, eager_video = (p.animate(image, (7, 7), (10, 8)) for p in (poker, eager))
    assert (abs(traced_video.astype(int) - eager_video.astype(int)) <= 1).all()


def square_flows(frames: int = 2) -> torch.Tensor:
    """F(0 -> t) [1, T, 2, 16, 16]: a 4x4 square at (4..7, 4..7) slides right 1 px per frame."""
    flows = torch.zeros(1, frames, 2, 16, 16)
    for t in range(frames):
        flows[0, t, 0, 4:8, 4:8] = t + 1.0
    return flows


def test_gate_loss_wants_the_gate_open_where_anything_moves_and_shut_elsewhere():
    flows = square_flows()
    moving = torch.zeros(1, 1, 16, 16)
    moving[..., 4:8, 5:10] = 1.0        # frame 1's square at 5..8, frame 2's at 6..9: where the flow fetches from it
    perfect = moving * (1 - 1e-4) + 5e-5
    targets = losses.backward_targets(flows)
    assert losses.gate_loss(perfect, *targets).item() < 1e-3
    assert losses.gate_loss(1 - perfect, *targets).item() > 5.0
    # open everywhere or shut everywhere each pay for one half
    open_everywhere, shut_everywhere = torch.full_like(moving, 0.99), torch.full_like(moving, 0.01)
    assert losses.gate_loss(open_everywhere, *targets).item() == pytest.approx(-0.5 * math.log(0.01) - 0.5 * math.log(0.99), rel=1e-3)
    assert losses.gate_loss(shut_everywhere, *targets).item() == pytest.approx(-0.5 * math.log(0.01) - 0.5 * math.log(0.99), rel=1e-3)
    # column 5 moves in frame 1 only: a gate shut there pays with every frame's flow, not with frame T's alone
    # (where column 5 is just uncovered: neither moving nor still)
    last_only = perfect.clone()
    last_only[..., 5] = 5e-5
    assert losses.gate_loss(last_only, *losses.backward_targets(flows[:, -1:])).item() < 1e-3
    assert losses.gate_loss(last_only, *targets).item() > 0.1


def test_gate_weight_needs_the_gate(tmp_path):
    preset = write_preset(tmp_path / "p.yaml", model={"output": "warp"}, flow_weight=1.0, gate_weight=1.0)
    with pytest.raises(UserError, match="gate_weight needs model.flow_gate"):
        load_preset(str(preset))


def test_gate_loss_trains_the_gate_alone():
    model = moving_model(True)
    source, poke_map = inputs()
    targets = losses.backward_targets(square_flows(3).expand(2, -1, -1, -1, -1))
    optimizer = torch.optim.Adam(model.flow_gate.parameters(), lr=1e-2)
    others = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("flow_gate.")}
    first = None
    for _ in range(30):
        loss = losses.gate_loss(model.predict(source, poke_map).gate, *targets)
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 2
    # the gate reads the flow but does not shape it: nothing else has a gradient from the gate loss
    assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith("flow_gate."))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in others.items())
