"""Training: a step lowers the loss, every ablation trains, budgets, logs, run-directory rules, weights."""
import json

import numpy as np
import pytest
import torch

from poke2video.config import RETIRED, PokeConfig, load_preset_yaml
from poke2video.data.dataset import PokeDataset
from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video.model import PokeModel, load_model
from poke2video.preset import load_preset, preset_from_dict
from poke2video.train.checkpoint import read_run_config
from poke2video.train.distributed import DistContext
from poke2video.train.batch import Batch
from poke2video.train.gru_steps import GRUStepRunner
from poke2video.train.loop import train_run
from train_support import (RES, T, assert_same_weights, make_tiny_store, weights_of, write_flow_preset,
                           write_preset)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_tiny_store(tmp_path_factory.mktemp("data") / "store", gt_flow=True)


def fixed_batch(store_path, recipe) -> Batch:
    dataset = PokeDataset(Store.open(store_path), "train", poke=recipe.train.poke)
    return Batch.collate([dataset[i] for i in range(4)], torch.device("cpu"))


def evaluate_losses(runner: GRUStepRunner, batch: Batch) -> tuple[float, float]:
    """(stage-1 reconstruction of the source frames, reconstruction of the predicted clip)."""
    model = runner.model
    with torch.no_grad():
        frame_loss = runner.recon_loss(model.decode(model.encode_object(batch.source)), batch.source)
        video = model.predict(batch.source, batch.poke_map, steps=batch.target.shape[1]).video
        video_loss = runner.recon_loss(video.flatten(0, 1), batch.target.flatten(0, 1))
    return frame_loss.item(), video_loss.item()


@pytest.mark.parametrize("schedule", ["alternate", "single"])
def test_training_steps_reduce_the_loss_on_a_fixed_batch(tmp_path, store, schedule):
    recipe = load_preset(str(write_preset(tmp_path / "p.yaml", lr=3e-3, schedule=schedule)))
    torch.manual_seed(0)
    model = PokeModel(recipe.model)
    runner = GRUStepRunner(model, recipe.train, DistContext(), torch.Generator().manual_seed(0))
    batch = fixed_batch(store, recipe)
    frame_before, video_before = evaluate_losses(runner, batch)
    runner(batch, step=0)
    frame_after, video_after = evaluate_losses(runner, batch)
    assert video_after < video_before
    if schedule == "alternate":
        assert frame_after < frame_before


ABLATIONS = {
    "no_traj": ({}, {"traj_weight": 0.0}),
    "single_stage": ({}, {"schedule": "single"}),
    "sequential": ({}, {"schedule": "sequential", "stage1_steps": 1}),
    "bottleneck_rnn": ({"dynamics": "bottleneck_rnn", "levels": 1}, {}),
    "one_level": ({"levels": 1}, {}),
    "impulse": ({}, {"poke": {"poke_size": 3, "impulse": True}}),
    "bf16": ({}, {"bf16": True}),
    "gan": ({}, {"gan": {"start_step": 0, "patch_frames": 4}}),
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_each_switch_trains_and_writes_loadable_weights(tmp_path, store, name):
    model_changes, train_changes = ABLATIONS[name]
    preset = write_preset(tmp_path / "p.yaml", model=model_changes, **train_changes)
    trainer = train_run(str(store), str(tmp_path / "run"), str(preset), steps=2)
    assert trainer.step == 2
    assert torch.tensor(1e-40) * 1.0 != 0  # training flushes subnormals only while it runs (process-wide)
    loaded, metadata = load_model(tmp_path / "run" / "model.safetensors")
    assert_same_weights(weights_of(loaded), weights_of(trainer.model))
    assert all(torch.isfinite(t).all() for t in weights_of(loaded).values())
    assert metadata["step"] == 2
    if name == "impulse":
        assert metadata["impulse_scale"] == pytest.approx(trainer.dataset.impulse_scale) and metadata["impulse_scale"] > 0
    else:
        assert metadata["impulse_scale"] is None
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    if name == "gan":
        assert any("gan/d_patch" in row and "gan/feature_matching" in row for row in logged)


def test_logs_hold_every_scalar_validation_and_tensorboard_events(tmp_path, store):
    preset = write_preset(tmp_path / "p.yaml")
    train_run(str(store), str(tmp_path / "run"), str(preset), steps=4)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss/total" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    assert all({"loss/stage1_rec", "loss/dynamics_rec", "loss/traj", "perf/samples_per_s"} <= r.keys()
               for r in train_rows)
    val_rows = [r for r in rows if "val/psnr" in r]
    assert [r["step"] for r in val_rows] == [2, 4]
    assert all(np.isfinite(r["val/psnr"]) and r["val/endpoint_error"] >= 0 for r in val_rows)
    assert all(r["val/static_endpoint_error"] == pytest.approx(3.0) for r in val_rows)  # the store's flow
    events = list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_store_without_test_split_holds_back_the_end_of_train(tmp_path):
    store = make_tiny_store(tmp_path / "store", test_split=False)
    preset = write_preset(tmp_path / "p.yaml", val_clips=3)
    trainer = train_run(str(store), str(tmp_path / "run"), str(preset), steps=1)
    train_count = len(Store.open(store).clips("train"))
    assert len(trainer.train_positions) == train_count - 3
    assert trainer.train_positions.max() < train_count - 3
    assert len(trainer.validator.items) == 3


