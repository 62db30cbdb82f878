"""Tiny models and servers shared by the demo and app tests (16 px, T = 3, a few thousand weights)."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import torch

from poke2video.gru_config import GRUModelConfig
from poke2video.model import PokeModel, save_model

T = 3
TINY = GRUModelConfig(resolution=16, stem_channels=4, channels=[4, 4], bottleneck_channels=4, levels=2, frames=T)


def tiny_checkpoint(path: Path, metadata: dict | None = None) -> Path:
    torch.manual_seed(0)
    save_model(path, PokeModel(TINY), {"step": 1} if metadata is None else metadata)
    return path


def hostile_checkpoint(path: Path, model_config: str, metadata: str = "{}") -> Path:
    """A weights file with the tiny model's tensors, the given config and metadata JSON strings, as stored, and
    a valid digest: what someone building a file to hurt would write."""
    from poke2video.model.weights import write_weights

    torch.manual_seed(0)
    tensors = {name: t.contiguous() for name, t in PokeModel(TINY).state_dict().items()}
    write_weights(path, tensors, "gru", model_config, metadata)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class GatedModel(PokeModel):
    """Returns the source frame T times, but only once `gate` is set; raises while `fail` is set."""

    gate = threading.Event()
    fail = False

    def forward(self, source_frame, poke_map, steps=None, poke=None):
        assert self.gate.wait(30)
        if self.fail:
            raise RuntimeError("boom")
        return source_frame[:, None].repeat(1, steps, 1, 1, 1), []


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1 in a background thread: `with ServerThread(app) as url: ...`."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
