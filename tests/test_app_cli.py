"""`poke2video app` as a user starts it: binds 127.0.0.1, serves, stops on Ctrl-C; clear one-line errors."""
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from app_support import free_port, tiny_checkpoint
from poke2video import poker as poker_module


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors")


def start_app(*args):
    return subprocess.Popen([sys.executable, "-m", "poke2video", "app", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(url: str, process, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            return httpx.get(f"{url}/api/model", timeout=2).json()
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the app did not answer")


@pytest.mark.slow
def test_app_serves_on_loopback_and_stops_on_ctrl_c(checkpoint):
    port = free_port()
    process = start_app("--checkpoint", checkpoint, "--port", port)
    try:
        model = wait_ready(f"http://127.0.0.1:{port}", process)
        assert model["name"].endswith("model.safetensors") and model["frames"] == 3
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out


@pytest.mark.slow
def test_port_in_use_is_one_line(checkpoint):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = start_app("--checkpoint", checkpoint, "--port", taken.getsockname()[1])
        out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and err.strip().count("\n") == 0 and "--port" in err


@pytest.mark.parametrize("port, message", [("99999", "a port is 1 to 65535, got 99999"), ("0", "at least 1")])
def test_a_port_out_of_range_is_one_line(checkpoint, port, message):
    process = start_app("--checkpoint", checkpoint, "--port", port)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and message in err and err.strip().count("\n") == 0


@pytest.mark.slow
def test_missing_checkpoint_is_one_line(tmp_path):
    process = start_app("--checkpoint", tmp_path / "nope.safetensors", "--port", free_port())
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "nope.safetensors" in err and err.strip().count("\n") == 0


def test_no_bundled_model_is_one_line(tmp_path, monkeypatch, capsys):
    from poke2video import cli

    monkeypatch.setattr(poker_module, "DEFAULT_WEIGHTS", tmp_path / "missing.safetensors")
    assert cli.main(["app", "--port", str(free_port())]) == 2
    assert "no bundled default model" in capsys.readouterr().err


def test_the_app_names_a_bundled_model_by_its_name_and_a_file_by_its_folder(tmp_path, monkeypatch):
    from poke2video.app.server import model_name

    monkeypatch.chdir(tmp_path)
    assert model_name(None) == "bundled default model"
    assert model_name("from-video") == "bundled from-video model"
    assert model_name("runs/a/model.safetensors") == "a/model.safetensors"
    (tmp_path / "from-video").write_bytes(b"x")                # a file of that name is the user's own
    assert model_name("from-video") == "from-video"
