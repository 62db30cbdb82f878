"""A full disk, however the writer reports it, is one line: `disk full while writing FILE`, and nothing is
left under the final name. numpy (`tofile`: "N requested and M written") and torch.save ("unexpected pos")
report a short write in words and without errno; `fsutil.is_disk_full` asks the file system then.

The commands run on a real small disk where this machine lets a test mount a tmpfs in a mount namespace of
its own (`unshare`), and through patched writers everywhere."""
import errno
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from poke2video import fsutil
from poke2video.errors import DiskFull, UserError
from poke2video.fsutil import atomic_path, is_disk_full, os_error_line
from test_fuzz_cli import PROGRESS, run
from train_support import make_tiny_store, write_preset

CLI = str(Path(sys.executable).with_name("poke2video"))
NUMPY_SHORT_WRITE = OSError("8110080 requested and 1044352 written")          # numpy's words, errno None
TORCH_SHORT_WRITE = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")


def namespace() -> list[str] | None:
    """A command prefix that runs a command in a mount namespace of its own where it may mount a tmpfs."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || "
                                "mount -t tmpfs -o size=64k tmpfs /tmp"], capture_output=True)
        if probe.returncode == 0:
            return prefix
    return None


def on_small_disk(tmp_path: Path, size: str, argv: list[str]) -> tuple[int, str, list[str]]:
    """Run `poke2video ARGV` with tmp_path/disk a tmpfs of `size`: (status, stderr, what is left on the disk)."""
    prefix = namespace()
    if prefix is None:
        pytest.skip("no mount namespace here to mount a small tmpfs in")
    disk, listing = tmp_path / "disk", tmp_path / "listing.txt"
    disk.mkdir()
    script = (f'mount -t tmpfs -o size={size} tmpfs "{disk}" && cd "{disk}" && "$@"; rc=$?; '
              f'find . -mindepth 1 | sort > "{listing}"; exit $rc')
    result = subprocess.run([*prefix, "sh", "-c", script, "sh", CLI, *argv], capture_output=True, text=True,
                            cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    left = listing.read_text().split() if listing.exists() else []
    return result.returncode, result.stderr, left


def one_disk_full_line(code: int, err: str, command: str, name: str) -> None:
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and not PROGRESS.search(line)]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"poke2video {command}: error: disk full while writing ") and name in lines[0], err


@pytest.mark.parametrize("size, name", [("200k", "run/resume.pt"), ("540k", "run/model.safetensors")])
def test_train_on_a_full_disk_names_the_checkpoint_and_leaves_none(tmp_path, size, name):
    """A tiny run's checkpoint takes about 460 KB for resume.pt, then 100 KB for model.safetensors."""
    store, preset = make_tiny_store(tmp_path / "data"), write_preset(tmp_path / "tiny.yaml")
    code, err, left = on_small_disk(tmp_path, size, ["train", "--data", str(store), "--preset", str(preset),
                                                     "--out", "run", "--steps", "2"])
    one_disk_full_line(code, err, "train", name)                 # was: torch.save's (safetensors') traceback
    assert f"./{name}" not in left and not any(".tmp-" in p for p in left), left


@pytest.mark.parametrize("command, size, name, final", [
    (["simulate", "--out", "sim", "--clips", "20", "--res", "32"], "1m", "sim.partial/videos/000000", "./sim"),
    (["simulate", "--out", "sim", "--clips", "20", "--res", "32", "--chunk-clips", "10", "--workers", "2"], "1m",
     "sim.partial/videos/00000", "./sim"),                        # raised in a worker process
    (["evaluate", "--checkpoint", "{checkpoint}", "--data", "{store}", "--out", "rep", "--lpips", "off", "--no-fvd",
      "--limit", "2", "--structure-clips", "0"], "100k", "rep/", "./rep"),
], ids=["simulate", "simulate in workers", "evaluate"])
def test_other_commands_on_a_full_disk_name_the_file(tmp_path, command, size, name, final):
    """simulate said "8110080 requested and 1044352 written"; evaluate named its report's temporary folder."""
    from eval_support import make_tiny_checkpoint, make_tiny_pokesim

    names = {"store": make_tiny_pokesim(tmp_path / "data", clips=10),
             "checkpoint": make_tiny_checkpoint(tmp_path / "model.safetensors")}
    code, err, left = on_small_disk(tmp_path, size, [a.format(**names) for a in command])
    one_disk_full_line(code, err, command[0], name)
    assert final not in left and ".tmp-" not in err and err.count("disk full") == 1


