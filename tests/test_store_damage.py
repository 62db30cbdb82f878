"""Damaged stores through the command line: train, evaluate and verify stop with one line naming the file."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from poke2video.data.store import verify_store
from poke2video.errors import UserError
from train_support import make_tiny_store


def truncate(store: Path) -> str:
    frames = store / "videos/000001/frames.npy"
    frames.write_bytes(frames.read_bytes()[:-7])
    return r"videos/000001/frames.npy is damaged or truncated \(\d+ bytes where its header needs \d+\)"


def append(store: Path) -> str:
    with open(store / "videos/000000/motion.npy", "ab") as f:
        f.write(b"\0" * 4)
    return r"videos/000000/motion.npy is damaged or truncated"


def remove(store: Path) -> str:
    (store / "videos/000000/flow.npy").unlink()
    return r"videos/000000/flow.npy is missing"


def cut_manifest(store: Path) -> str:
    manifest = store / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:200])
    return r"manifest.json is damaged: not valid JSON"


def reshape_manifest(store: Path) -> str:
    manifest = json.loads((store / "manifest.json").read_text())
    del manifest["videos"][1]["dir"]
    (store / "manifest.json").write_text(json.dumps(manifest))
    return r"manifest.json is damaged: unexpected content \(KeyError: 'dir'\)"


def escape(store: Path) -> str:
    """Video 1's folder in the manifest points into another, intact store beside this one."""
    make_tiny_store(store.parent / "other")
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["videos"][1]["dir"] = "../other/videos/000001"
    (store / "manifest.json").write_text(json.dumps(manifest))
    return r"video 1 \(square1\): the manifest names '../other/videos/000001', which is not a path inside the store"


def alter(store: Path) -> str:
    frames = store / "videos/000000/frames.npy"
    data = bytearray(frames.read_bytes())
    data[len(data) // 2] ^= 0x01
    frames.write_bytes(bytes(data))
    return r"videos/000000/frames.npy was altered \(sha256 differs from the manifest\)"


def run(*args, cwd):
    cli = Path(sys.executable).with_name("poke2video")
    return subprocess.run([str(cli), *args], cwd=cwd, capture_output=True, text=True)


def assert_one_line(result, command: str, pattern: str) -> None:
    """Exit status 2 and one error line, the last one (progress bars may come before it)."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.replace("\r", "\n").strip().splitlines()
    errors = [line for line in lines if "error" in line]
    assert errors == lines[-1:] and errors[0].startswith(f"poke2video {command}: error: "), result.stderr
    assert re.search(pattern, errors[0]), errors[0]


# Each damage once through train or evaluate (both open the store the same way: Store.open, which checks
# sizes and shapes; an altered byte of the same size needs the sha256 of `verify`, below).
@pytest.mark.parametrize("damage, command", [(truncate, "train"), (remove, "evaluate"), (cut_manifest, "train"),
                                             (reshape_manifest, "evaluate"), (escape, "train")])
@pytest.mark.slow
def test_train_and_evaluate_refuse_a_damaged_store(tmp_path, damage, command):
    pattern = damage(make_tiny_store(tmp_path / "data"))
    args = ["--data", "data", "--out", "out"] + (["--steps", "1"] if command == "train" else ["--no-fvd"])
    assert_one_line(run(command, *args, cwd=tmp_path), command, pattern)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage", [truncate, append, remove, cut_manifest, reshape_manifest, escape, alter])
def test_verify_names_the_damage(tmp_path, damage):
    pattern = damage(make_tiny_store(tmp_path / "data"))
    assert_one_line(run("verify", "data", cwd=tmp_path), "verify", pattern)


def test_verify_passes_an_intact_store_and_reports_what_it_read(tmp_path, capsys):
    store = make_tiny_store(tmp_path / "data")
    summary = verify_store(store)
    assert summary["videos"] == 2 and summary["files"] == 8
    assert summary["bytes"] == sum(p.stat().st_size for p in store.rglob("*.npy"))
    assert "every sha256 matches the manifest" in capsys.readouterr().out
    alter(store)
    with pytest.raises(UserError, match="altered"):
        verify_store(store)
