"""The generator: shapes at every preset, ablation switches, parameter groups, discriminators."""
import dataclasses

import pytest
import torch

from poke2video.errors import UserError
from poke2video.families import model_config_from_dict
from poke2video.gru_config import GRUModelConfig
from poke2video.model import PokeModel, build_model, count_parameters
from poke2video.model.discriminators import PatchDiscriminator, TemporalDiscriminator
from poke2video.preset import model_config_for
from model_support import small_gru_config

torch.set_num_threads(1)


def shrunk(cfg: GRUModelConfig, factor: int = 16) -> GRUModelConfig:
    """Same layout as `cfg` (levels, resolutions, blocks), channel widths divided by `factor`."""
    return dataclasses.replace(cfg, stem_channels=max(2, cfg.stem_channels // factor),
                               channels=[max(2, c // factor) for c in cfg.channels],
                               bottleneck_channels=max(2, cfg.bottleneck_channels // factor))


def run_forward(cfg: GRUModelConfig, batch: int = 1, steps: int = 3):
    torch.manual_seed(0)
    model = PokeModel(cfg)
    source = torch.rand(batch, 3, cfg.resolution, cfg.resolution) * 2 - 1
    poke_map = torch.zeros(batch, 2, cfg.resolution, cfg.resolution)
    poke_map[:, :, 10:13, 10:13] = 4.0
    video, states = model(source, poke_map, steps=steps)
    return model, source, video, states


def expected_level_shapes(cfg: GRUModelConfig, batch: int) -> list[tuple]:
    side = cfg.resolution // 2 ** len(cfg.channels)
    shapes = [(batch, cfg.bottleneck_channels, side, side)]
    for channels in reversed(cfg.channels):
        shapes.append((batch, channels, side, side))
        side *= 2
    return shapes[: cfg.levels]


@pytest.mark.parametrize("preset", ["small", "paper-64", "paper-128"])
def test_preset_shapes(preset):
    cfg = small_gru_config() if preset == "small" else shrunk(model_config_for(preset))
    model, source, video, states = run_forward(cfg, batch=2, steps=4)
    assert video.shape == (2, 4, 3, cfg.resolution, cfg.resolution)
    assert video.abs().max() <= 1.0
    assert len(states) == 4 and all(len(s) == cfg.levels for s in states)
    assert [tuple(t.shape) for t in states[-1]] == expected_level_shapes(cfg, 2)
    object_state = model.encode_object(source)
    assert [tuple(t.shape) for t in object_state] == expected_level_shapes(cfg, 2)
    assert model.decode(object_state).shape == source.shape


def test_paper_sizes_and_parameter_counts():
    paper64, paper128 = model_config_for("paper-64"), model_config_for("paper-128")
    assert expected_level_shapes(paper64, 1) == [(1, 512, 16, 16), (1, 256, 16, 16), (1, 128, 32, 32)]
    assert paper64.levels == 3 and paper128.levels == 4 and paper128.resolution == 128
    count = count_parameters(PokeModel(paper64))
    assert 37e6 < count < 42e6, count          # the authors' model: 39.1 M
    assert count_parameters(build_model(model_config_for("cpu-64"))) < count / 40


@pytest.mark.parametrize("change", [{"dynamics": "bottleneck_rnn"}, {"levels": 1}, {"levels": 2},
                                    {"dynamics": "bottleneck_rnn", "levels": 1}])
def test_ablations_build_run_and_train(change):
    cfg = small_gru_config(**change)
    model, _, video, states = run_forward(cfg, batch=2, steps=3)
    assert video.shape == (2, 3, 3, 64, 64)
    assert all(len(s) == cfg.levels for s in states)
    video.square().mean().backward()
    for group in ("object_encoder", "poke_encoder", "dynamics", "decoder"):
        grads = [p.grad for p in getattr(model, group).parameters()]
        assert all(g is not None for g in grads), group
        assert any(g.abs().sum() > 0 for g in grads), group


def test_bottleneck_rnn_has_three_cells_and_static_skips():
    cfg = small_gru_config(dynamics="bottleneck_rnn")
    model, source, _, states = run_forward(cfg)
    assert len(model.dynamics.cells) == 3
    encoded = model.encode_object(source)
    assert torch.equal(states[-1][1], encoded[1])
    assert not torch.allclose(states[-1][0], encoded[0])


def test_video_depends_on_poke():
    cfg = small_gru_config()
    model, source, video, _ = run_forward(cfg)
    other, _ = model(source, torch.zeros(1, 2, 64, 64), steps=3)
    assert (video - other).abs().max() > 1e-6  # untrained and without normalisation the poke's effect starts small


def test_config_round_trip_and_errors():
    cfg = model_config_for("paper-128")
    assert model_config_from_dict("gru", cfg.to_dict()) == cfg
    with pytest.raises(UserError, match="model.levels"):
        model_config_from_dict("gru", {"levels": 5})
    with pytest.raises(UserError, match="dynamics"):
        model_config_from_dict("gru", {"dynamics": "lstm"})
    with pytest.raises(UserError, match="unknown GRUModelConfig option"):
        model_config_from_dict("gru", {"width": 3})
    with pytest.raises(UserError, match="unknown GRUModelConfig option.*unet_channels"):   # the flow model's
        model_config_from_dict("gru", {"unet_channels": [8]})


def test_discriminators_return_logits_and_features():
    model_cfg = small_gru_config()
    cfg = model_cfg.discriminator
    frames = torch.rand(2, 3, 64, 64) * 2 - 1
    logits, features = PatchDiscriminator(model_cfg)(frames)
    assert logits.shape[:2] == (2, 1) and logits.shape[-1] > 1
    assert len(features) == cfg.patch_layers + 1
    video = torch.rand(2, 10, 3, 64, 64) * 2 - 1
    logits, features = TemporalDiscriminator(model_cfg)(video)
    assert logits.shape == (2,)
    assert len(features) == 5 and features[-1].shape[1] == 8 * cfg.temporal_channels
    features[-1].mean().backward()
