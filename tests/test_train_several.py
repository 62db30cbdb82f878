"""Training items and models for several pokes and pins: the dataset's every poke and pin from a PokeSim store,
the pin channel's weights (recorded in the config that travels with them), and a few training steps."""
import json

import numpy as np
import pytest
import torch

from poke2video.config import PokeConfig
from poke2video.data.dataset import PokeDataset
from poke2video.data.pokes import make_poke_map
from poke2video.data.store import Store
from poke2video.flow_config import FlowModelConfig
from poke2video.model import FlowUNet, load_model, save_model
from poke2video.model.weights import read_header
from poke2video.poker import DEFAULT_WEIGHTS
from poke2video.sim.generate import simulate_dataset
from poke2video.train.batch import Batch
from poke2video.train.loop import train_run
from train_support import write_flow_preset

torch.set_num_threads(1)
RES = 32


@pytest.fixture(scope="module")
def several(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "several"
    simulate_dataset(out, clips=24, resolution=RES, seed=4, chunk_clips=12, max_pokes=3, max_pins=2)
    return out


def test_items_of_a_store_with_several_pokes_carry_them_all(several):
    dataset = PokeDataset(Store.open(several), "train", poke=PokeConfig(poke_size=3, source="sim"))
    items = [dataset[i] for i in range(len(dataset))]
    assert all(len(item) == 7 for item in items)
    pokes, pins = torch.stack([item[5] for item in items]), torch.stack([item[6] for item in items])
    assert pokes.shape == (len(items), 3, 5) and pins.shape == (len(items), 2, 3)
    assert torch.equal(pokes[:, 0, :4], torch.stack([item[3] for item in items])[:, :4])
    several_at_once = int(pokes[:, :, 4].sum(1).argmax())
    rows = pokes[several_at_once][pokes[several_at_once, :, 4] > 0].numpy()
    assert len(rows) >= 2 and pins[:, :, 2].sum() > 0
    expected = sum(make_poke_map(RES, row[:2], row[2:4], 3) for row in rows)
    np.testing.assert_allclose(items[several_at_once][1].numpy(), expected, atol=1e-6)
    batch = Batch.collate(items[:4], torch.device("cpu"))
    assert batch.pokes.shape == (4, 3, 5) and batch.network_poke is batch.pokes


def test_a_pin_channel_is_recorded_with_the_weights_and_old_weights_have_none(tmp_path):
    cfg = FlowModelConfig(resolution=RES, unet_channels=[4, 8], time_basis=2, frames=10, pin_input=True)
    model = FlowUNet(cfg)
    plain = FlowUNet(FlowModelConfig(resolution=RES, unet_channels=[4, 8], time_basis=2, frames=10))
    assert model.down[0][0].in_channels == plain.down[0][0].in_channels + 1
    save_model(tmp_path / "pins.safetensors", model)
    loaded, _ = load_model(tmp_path / "pins.safetensors")
    assert loaded.cfg.pin_input is True
    save_model(tmp_path / "plain.safetensors", plain)
    assert load_model(tmp_path / "plain.safetensors")[0].cfg.pin_input is False
    assert read_header(DEFAULT_WEIGHTS)[0].pin_input is True        # the bundled weights read pins
    frame, poke = torch.zeros(1, 3, RES, RES), torch.tensor([[[10.0, 10.0, 3.0, 0.0, 1.0]]])
    with torch.no_grad():
        torch.manual_seed(0)
        loaded.head.weight.normal_(std=0.1)                          # a fresh head reads nothing
        loaded.head.bias.fill_(0.5)
        without = loaded.forward_flows(frame, poke)
        pinned = loaded.forward_flows(frame, poke, pins=torch.tensor([[[20.0, 12.0, 1.0]]]))
    assert not torch.equal(without, pinned)                          # the network reads the pin


def test_a_model_with_a_pin_channel_trains_a_few_steps(several, tmp_path):
    preset = write_flow_preset(tmp_path / "p.yaml", model={"resolution": RES, "pin_input": True, "frames": 10},
                               poke={"poke_size": 3, "source": "sim"})
    trainer = train_run(data=str(several), out=str(tmp_path / "run"), preset=str(preset), steps=3)
    assert trainer.model.cfg.pin_input
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["preset"]["model"]["pin_input"] is True
    model, _ = load_model(tmp_path / "run" / "model.safetensors")
    assert model.cfg.pin_input and model.down[0][0].in_channels == 3 + 9
    losses = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("loss/flow_endpoint" in row for row in losses)
