"""SIGKILL `poke2video train` (the real command, in a subprocess) during checkpoint writes and at a seeded
random moment, resume each time, and end bit for bit where an uninterrupted run ends: the same
model.safetensors content (tensors and metadata), the same resume state (weights, optimizer moments,
step, epoch, RNG) and the same metrics.jsonl rows (wall-clock values aside). The long form with many
kills: `python tests/train_fault_support.py` (same code).
"""
import random
import signal

import pytest

from poke2video.fsutil import stale_temporaries
from poke2video.train.checkpoint import RESUME_FILE, WEIGHTS_FILE
from poke2video.train.loop import train_run
from train_fault_support import attempt, differences, train_args
from train_support import make_tiny_store, write_preset

pytestmark = pytest.mark.slow
STEPS = 8  # 12 training clips / batch 4 = 3 steps per epoch; a checkpoint every 2 steps
KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    store = make_tiny_store(root / "store")
    # GAN from step 1 and an lr decay at epoch 1: discriminators, their optimizers and the schedule must
    # come back too. Validation every 3 steps, so validations and checkpoints do not coincide.
    preset = write_preset(root / "p.yaml", gan={"start_step": 1, "patch_frames": 4}, lr_decay_epochs=[1],
                          val_every=3)
    train_run(str(store), str(root / "straight"), str(preset), steps=STEPS)
    return store, preset, root / "straight"


def test_killed_in_checkpoint_writes_and_at_random_resumes_bit_for_bit(tmp_path, setup):
    store, preset, straight = setup
    run = tmp_path / "run"
    args = lambda: train_args(store, run, preset, STEPS)  # noqa: E731  (--resume once config.json exists)

    # 1. Killed in its first checkpoint (step 2), resume.pt written to its temporary but not renamed.
    first = attempt(args(), run, "hook", kill_before_rename=f"{RESUME_FILE}:1")
    assert first.returncode == KILLED
    assert not (run / RESUME_FILE).exists() and first.window.startswith("temporary left: .resume.pt.tmp-")
    assert ";" not in first.window  # nothing else

    # 2. Resumed from step 0 (no checkpoint yet); killed in its second checkpoint (step 4) after resume.pt
    #    was renamed and before model.safetensors was: the export is one checkpoint behind.
    second = attempt(args(), run, "hook", kill_before_rename=f"{WEIGHTS_FILE}:2")
    assert second.returncode == KILLED
    assert second.window.startswith("temporary left: .model.safetensors.tmp-")
    assert second.window.endswith("; export at step 2, resume.pt at step 4")
    assert [p.name for p in stale_temporaries(run)] == [second.window.split()[2].rstrip(";")]  # the first one went

    # 3. Resumed from step 4, killed at a seeded moment after step 5, 6 or 7 (or it finishes first).
    rng = random.Random(7)
    attempt(args(), run, "random", kill_at=(rng.randint(5, STEPS - 1), rng.uniform(0.0, 0.3)))

    # 4. Resumed to the end.
    last = attempt(args(), run, "to the end")
    assert last.returncode == 0
    assert differences(run, straight) == []
    assert stale_temporaries(run) == []
