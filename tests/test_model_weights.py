"""Weights files: round trip with identical outputs, clear errors for missing, foreign and corrupt files."""
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from poke2video.config import RETIRED
from poke2video.errors import UserError
from poke2video.model import PokeModel, load_model, save_model
from poke2video.model.weights import read_verified, write_weights
from model_support import small_gru_config

torch.set_num_threads(1)


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(1)
    model = PokeModel(small_gru_config()).eval()
    path = tmp_path / "model.safetensors"
    save_model(path, model, {"impulse_scale": 7.5, "train": {"steps": 3}})
    return model, path


def test_round_trip_gives_identical_outputs(saved):
    model, path = saved
    loaded, metadata = load_model(path)
    assert metadata == {"impulse_scale": 7.5, "train": {"steps": 3}}
    assert loaded.cfg == model.cfg and not loaded.training
    source, poke_map = torch.rand(1, 3, 64, 64), torch.zeros(1, 2, 64, 64)
    poke_map[:, 0, 20:23, 20:23] = 3.0
    with torch.inference_mode():
        assert torch.equal(model(source, poke_map)[0], loaded(source, poke_map)[0])
    assert not list(path.parent.glob(".*tmp*"))


def test_removed_model_options_load_at_their_one_value_and_are_named_otherwise(saved, tmp_path):
    model, path = saved
    tensors, header = read_verified(path)
    retired = RETIRED["GRUModelConfig"][1]
    flat = json.loads(read_verified(Path(__file__).parent / "fixtures" / "flat_v2_unet.safetensors")[1]["model_config"])
    assert set(retired) <= set(flat)                          # files written with them hold them all
    old = {**json.loads(header["model_config"]), **retired}
    write_weights(tmp_path / "old.safetensors", tensors, "gru", json.dumps(old), header["metadata"])
    assert load_model(tmp_path / "old.safetensors")[0].cfg == model.cfg
    warp = tmp_path / "warp.safetensors"
    write_weights(warp, tensors, "gru", json.dumps({**old, "output": "warp"}), header["metadata"])
    with pytest.raises(UserError, match=f"^{re.escape(str(warp))}: model.output 'warp' is no longer supported"):
        load_model(warp)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "nope.safetensors")


def test_not_safetensors(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"\x80\x04 this is a pickle, not safetensors")
    with pytest.raises(UserError, match=str(path)):
        load_model(path)


def test_foreign_safetensors(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(UserError, match="not a poke2video model"):
        load_model(path)


def test_truncated_file(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=str(path)):
        load_model(path)


def test_config_that_does_not_match_tensors(saved, tmp_path):
    model, _ = saved
    path = tmp_path / "mismatch.safetensors"
    config = model.cfg.to_dict() | {"bottleneck_channels": 48}
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "poke2video-model", "format_version": "1",
                                            "model_config": json.dumps(config), "metadata": "{}"})
    with pytest.raises(UserError, match="does not match its model config"):
        load_model(path)
