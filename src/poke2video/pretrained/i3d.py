"""I3D (Kinetics-400), the network FVD compares videos with: the widely used PyTorch port of the TF-Hub I3D,
the TorchScript file `i3d_torchscript.pt` (no class needed: `torch.jit.load`)."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from poke2video.errors import WeightsUnavailable
from poke2video.pretrained.files import WeightFile, resolve_weights

I3D_WEIGHTS = WeightFile(
    "i3d_torchscript.pt", "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1", "--i3d-weights"
)


def load_i3d(path: str | Path | None = None) -> torch.jit.ScriptModule:
    """The TorchScript I3D from `path`, the torch hub cache, or one download; else WeightsUnavailable."""
    local = resolve_weights(I3D_WEIGHTS, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the file format is TorchScript
            model = torch.jit.load(str(local), map_location="cpu")
    except Exception as exc:  # a corrupt or foreign file raises many types; all mean "bad input"
        raise WeightsUnavailable(f"{local} ({I3D_WEIGHTS.option}) is not a TorchScript I3D file: {exc}") from exc
    return model.eval()
