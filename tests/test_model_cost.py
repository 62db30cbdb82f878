"""Weights whose every size is within bounds but whose product is not (model/cost.py): one line naming the
file, from the config alone, before a model is built; the rule for the smallest feature map is PyTorch's own."""
import time

import pytest
import torch

from app_support import TINY
from poke2video.errors import UserError
from poke2video.families import ModelConfig, model_config_from_dict
from poke2video.model.cost import MAX_POKE_BYTES, MAX_POKE_FLOPS, check_poke_cost, poke_cost, smallest_map_problem
from poke2video.model.weights import build_model, save_model
from poke2video.preset import model_config_for
from test_hostile_cli import refused, root  # noqa: F401  (the fixture: a folder with an image and a checkpoint)


def changed(cfg: ModelConfig, **changes) -> ModelConfig:
    return model_config_from_dict(cfg.family, {**cfg.to_dict(), **changes})


def config(base: str, **changes) -> ModelConfig:
    return changed(model_config_for(base), **changes)


def costly_checkpoint(path, cfg: ModelConfig):
    """A weights file of `cfg` with every tensor the config asks for and a valid digest."""
    torch.manual_seed(0)
    save_model(path, build_model(cfg), {"step": 0})
    return path


def on_meta(cfg: ModelConfig) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(cfg).eval()


COSTLY = {   # config -> words of its line
    "the paper's model at 1024 px, 64 frames, 8 channels (a 108 KB file)":
        (config("paper-64", resolution=1024, frames=64, stem_channels=8, channels=[8, 8], bottleneck_channels=8),
         "one poke would take 6.0 GiB of activations (64 frames at 1024 px); at most 2 GiB"),
    "the same with 16 channels (was: 'you tried to allocate 8589934592 bytes')":
        (config("paper-64", resolution=1024, frames=64, stem_channels=16, channels=[16, 16], bottleneck_channels=16),
         "GiB of activations (64 frames at 1024 px)"),
    "a flow model at 8 px with four levels of 8 channels (was: GroupNorm's ValueError)":
        (config("cpu-64", resolution=8, unet_channels=[8, 8, 8, 8]),
         "cannot run: its level 3 is a 1x1 map of 8 channels in GroupNorm groups of 1"),
    "the paper's model at 8 px with three stages":
        (changed(TINY, resolution=8, channels=[4, 4, 4]),
         "cannot run: its bottleneck is a 1x1 map, one value per channel for InstanceNorm"),
}


@pytest.mark.parametrize("case", list(COSTLY))
def test_a_model_too_costly_or_impossible_to_poke_is_one_line(root, tmp_path, case):  # noqa: F811
    cfg, words = COSTLY[case]
    checkpoint = costly_checkpoint(tmp_path / "costly.safetensors", cfg)
    started = time.monotonic()
    refused(["poke", "--checkpoint", str(checkpoint), "--image", str(root / "img.png"), "--source", "1", "1",
             "--target", "3", "3", "--out", "v.mp4"], tmp_path, f"{checkpoint} describes a model", words)
    assert time.monotonic() - started < 20       # was: 25-47 s and 7.5 GB for the first case


def test_the_app_refuses_a_model_it_cannot_poke_before_serving(tmp_path, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the app started serving"))  # was: a 500 per poke
    checkpoint = costly_checkpoint(tmp_path / "u8.safetensors", COSTLY[list(COSTLY)[2]][0])
    refused(["app", "--checkpoint", str(checkpoint), "--port", "1"], tmp_path, "GroupNorm groups of 1")


def test_one_poke_of_too_many_operations_is_refused():
    cfg = config("paper-64", frames=64, bottleneck_channels=2048)   # 0.6 GiB, 7 TFLOP (480 M weights: meta only)
    cost = poke_cost(on_meta(cfg), cfg)
    assert cost.peak_bytes < MAX_POKE_BYTES < cost.peak_bytes * 10 and cost.flops > MAX_POKE_FLOPS
    with pytest.raises(UserError, match=r"one poke would take 7\.0 TFLOP \(64 frames at 64 px\); at most 4 TFLOP"):
        check_poke_cost(cfg, on_meta(cfg))


@pytest.mark.parametrize("name", ["cpu-64", "paper-64", "paper-128"])
def test_every_preset_and_the_bundled_model_cost_little(name):
    cfg = model_config_for(name)
    cost = check_poke_cost(cfg, on_meta(cfg))
    assert cost.peak_bytes < MAX_POKE_BYTES / 10 and cost.flops < MAX_POKE_FLOPS / 10
    larger = changed(cfg, resolution=2 * cfg.resolution)
    bigger = poke_cost(on_meta(larger), larger)    # the dry run follows the sizes: every map takes 4 times the room
    assert 3.5 * cost.peak_bytes < bigger.peak_bytes < 4.5 * cost.peak_bytes and bigger.flops > 3.5 * cost.flops


SMALL = [("unet", 8, [8, 8, 8, 8]), ("unet", 8, [16, 16, 16, 16]), ("unet", 8, [3, 5, 7, 9]),
         ("unet", 8, [24, 48, 96, 1]), ("unet", 16, [8, 8, 8, 8, 8]), ("unet", 8, [8, 8, 8]), ("gru", 8, [4, 4, 4]), ("gru", 8, [4, 4]),
         ("gru", 16, [4, 4, 4, 4]), ("gru", 16, [4, 4, 4])]


@pytest.mark.parametrize("architecture, resolution, widths", SMALL)
def test_the_smallest_map_rule_is_what_pytorch_does(architecture, resolution, widths):
    """smallest_map_problem names a config exactly when a real model of it fails to poke."""
    if architecture == "unet":
        cfg = config("cpu-64", resolution=resolution, unet_channels=widths, frames=2)
    else:
        cfg = changed(TINY, resolution=resolution, channels=widths, levels=2, frames=2)
    model = build_model(cfg).eval()
    source = torch.zeros(1, 3, resolution, resolution)
    try:
        with torch.inference_mode():
            if architecture == "unet":
                model.forward_flows(source, torch.ones(1, 4), 2)
            else:
                model.predict(source, torch.zeros(1, 2, resolution, resolution), 2)
        fails = False
    except ValueError:
        fails = True
    assert (smallest_map_problem(cfg) is not None) == fails, smallest_map_problem(cfg)


def test_a_mirror_averaged_poke_is_counted_as_the_batch_of_two_it_runs():
    cfg = model_config_for("cpu-64")
    mirrored = changed(cfg, mirror_average=True)
    one, two = poke_cost(on_meta(cfg), cfg), poke_cost(on_meta(mirrored), mirrored)
    assert 1.9 * one.flops < two.flops < 2.1 * one.flops and two.peak_bytes > 1.5 * one.peak_bytes