# The same through patched writers, which any machine can run ------------------------------------------------

def test_what_counts_as_a_full_disk(tmp_path, monkeypatch):
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path / "not" / "yet")
    monkeypatch.setattr(fsutil, "free_bytes", lambda where: 10**12)
    for short_write in (NUMPY_SHORT_WRITE, TORCH_SHORT_WRITE):     # with room left: another failure
        assert not is_disk_full(short_write, tmp_path)
    monkeypatch.setattr(fsutil, "free_bytes", lambda where: 4096)
    for short_write in (NUMPY_SHORT_WRITE, TORCH_SHORT_WRITE):
        assert is_disk_full(short_write, tmp_path)
    for other in (KeyboardInterrupt(), UserError("bad input"), OSError(errno.EACCES, "Permission denied")):
        assert not is_disk_full(other, tmp_path)                 # an interrupt, bad input, an errno of its own


@pytest.mark.parametrize("write, error", [
    (lambda path: np.save(path, np.zeros(10)), NUMPY_SHORT_WRITE),
    (lambda path: torch.save({"x": torch.zeros(3)}, path), TORCH_SHORT_WRITE),
], ids=["numpy", "torch"])
def test_a_short_write_on_a_full_disk_becomes_one_line_naming_the_output(tmp_path, monkeypatch, write, error):
    def full(*args, **kwargs):
        Path(args[0]).write_bytes(b"half")                       # what the library wrote before the disk ran out
        raise error

    monkeypatch.setattr(np, "save", full)
    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(fsutil, "free_bytes", lambda where: 0)
    with pytest.raises(DiskFull, match=f"^disk full while writing {tmp_path / 'out.bin'}$"):
        with atomic_path(tmp_path / "out.bin") as tmp:
            write(tmp)
    assert list(tmp_path.iterdir()) == []                        # neither the output nor its temporary


def test_a_full_disk_inside_a_folder_being_written_names_the_final_file(tmp_path, monkeypatch):
    monkeypatch.setattr(fsutil, "free_bytes", lambda where: 0)
    with pytest.raises(DiskFull) as caught:
        with atomic_path(tmp_path / "report") as folder:
            folder.mkdir()
            with atomic_path(folder / "plot.png"):
                raise NUMPY_SHORT_WRITE
    assert str(caught.value) == f"disk full while writing {tmp_path / 'report' / 'plot.png'}"
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_in_a_worker_process_reads_the_same():
    import pickle

    error = pickle.loads(pickle.dumps(DiskFull(Path("sim.partial/videos/000001"))))
    assert str(error) == "disk full while writing sim.partial/videos/000001" and isinstance(error, UserError)


def test_an_unguarded_full_disk_still_names_its_file():
    assert os_error_line(OSError(errno.ENOSPC, "No space left on device", "run/tb/events")) == \
        "disk full while writing run/tb/events"


def test_train_through_a_patched_torch_save(tmp_path, monkeypatch):
    """The probe's case without a small disk: train's first checkpoint meets a full disk in torch.save."""
    store, preset = make_tiny_store(tmp_path / "data"), write_preset(tmp_path / "tiny.yaml")

    def full(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise TORCH_SHORT_WRITE

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(fsutil, "free_bytes", lambda where: 0)
    code, _, err = run(["train", "--data", str(store), "--preset", str(preset), "--out", "run", "--steps", "2"],
                       tmp_path)
    one_disk_full_line(code, err, "train", "run/resume.pt")
    left = {p.name for p in (tmp_path / "run").iterdir()}
    assert "config.json" in left and not {"resume.pt", "model.safetensors"} & left
    assert not any(".tmp-" in n for n in left)
