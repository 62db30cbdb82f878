"""The flow network as a `prepare --flow net` estimator (data/flow.py's FlowEstimator interface)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open

from poke2video.errors import UserError
from poke2video.flownet.model import STRIDE, FlowNet

BUNDLED_FLOW_NET = Path(__file__).resolve().parent.parent / "weights" / "flow_net.safetensors"


def load_flow_net(path: Path = BUNDLED_FLOW_NET) -> tuple[FlowNet, dict]:
    """The network and the config saved with its weights; UserError, in one line, when the file is missing or
    is not the flow network's."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"flow network weights {path} not found; `poke2video train-flow --out DIR` writes "
                        "DIR/flow_net.safetensors")
    try:
        with safe_open(str(path), "pt") as handle:
            config = json.loads((handle.metadata() or {}).get("config", "{}"))
        net = FlowNet()
        net.load_state_dict(load_file(str(path)))
    except (SafetensorError, RuntimeError, ValueError) as exc:
        raise UserError(f"{path}: not flow network weights ({' '.join(str(exc).split())[:160]})") from None
    return net.eval(), config


class NetFlow:
    """Flow from the trained network: frames are padded by their edge pixels to a multiple of its stride."""

    name = "net"
    max_side = 4096     # a 4096 px square frame takes several GB; prepare reads frames of a few hundred px

    def __init__(self, path: Path = BUNDLED_FLOW_NET):
        self.net, self.config = load_flow_net(path)

    @torch.no_grad()
    def __call__(self, frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
        height, width = frame_a.shape[:2]
        pad = [0, -width % STRIDE, 0, -height % STRIDE]

        def tensor(frame):
            image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()
            return F.pad(image, pad, mode="replicate")

        flow = self.net(tensor(frame_a), tensor(frame_b))[0, :, :height, :width]
        return np.ascontiguousarray(flow.numpy(), dtype=np.float32)
