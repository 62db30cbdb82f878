"""Truncated, altered, missing and foreign checkpoints are caught on load: one line naming the file, exit 2.

Weights files (model.safetensors, the bundled model) carry a sha256 of their content in the safetensors
metadata, resume.pt under its key `sha256`; both are checked after loading.
"""
import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from poke2video import poker as poker_module
from poke2video.cli import main
from poke2video.errors import UserError
from poke2video.integrity import content_sha256
from poke2video.model import load_model
from poke2video.model.weights import WEIGHTS_VERSION, read_verified
from poke2video.train.checkpoint import load_resume_state
from poke2video.train.loop import train_run
from train_support import make_tiny_store, write_preset

# content_sha256 of the bundled model: the shipped file must hold exactly the tensors and metadata its training
# run wrote as its best.safetensors (the model card's command), bit for bit.
BUNDLED_SHA256 = "35d941deeb464e9652a8bbeca99ddf7dae756b987b51abf67f94da0967afe293"
# The from-video model's: its run's best.safetensors as the run wrote it (its card's commands).
FROM_VIDEO_SHA256 = "eb043c91e0dfb9b1343064c7fc6fc6ae423e07c28c3f6a0d305a700299ca21a6"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    store = make_tiny_store(root / "store")
    out = root / "run"
    train_run(str(store), str(out), str(write_preset(root / "p.yaml")), steps=2)
    return store, out