def test_step_budget_and_minute_budget(tmp_path, store):
    preset = write_preset(tmp_path / "p.yaml", steps=10**6, val_every=10**6, checkpoint_every=10**6)
    trainer = train_run(str(store), str(tmp_path / "timed"), str(preset), max_minutes=0.02)  # 1.2 s
    assert 1 <= trainer.step < 10**6  # the clock, not the step budget, ended it
    assert (tmp_path / "timed" / "model.safetensors").is_file() and (tmp_path / "timed" / "resume.pt").is_file()
    assert load_model(tmp_path / "timed" / "model.safetensors")[1]["step"] == trainer.step
    with pytest.raises(UserError, match="--max-minutes"):
        train_run(str(store), str(tmp_path / "bad"), str(preset), max_minutes=0)


def test_a_minute_budget_never_runs_past_the_last_step(tmp_path, store):
    """--max-minutes stops an invocation early; it does not stretch a run past its preset's steps or --steps."""
    preset = write_preset(tmp_path / "p.yaml", steps=3, val_every=10**6, checkpoint_every=10**6)
    assert train_run(str(store), str(tmp_path / "recipe"), str(preset), max_minutes=10).step == 3
    assert train_run(str(store), str(tmp_path / "given"), str(preset), steps=2, max_minutes=10).step == 2


def test_run_directory_rules(tmp_path, store):
    preset = write_preset(tmp_path / "p.yaml")
    train_run(str(store), str(tmp_path / "run"), str(preset), steps=1)
    with pytest.raises(UserError, match="not empty"):
        train_run(str(store), str(tmp_path / "run"), str(preset), steps=1)


def test_preset_and_store_must_agree(tmp_path, store):
    preset = write_preset(tmp_path / "p.yaml", model={"resolution": 64})
    with pytest.raises(UserError, match="px"):
        train_run(str(store), str(tmp_path / "run"), str(preset), steps=1)
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.parametrize("name", ["cpu-64", "paper-64", "paper-128"])
def test_shipped_presets_load_with_a_train_section(name):
    recipe = load_preset(name)
    assert recipe.model.resolution in (64, 128)
    if name.startswith("paper"):
        train = recipe.train
        assert (train.lr, train.batch_size, train.traj_weight, train.dynamics_rec_weight) == (1e-4, 10, 0.1, 5.0)
        assert train.recon_loss == "vgg" and train.gan.start_step == 4000 and train.lr_decay_epochs == [10, 25, 50]
        assert (train.gan.patch_r1, train.gan.temporal_gp, train.gan.feature_matching) == (1e-4, 0.1, 10.0)
    else:
        assert recipe.family == "unet" and recipe.train.flow_frames == "all"
        assert "gan" not in load_preset_yaml(name)["train"] and not hasattr(recipe.train, "gan")   # none to undo


def test_unknown_preset_keys_are_rejected(tmp_path):
    with pytest.raises(UserError, match="unknown GRUTrainConfig option"):
        load_preset(str(write_preset(tmp_path / "p.yaml", learning_rate=1.0)))
    with pytest.raises(UserError, match=r"unknown GRUTrainConfig option\(s\): moving_weight"):    # the flow model's
        load_preset(str(write_preset(tmp_path / "p.yaml", moving_weight=5.0)))
    with pytest.raises(UserError, match=r"unknown FlowTrainConfig option\(s\): traj_weight"):     # the GRU model's
        load_preset(str(write_flow_preset(tmp_path / "p.yaml", traj_weight=0.1)))
    with pytest.raises(UserError, match=r"unknown FlowModelConfig option\(s\): channels"):
        load_preset(str(write_flow_preset(tmp_path / "p.yaml", model={"channels": [8, 8]})))
    with pytest.raises(UserError, match="schedule"):
        load_preset(str(write_preset(tmp_path / "q.yaml", schedule="backwards")))


