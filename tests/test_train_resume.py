"""--resume continues bit for bit: after a clean stop, a crash, or Ctrl-C; and the CLI end to end."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from poke2video.errors import UserError
from poke2video.model import load_model
from poke2video.train.loop import Trainer, train_run
from poke2video.train.gru_steps import GRUStepRunner
from train_support import assert_same_weights, make_tiny_store, weights_of, write_preset

torch.set_num_threads(1)
STEPS = 6  # 12 training clips / batch 4 = 3 steps per epoch: the runs cross two epoch boundaries


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    store = make_tiny_store(root / "store")
    # GAN from step 1 and an lr decay at epoch 1, so discriminators, their optimizers and the schedule
    # are all part of what must come back.
    preset = write_preset(root / "p.yaml", gan={"start_step": 1, "patch_frames": 4}, lr_decay_epochs=[1])
    straight = train_run(str(store), str(root / "straight"), str(preset), steps=STEPS)
    return store, preset, straight


def full_state(trainer) -> dict[str, torch.Tensor]:
    """Every tensor of the trainer: model, discriminators and optimizer moments, flattened."""
    state = {f"model.{k}": v for k, v in weights_of(trainer.model).items()}
    state.update({f"disc.{k}": v for k, v in weights_of(trainer.runner.discriminators).items()})
    for name, optimizer in trainer.runner.optimizers.items():
        for index, slots in optimizer.state_dict()["state"].items():
            state.update({f"opt.{name}.{index}.{k}": v.clone() for k, v in slots.items()})
    return state


@pytest.mark.slow
def test_stop_then_resume_equals_an_uninterrupted_run(tmp_path, setup):
    store, preset, straight = setup
    first = train_run(str(store), str(tmp_path / "run"), str(preset), steps=2)
    assert first.step == 2
    resumed = train_run(str(store), str(tmp_path / "run"), "ignored-on-resume", steps=STEPS, resume=True)
    assert resumed.step == STEPS and resumed.epoch == straight.epoch
    assert_same_weights(full_state(resumed), full_state(straight))
    assert_same_weights(weights_of(load_model(tmp_path / "run" / "model.safetensors")[0]), weights_of(straight.model))


def _fail_at(monkeypatch, step_to_fail: int, action) -> None:
    original = GRUStepRunner.__call__

    def patched(self, batch, step):
        if step == step_to_fail:
            action()
        return original(self, batch, step)

    monkeypatch.setattr(GRUStepRunner, "__call__", patched)


def test_crash_then_resume_from_the_last_checkpoint(tmp_path, monkeypatch, setup):
    store, preset, straight = setup

    def crash():
        raise RuntimeError("simulated crash")

    _fail_at(monkeypatch, 4, crash)  # steps 1..4 done, checkpoint at 4 (checkpoint_every 2), dies in step 5
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_run(str(store), str(tmp_path / "run"), str(preset), steps=STEPS)
    monkeypatch.undo()
    resumed = train_run(str(store), str(tmp_path / "run"), str(preset), steps=STEPS, resume=True)
    assert_same_weights(full_state(resumed), full_state(straight))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    loss_steps = [r["step"] for r in rows if "loss/total" in r]
    assert loss_steps == list(range(1, STEPS + 1))  # no duplicates from the crashed attempt


def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(tmp_path, monkeypatch, setup):
    store, preset, straight = setup
    _fail_at(monkeypatch, 2, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        train_run(str(store), str(tmp_path / "run"), str(preset), steps=STEPS)
    monkeypatch.undo()
    assert load_model(tmp_path / "run" / "model.safetensors")[1]["step"] == 3  # the interrupted step finished
    resumed = train_run(str(store), str(tmp_path / "run"), str(preset), steps=STEPS, resume=True)
    assert_same_weights(full_state(resumed), full_state(straight))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "poke2video", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_train_command_end_to_end(tmp_path, setup):
    store, preset, _ = setup
    out = tmp_path / "run"
    done = run_cli("train", "--data", str(store), "--out", str(out), "--preset", str(preset), "--steps", "2")
    assert done.returncode == 0, done.stderr
    assert "train" in done.stderr  # the progress bar
    assert load_model(out / "model.safetensors")[1]["step"] == 2
    more = run_cli("train", "--data", str(store), "--out", str(out), "--resume", "--steps", "3")
    assert more.returncode == 0, more.stderr
    assert load_model(out / "model.safetensors")[1]["step"] == 3


def test_resume_with_no_run_yet_starts_one_so_a_restarted_command_can_repeat_it(tmp_path, setup):
    store, preset, straight = setup
    out = tmp_path / "run"
    first = train_run(str(store), str(out), str(preset), steps=2, resume=True)  # nothing there: a new run
    assert first.step == 2 and (out / "config.json").is_file()
    resumed = train_run(str(store), str(out), str(preset), steps=STEPS, resume=True)
    assert_same_weights(full_state(resumed), full_state(straight))
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("not a run")
    with pytest.raises(UserError, match="no resume state"):  # a folder with other things is not taken over
        train_run(str(store), str(tmp_path / "stray"), str(preset), steps=2, resume=True)


def test_kept_steps_survive_a_resume_and_match_the_run(tmp_path, setup):
    """train.keep_every: steps/step_STEP.safetensors for every kept step, across a stop and --resume; the
    last equals the run's model.safetensors, and a temporary a killed write left in steps/ is removed."""
    store, _, straight = setup
    assert not (straight.out / "steps").exists()  # off by default
    preset = write_preset(tmp_path / "p.yaml", keep_every=2)
    run = tmp_path / "run"
    train_run(str(store), str(run), str(preset), steps=4)
    stale = run / "steps" / ".step_0000006.safetensors.tmp-123"
    stale.write_bytes(b"half a file")
    train_run(str(store), str(run), str(preset), steps=STEPS, resume=True)
    kept = sorted(p.name for p in (run / "steps").iterdir())
    assert kept == ["step_0000002.safetensors", "step_0000004.safetensors", "step_0000006.safetensors"]
    for step in (2, 4, 6):
        assert load_model(run / "steps" / f"step_{step:07d}.safetensors")[1]["step"] == step
    last, latest = load_model(run / "steps" / "step_0000006.safetensors")[0], load_model(run / "model.safetensors")[0]
    assert_same_weights(weights_of(last), weights_of(latest))
    with pytest.raises(UserError, match="keep_every"):
        train_run(str(store), str(tmp_path / "bad"), str(write_preset(tmp_path / "bad.yaml", keep_every=-1)), steps=1)


