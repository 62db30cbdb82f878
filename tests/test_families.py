"""Each model family's door: its family stored in weights and run configs, and the files written before the
families had configs of their own (weights format 2, run config.json without config_version) still loading.

tests/fixtures/old_layout/{gru,unet}_run/ are 2-step runs (config.json, model.safetensors, resume.pt,
metrics.jsonl) written by poke2video before the split, on `make_tiny_store` stores (the unet run's with
gt_flow), from `write_preset` presets of train_support: the GRU run's model with stem_channels 2, channels
[2, 2], bottleneck_channels 2, levels 2, gru_kernel 1; the unet run's with architecture unet, unet_channels
[2, 4], time_basis 2 beside the GRU fields, and train.flow_frames all, train.flip true. Their `data` path
was renamed.
"""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from poke2video.errors import UserError
from poke2video.flow_config import FlowModelConfig, FlowTrainConfig
from poke2video.gru_config import GRUModelConfig, GRUTrainConfig
from poke2video.model import FlowUNet, PokeModel, load_model, save_model
from poke2video.model.weights import read_verified, write_weights
from poke2video.poker import Poker
from poke2video.preset import load_preset
from poke2video.train.checkpoint import read_run_config
from poke2video.train.loop import train_run
from train_support import make_tiny_store, weights_of, write_flow_preset, write_preset

torch.set_num_threads(1)
OLD_RUNS = Path(__file__).parent / "fixtures" / "old_layout"
FLAT_V2_WEIGHTS = Path(__file__).parent / "fixtures" / "flat_v2_unet.safetensors"


def header_of(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def test_weights_of_the_flat_layout_load_as_the_flow_model():
    # a version-2 file: the header the bundled weights had before the family layout, tiny tensors
    header = header_of(FLAT_V2_WEIGHTS)
    flat = json.loads(header["model_config"])
    assert header["format_version"] == "2" and "family" not in header
    assert flat["architecture"] == "unet" and {"channels", "levels", "rnn_cells", "discriminator"} <= set(flat)
    model, _ = load_model(FLAT_V2_WEIGHTS)
    assert isinstance(model, FlowUNet) and model.cfg == FlowModelConfig(**{k: flat[k] for k in (
        "resolution", "unet_channels", "time_basis", "frames")})


@pytest.mark.parametrize("family, model_type, model_config, train_config", [
    ("gru", PokeModel, GRUModelConfig, GRUTrainConfig), ("unet", FlowUNet, FlowModelConfig, FlowTrainConfig)])
def test_a_run_of_the_flat_layout_loads_and_resumes(tmp_path, family, model_type, model_config, train_config):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUNS / f"{family}_run", run)
    old_weights = load_model(run / "model.safetensors")[0]
    assert isinstance(old_weights, model_type) and header_of(run / "model.safetensors")["format_version"] == "2"
    recipe = read_run_config(run)[0]
    assert (recipe.family, type(recipe.model), type(recipe.train)) == (family, model_config, train_config)
    store = make_tiny_store(tmp_path / "store", gt_flow=family == "unet")
    resumed = train_run(str(store), str(run), "ignored-on-resume", steps=4, resume=True)
    assert resumed.step == 4 and resumed.epoch >= 1
    assert json.loads((run / "config.json").read_text()).get("config_version") is None   # left as it was
    header = header_of(run / "model.safetensors")
    assert (header["format_version"], header["family"]) == ("3", family)
    loaded, metadata = load_model(run / "model.safetensors")
    assert metadata["step"] == 4 and loaded.cfg == old_weights.cfg
    assert all(torch.equal(a, b) for a, b in zip(weights_of(loaded).values(), weights_of(resumed.model).values()))
    assert Poker.load(run / "model.safetensors").animate(torch.zeros(32, 32, 3).numpy(), (5, 5), (8, 5)).shape[0] == 3


@pytest.mark.parametrize("write, family", [(write_preset, "gru"), (write_flow_preset, "unet")])
def test_a_new_run_stores_its_family_and_only_its_own_options(tmp_path, write, family):
    store = make_tiny_store(tmp_path / "store", gt_flow=family == "unet")
    preset = write(tmp_path / "p.yaml")
    trainer = train_run(str(store), str(tmp_path / "run"), str(preset), steps=1)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config_version"] == 2 and saved["preset"]["model"]["architecture"] == family
    assert saved["preset"]["model"] == json.loads(json.dumps(load_preset(str(preset)).to_dict()["model"]))
    assert set(saved["preset"]["model"]) == {"architecture", *trainer.recipe.model.to_dict()}
    assert read_run_config(tmp_path / "run")[0].model == trainer.recipe.model
    header = header_of(tmp_path / "run" / "model.safetensors")
    assert header["family"] == family and set(json.loads(header["model_config"])) == set(trainer.model.cfg.to_dict())


def test_the_digest_covers_the_family_and_an_unknown_one_is_one_line(tmp_path):
    model = FlowUNet(FlowModelConfig(resolution=16, unet_channels=[4, 4], time_basis=2, frames=3))
    save_model(tmp_path / "m.safetensors", model)
    tensors, header = read_verified(tmp_path / "m.safetensors")
    altered = {**header, "family": "gru"}
    save_file(tensors, str(tmp_path / "altered.safetensors"), metadata=altered)
    with pytest.raises(UserError, match="is damaged"):
        load_model(tmp_path / "altered.safetensors")
    write_weights(tmp_path / "other.safetensors", tensors, "transformer", header["model_config"], "{}")
    with pytest.raises(UserError, match=r"other.safetensors has an unknown model family \('transformer'"):
        load_model(tmp_path / "other.safetensors")
    write_weights(tmp_path / "swapped.safetensors", tensors, "gru", header["model_config"], "{}")
    with pytest.raises(UserError, match="swapped.safetensors has a corrupt model config \\(unknown GRUModelConfig"):
        load_model(tmp_path / "swapped.safetensors")