def copy_of(path, tmp_path):
    target = tmp_path / path.name
    target.write_bytes(path.read_bytes())
    return target


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def header_of(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata(), {name: f.get_tensor(name) for name in f.keys()}


def assert_one_line_error(call, path, match):
    with pytest.raises(UserError, match=match) as caught:
        call()
    message = str(caught.value)
    assert str(path) in message and "\n" not in message


# weights files --------------------------------------------------------------------------------------------

def test_a_saved_model_carries_its_digest_and_loads(run):
    _, out = run
    header, tensors = header_of(out / "model.safetensors")
    assert header["format_version"] == "3" and header["family"] == "gru"
    assert header["sha256"] == content_sha256({"family": header["family"], "model_config": header["model_config"],
                                               "metadata": header["metadata"], "tensors": tensors})
    assert load_model(out / "model.safetensors")[1]["step"] == 2


def test_a_flipped_byte_in_a_tensor_is_caught(run, tmp_path):
    path = copy_of(run[1] / "model.safetensors", tmp_path)
    header_length = struct.unpack("<Q", path.read_bytes()[:8])[0]
    flip_byte(path, 8 + header_length + (path.stat().st_size - 8 - header_length) // 2)
    assert_one_line_error(lambda: load_model(path), path, "does not match the sha256")


def test_altered_metadata_is_caught(run, tmp_path):
    header, tensors = header_of(run[1] / "model.safetensors")
    metadata = json.loads(header["metadata"])
    header["metadata"] = json.dumps({**metadata, "step": 2000}, sort_keys=True)  # the old sha256 stays
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata=header)
    assert_one_line_error(lambda: load_model(path), path, "does not match the sha256")


@pytest.mark.parametrize("keep", [0.3, 0.999])
def test_a_truncated_file_is_caught(run, tmp_path, keep):
    path = copy_of(run[1] / "model.safetensors", tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    assert_one_line_error(lambda: load_model(path), path, "not a readable safetensors file")


def test_missing_and_foreign_files(tmp_path):
    assert_one_line_error(lambda: load_model(tmp_path / "nope.safetensors"), tmp_path / "nope.safetensors",
                          "not found")
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"PK\x03\x04 a zip, not safetensors" * 10)
    assert_one_line_error(lambda: load_model(path), path, "not a readable safetensors file")


def test_version_1_files_without_digest_load_version_2_ones_must_have_it(run, tmp_path):
    header, tensors = header_of(run[1] / "model.safetensors")
    del header["sha256"]
    legacy = tmp_path / "legacy.safetensors"
    save_file(tensors, str(legacy), metadata={**header, "format_version": "1"})
    assert load_model(legacy)[1]["step"] == 2
    stripped = tmp_path / "stripped.safetensors"
    save_file(tensors, str(stripped), metadata=header)
    assert_one_line_error(lambda: load_model(stripped), stripped, "must carry its sha256")


def test_the_bundled_model_carries_the_digest_of_its_original_content():
    tensors, header = read_verified(poker_module.DEFAULT_WEIGHTS)  # recomputes and checks the digest
    assert header["sha256"] == BUNDLED_SHA256 and header["format_version"] == WEIGHTS_VERSION
    _, header = read_verified(poker_module.weights_path("from-video"))
    assert header["sha256"] == FROM_VIDEO_SHA256 and header["format_version"] == WEIGHTS_VERSION


def test_cli_poke_with_a_damaged_checkpoint_exits_2_with_one_line(run, tmp_path, capsys):
    path = copy_of(run[1] / "model.safetensors", tmp_path)
    flip_byte(path, path.stat().st_size - 3)
    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    code = main(["poke", "--checkpoint", str(path), "--image", str(image), "--source", "5", "5",
                 "--target", "8", "8", "--out", str(tmp_path / "out.gif")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(path) in err[0] and "sha256" in err[0]
    assert not (tmp_path / "out.gif").exists()


# resume.pt -----------------------------------------------------------------------------------------------

def run_copy(run_dir, tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "resume.pt", "model.safetensors"):
        copy_of(run_dir / name, tmp_path)
    return tmp_path


def test_resume_state_carries_its_digest(run):
    state = torch.load(run[1] / "resume.pt", weights_only=True)
    stored = state.pop("sha256")
    assert stored == content_sha256(state) and load_resume_state(run[1])["step"] == 2


def test_a_flipped_byte_in_a_resume_tensor_is_caught(run, tmp_path):
    out = run_copy(run[1], tmp_path)
    weights = load_resume_state(out)["model"]
    largest = max(weights.values(), key=lambda t: t.numel())
    offset = (out / "resume.pt").read_bytes().find(largest.numpy().tobytes())
    assert offset > 0
    flip_byte(out / "resume.pt", offset + 7)
    assert_one_line_error(lambda: load_resume_state(out), out / "resume.pt", "does not match the sha256")


def test_an_altered_resume_value_is_caught(run, tmp_path):
    out = run_copy(run[1], tmp_path)
    state = torch.load(out / "resume.pt", weights_only=True)
    torch.save({**state, "step": 3}, out / "resume.pt")  # its old sha256 kept
    assert_one_line_error(lambda: load_resume_state(out), out / "resume.pt", "does not match the sha256")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "legacy"])
def test_truncated_foreign_and_legacy_resume_files(run, tmp_path, damage):
    out = run_copy(run[1], tmp_path)
    path = out / "resume.pt"
    data = path.read_bytes()
    if damage == "legacy":  # written before the digest existed: loads unchecked
        state = torch.load(path, weights_only=True)
        del state["sha256"]
        torch.save(state, path)
        assert load_resume_state(out)["step"] == 2
        return
    path.write_bytes(data[: len(data) - 200] if damage == "truncate" else b"not a torch file\n" * 50)
    assert_one_line_error(lambda: load_resume_state(out), path, "damaged or unreadable")


def test_cli_resume_with_a_damaged_or_missing_state_exits_2_with_one_line(run, tmp_path, capsys):
    store, run_dir = run
    out = run_copy(run_dir, tmp_path / "run")
    flip_byte(out / "resume.pt", (out / "resume.pt").stat().st_size // 2)
    args = ["train", "--data", str(store), "--out", str(out), "--resume", "--steps", "3"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out / "resume.pt") in err[0]
    (out / "resume.pt").unlink()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{out / 'resume.pt'} is missing" in err[0]