def test_a_run_config_holding_removed_options_loads_only_at_their_one_value(tmp_path):
    current = load_preset(str(write_preset(tmp_path / "p.yaml"))).to_dict()
    written_before = {"model": {**current["model"], **RETIRED["GRUModelConfig"][1]},
                      "train": {**current["train"], **RETIRED["TrainConfig"][1]}}
    assert {"norm", "output", "ema", "flow_weight"} <= set(written_before["model"]) | set(written_before["train"])

    def read_back(preset: dict):
        (tmp_path / "config.json").write_text(json.dumps({"preset": preset, "seed": 0, "data": "d", "val_data": None}))
        return read_run_config(tmp_path)[0]

    assert read_back(written_before) == preset_from_dict(current)
    for section, key, value in [("model", "output", "warp"), ("model", "bounded_state", True),
                                ("train", "ema", 0.9), ("train", "motion_weight", 1.0)]:
        changed = {**written_before, section: {**written_before[section], key: value}}
        with pytest.raises(UserError, match=f"config.json: {section}.{key} {value!r} is no longer supported"):
            read_back(changed)


@pytest.mark.parametrize("write, model, train, message", [
    (write_preset, {"levels": "3"}, {}, "ModelConfig.levels must be an integer, got '3'"),
    (write_flow_preset, {"unet_channels": True}, {}, "ModelConfig.unet_channels must be a list of integers, got True"),
    (write_preset, {"channels": [8, "a"]}, {}, "ModelConfig.channels must be a list of integers"),
    (write_preset, {"discriminator": 5}, {}, "ModelConfig.discriminator must be a mapping, got 5"),
    (write_preset, {}, {"betas": [0.5]}, "TrainConfig.betas must be a list of 2 numbers, got \\[0.5\\]"),
    (write_preset, {}, {"lr": None}, "TrainConfig.lr must be a number, got None"),
    (write_flow_preset, {}, {"lr": None}, "FlowTrainConfig.lr must be a number, got None"),
])
def test_wrongly_typed_preset_values_are_one_line_errors(tmp_path, capsys, write, model, train, message):
    from poke2video import cli

    preset = write(tmp_path / "p.yaml", model, **train)
    with pytest.raises(UserError, match=message):
        load_preset(str(preset))
    store = make_tiny_store(tmp_path / "store")
    assert cli.main(["train", "--data", str(store), "--out", str(tmp_path / "run"), "--preset", str(preset)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, message", [("model: 5\n", "Preset.model must be a mapping, got 5"),
                                           ("model:\ntrain: 3\n", "Preset.model must be a mapping, got None")])
def test_a_section_that_is_not_a_mapping_is_named(tmp_path, text, message):
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(UserError, match=message):
        load_preset(str(tmp_path / "p.yaml"))


def test_every_frame_flow_targets_come_from_the_stores_ground_truth(tmp_path, store):
    dataset = PokeDataset(store, "train", poke=PokeConfig(poke_size=3, background_fraction=0.0), flow_frames="all")
    last = PokeDataset(store, "train", poke=PokeConfig(poke_size=3, background_fraction=0.0))
    flows, last_flow = dataset[0][4], last[0][4]
    assert flows.shape == (T, 2, RES, RES) and last_flow.shape == (2, RES, RES)
    assert torch.equal(flows[-1], last_flow)                              # frame T is the clip's flow
    assert flows[0].abs().max() > 0 and torch.allclose(flows[0] * T, last_flow, atol=0.01)  # 1/T of the way
    background = PokeDataset(store, "train", poke=PokeConfig(poke_size=3, background_fraction=1.0), flow_frames="all")
    assert background[0][4].shape == (T, 2, RES, RES) and background[0][4].abs().max() == 0
    plain = make_tiny_store(tmp_path / "plain")              # frame T's flow only, from no flow method
    with pytest.raises(UserError, match="no flow of every frame"):
        PokeDataset(plain, "train", flow_frames="all")
    assert PokeDataset(plain, "train", flow_frames="auto").flow_frames == "last"
    assert PokeDataset(store, "train", flow_frames="auto").flow_frames == "all"
    with pytest.raises(UserError, match="train.flow_frames"):
        load_preset(str(write_preset(tmp_path / "bad.yaml", flow_frames="first")))


def test_in_memory_training_reads_the_same_clips(tmp_path, store):
    preset = write_preset(tmp_path / "p.yaml")
    on_disk = train_run(str(store), str(tmp_path / "disk"), str(preset), steps=2)
    in_memory = train_run(str(store), str(tmp_path / "ram"), str(preset), steps=2, in_memory=True)
    assert_same_weights(weights_of(on_disk.model), weights_of(in_memory.model))
    held = in_memory.dataset.store
    assert type(held.array(0, "frames")) is np.ndarray                  # not a memory map
    assert np.array_equal(held.array(0, "frames"), Store.open(store).array(0, "frames"))