def test_a_kill_right_after_a_checkpoint_loses_no_kept_step(tmp_path, monkeypatch, setup):
    """Killed as the checkpoint of step 4 is written: resume starts after step 4, so its kept weights must
    already be on disk."""
    store, _, _ = setup
    preset = write_preset(tmp_path / "p.yaml", keep_every=2)
    original = Trainer.save

    def save_then_die(self):
        original(self)
        if self.step == 4:
            raise RuntimeError("killed after the checkpoint")

    monkeypatch.setattr(Trainer, "save", save_then_die)
    with pytest.raises(RuntimeError, match="killed after the checkpoint"):
        train_run(str(store), str(tmp_path / "run"), str(preset), steps=STEPS)
    monkeypatch.undo()
    train_run(str(store), str(tmp_path / "run"), str(preset), steps=STEPS, resume=True)
    assert sorted(p.name for p in (tmp_path / "run" / "steps").iterdir()) == [
        "step_0000002.safetensors", "step_0000004.safetensors", "step_0000006.safetensors"]


def _rows(run) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("time", "perf/samples_per_s")} for row in rows]


def test_a_kill_after_the_closing_validation_line_logs_it_once_on_resume(tmp_path, setup):
    """The run ends at a step that is a checkpoint but not a validation: it checkpoints, then writes a
    closing validation line. Resuming a run killed after that line (here: one that finished, which is the
    same files) must not log that validation twice."""
    store, _, _ = setup
    preset = write_preset(tmp_path / "p.yaml", val_every=4)
    run = tmp_path / "run"
    train_run(str(store), str(run), str(preset), steps=STEPS)
    finished = _rows(run)
    assert [r["step"] for r in finished if "loss/total" not in r] == [4, STEPS]  # the closing validation is there
    train_run(str(store), str(run), str(preset), steps=STEPS, resume=True)
    assert _rows(run) == finished


def test_resuming_a_run_that_ended_off_the_checkpoint_grid_logs_its_closing_validation_once(tmp_path, setup):
    """A run ending at a step that is neither a checkpoint nor a validation step validates, then
    checkpoints; resuming it (as after a kill once both were written) adds nothing."""
    store, _, _ = setup
    preset = write_preset(tmp_path / "p.yaml", val_every=4)
    run = tmp_path / "run"
    train_run(str(store), str(run), str(preset), steps=STEPS - 1)
    finished = _rows(run)
    assert [r["step"] for r in finished if "loss/total" not in r] == [4, STEPS - 1]
    train_run(str(store), str(run), str(preset), steps=STEPS - 1, resume=True)
    assert _rows(run) == finished
