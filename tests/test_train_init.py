"""train --init: a run starts from given weights, refuses another network, and resumes from the same bytes."""
import json

import pytest
import torch

from poke2video.errors import UserError
from poke2video.model import load_model
from poke2video.model.weights import save_model
from poke2video.train import checkpoint as ckpt
from poke2video.train.loop import train_run
from test_fuzz_cli import PROGRESS, run
from train_support import make_tiny_store, weights_of, write_flow_preset, write_preset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny store, a flow preset and a 3-step run whose weights later runs start from."""
    root = tmp_path_factory.mktemp("init")
    store = make_tiny_store(root / "store", gt_flow=True)
    preset = write_flow_preset(root / "p.yaml", lr=1e-4)
    train_run(str(store), str(root / "source"), str(preset), steps=3, seed=1)
    return store, preset, root / "source" / "model.safetensors"


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return sum(float((a[k] - b[k]).abs().sum()) for k in a)


def test_a_run_starts_from_the_weights_it_is_given(tmp_path, setup):
    store, preset, source = setup
    start = weights_of(load_model(source)[0])
    from_source = train_run(str(store), str(tmp_path / "init"), str(preset), steps=1, init=str(source))
    from_random = train_run(str(store), str(tmp_path / "random"), str(preset), steps=1)
    # one small step moves the weights a little: the started run stays near them, a random start does not
    assert distance(weights_of(from_source.model), start) < 0.01 * distance(weights_of(from_random.model), start)
    recorded = json.loads((tmp_path / "init" / "config.json").read_text())["init"]
    assert recorded == {"weights": str(source.resolve()), "sha256": ckpt.init_source(str(source))["sha256"]}
    assert json.loads((tmp_path / "random" / "config.json").read_text())["init"] is None
    assert from_source.step == 1            # the optimizer and the schedule start at step 0


def test_options_only_the_pipeline_reads_may_differ(tmp_path, setup):
    store, _, source = setup
    preset = write_flow_preset(tmp_path / "q.yaml", model={"drag_scale": 0.8, "mirror_average": True})
    train_run(str(store), str(tmp_path / "run"), str(preset), steps=1, init=str(source))
    assert load_model(tmp_path / "run" / "model.safetensors")[0].cfg.drag_scale == 0.8


def test_another_network_is_one_error_naming_what_differs(tmp_path, setup):
    store, _, source = setup
    wider = write_flow_preset(tmp_path / "wide.yaml", model={"time_basis": 4})
    with pytest.raises(UserError, match=r"differs from the preset's in model\.time_basis"):
        train_run(str(store), str(tmp_path / "wide"), str(wider), steps=1, init=str(source))
    gru = write_preset(tmp_path / "gru.yaml")
    with pytest.raises(UserError, match="a unet model; the preset's is gru"):
        train_run(str(make_tiny_store(tmp_path / "s")), str(tmp_path / "gru"), str(gru), steps=1, init=str(source))
    with pytest.raises(UserError, match="checkpoint not found: nonesuch"):
        train_run(str(store), str(tmp_path / "missing"), str(wider), steps=1, init="nonesuch")
    assert not (tmp_path / "wide" / "model.safetensors").exists()


def test_a_resumed_run_keeps_the_weights_it_started_from(tmp_path, setup):
    store, preset, source = setup
    run = tmp_path / "run"
    train_run(str(store), str(run), str(preset), steps=1, init=str(source))
    other = tmp_path / "other.safetensors"
    save_model(other, load_model(run / "model.safetensors")[0])
    with pytest.raises(UserError, match="started from .*keeps its own"):
        train_run(str(store), str(run), str(preset), steps=2, resume=True, init=str(other))
    assert train_run(str(store), str(run), str(preset), steps=2, resume=True, init=str(source)).step == 2


def test_a_run_killed_before_its_first_checkpoint_starts_again_from_the_same_weights(tmp_path, setup):
    store, preset, source = setup
    straight = train_run(str(store), str(tmp_path / "straight"), str(preset), steps=1, init=str(source))
    killed = tmp_path / "killed"
    train_run(str(store), str(killed), str(preset), steps=1, init=str(source))
    for name in ("resume.pt", "model.safetensors", "metrics.jsonl"):
        (killed / name).unlink()            # what a kill before the first checkpoint leaves: config.json
    resumed = train_run(str(store), str(killed), str(preset), steps=1, resume=True)
    assert distance(weights_of(resumed.model), weights_of(straight.model)) == 0


def test_the_command_line_starts_from_a_file_and_names_a_missing_one(tmp_path, setup):
    store, preset, source = setup
    code, _, err = run(["train", "--data", str(store), "--out", "bad", "--preset", str(preset), "--steps", "1",
                        "--init", "missing/model.safetensors"], tmp_path)
    lines = [line for line in err.splitlines() if not PROGRESS.search(line)]
    assert code == 2 and len(lines) == 1 and "missing/model.safetensors" in lines[0], err
    assert not (tmp_path / "bad" / "model.safetensors").exists()
    code, _, err = run(["train", "--data", str(store), "--out", "good", "--preset", str(preset), "--steps", "1",
                        "--init", str(source)], tmp_path)
    assert code == 0, err
    assert json.loads((tmp_path / "good" / "config.json").read_text())["init"]["weights"] == str(source.resolve())


def test_a_restart_refuses_start_weights_whose_bytes_changed(tmp_path, setup):
    store, preset, source = setup
    start = tmp_path / "start.safetensors"
    start.write_bytes(source.read_bytes())
    killed = tmp_path / "killed"
    train_run(str(store), str(killed), str(preset), steps=1, init=str(start))
    for name in ("resume.pt", "model.safetensors", "metrics.jsonl"):
        (killed / name).unlink()
    save_model(start, load_model(source)[0], {"name": "another"})     # the same tensors, other bytes
    with pytest.raises(UserError, match="changed since the run started from it"):
        train_run(str(store), str(killed), str(preset), steps=1, resume=True)
