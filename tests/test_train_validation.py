"""`train --val-data`: validation on a store of its own, and best.safetensors picked there, across resumes."""
import json

import numpy as np
import pytest
import torch

from poke2video.cli import main
from poke2video.data.dataset import PokeDataset
from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video.model import load_model
from poke2video.model.weights import read_header
from poke2video.train.loop import train_run
from train_support import assert_same_weights, make_tiny_store, weights_of, write_preset

torch.set_num_threads(1)
STEPS = 6  # TINY_TRAIN validates every 2 steps: 3 validations


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("validation")
    store = make_tiny_store(root / "store", test_split=False)     # alone, it would hold its last clips back
    val_store = make_tiny_store(root / "val", videos=3)
    preset = write_preset(root / "p.yaml")
    straight = train_run(str(store), str(root / "straight"), str(preset), steps=STEPS, val_data=str(val_store))
    return store, val_store, preset, straight, root / "straight"


def validations(run) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if "val/endpoint_error" in line]


def test_val_data_scores_the_other_store_and_holds_nothing_back(setup, tmp_path):
    store, val_store, preset, straight, _ = setup
    assert len(straight.train_positions) == len(straight.dataset)            # every training clip trains
    val_clips = PokeDataset(Store.open(val_store), "train", poke=straight.cfg.poke)
    val_clips.set_epoch(0)
    expected = [val_clips[i] for i in (0, len(val_clips) - 1)]                 # 2 clips spread over its train split
    assert all(np.array_equal(got[0], want[0]) and np.array_equal(got[3], want[3])
               for got, want in zip(straight.validator.items, expected, strict=True))
    own = train_run(str(store), str(tmp_path / "own"), str(preset), steps=1)
    assert len(own.train_positions) == len(own.dataset) - 2                  # the held-back slice
    assert not (tmp_path / "own" / "best.safetensors").exists()              # no best picked on own clips


def test_best_weights_are_those_of_the_lowest_validation_score(setup):
    *_, straight, run = setup
    scores = validations(run)
    assert [line["step"] for line in scores] == [2, 4, 6]
    best = min(scores, key=lambda line: line["val/endpoint_error"])           # the first of equal ones
    _, metadata = read_header(run / "best.safetensors")
    assert metadata["step"] == best["step"] == straight.best["step"]
    assert metadata["validation"]["val/endpoint_error"] == pytest.approx(best["val/endpoint_error"])
    best_weights = weights_of(load_model(run / "best.safetensors")[0])
    last_weights = weights_of(straight.model)
    same = all(torch.equal(best_weights[name], last_weights[name]) for name in best_weights)
    assert same == (best["step"] == STEPS)                                 # the last weights only if best at the end
    assert json.loads((run / "config.json").read_text())["val_data"].endswith("val")


def test_resume_keeps_the_validation_store_and_the_best_so_far(setup, tmp_path):
    store, val_store, preset, straight, run = setup
    train_run(str(store), str(tmp_path / "run"), str(preset), steps=3, val_data=str(val_store))
    resumed = train_run(str(store), str(tmp_path / "run"), "ignored-on-resume", steps=STEPS, resume=True)
    assert resumed.best == straight.best
    assert_same_weights(weights_of(load_model(tmp_path / "run" / "best.safetensors")[0]),
                        weights_of(load_model(run / "best.safetensors")[0]))
    with pytest.raises(UserError, match="validates on .*val"):
        train_run(str(store), str(tmp_path / "run"), "x", steps=STEPS + 1, resume=True, val_data=str(store))


def test_val_data_must_match_the_model_and_exist(setup, tmp_path, capsys):
    store, _, preset, _, _ = setup
    assert main(["simulate", "--out", str(tmp_path / "sim64"), "--clips", "2", "--res", "64"]) == 0
    with pytest.raises(UserError, match="sim64 is 64 px but the preset's model is 32 px"):   # the val store's size
        train_run(str(store), str(tmp_path / "a"), str(preset), steps=1, val_data=str(tmp_path / "sim64"))
    assert not (tmp_path / "a" / "config.json").exists()
    code = main(["train", "--data", str(store), "--out", str(tmp_path / "b"), "--preset", str(preset),
                 "--steps", "1", "--val-data", str(tmp_path / "missing")])
    assert code != 0 and "missing" in capsys.readouterr().err
    assert not (tmp_path / "b" / "config.json").exists()


def test_a_flow_model_is_validated_and_picked_on_its_flows(tmp_path_factory):
    """A flow model on PokeSim: flow error on object pixels (moving and still apart), moving IoU, and the
    error of no motion beside them; best.safetensors is the step with the lowest flow error."""
    from poke2video.sim.generate import simulate_dataset

    root = tmp_path_factory.mktemp("flowval")
    train_store = simulate_dataset(root / "train", clips=20, seed=1)
    val_store = simulate_dataset(root / "val", clips=20, seed=2)
    preset = root / "unet.yaml"
    preset.write_text("model: {architecture: unet, unet_channels: [8, 16], time_basis: 2}\n"
                      "train: {batch_size: 4, lr: 0.003, "
                      "poke: {source: sim}, val_every: 2, val_clips: 12, log_every: 1, checkpoint_every: 2}\n")
    trainer = train_run(str(train_store), str(root / "run"), str(preset), steps=4, val_data=str(val_store))
    rows = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    scores = [row for row in rows if "val/flow_error" in row]
    assert not any("val/endpoint_error" in row for row in rows)           # a flow model is not tracked
    assert [row["step"] for row in scores] == [2, 4]
    for row in scores:
        assert 0 <= row["val/moving_iou"] <= 1 and row["val/static_flow_error"] > 0
        assert row["val/flow_error_still"] < row["val/flow_error_moving"]
    best = min(scores, key=lambda row: row["val/flow_error"])
    metadata = read_header(root / "run" / "best.safetensors")[1]
    assert metadata["step"] == best["step"] == trainer.best["step"] and metadata["flow_frames"] == "all"
