"""What the checkpoint digests cost: save, load and verification times of model.safetensors and resume.pt.

    OMP_NUM_THREADS=1 python benchmarks/bench_checkpoint.py [--presets cpu-64,paper-64] [--repeats 5]

Per preset (random weights): the weights file as `save_model` writes it and `load_model` reads it (read,
verify, build the model), and a resume.pt holding the model plus the Adam moments of both stage
optimizers (`save_resume_state` / `load_resume_state`). "verify" is `content_sha256` alone over what was
loaded: the part of each load that the digest adds (a save computes it once too). Medians of --repeats.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from bench_prepare import median_seconds  # benchmarks/ is on sys.path when run as a script
from poke2video.gru_config import GRUTrainConfig
from poke2video.integrity import content_sha256
from poke2video.model import build_model, load_model, save_model
from poke2video.model.weights import read_verified
from poke2video.preset import model_config_for
from poke2video.train.checkpoint import RESUME_FILE, load_resume_state, save_resume_state
from poke2video.train.gru_steps import build_optimizers


def resume_state(model: torch.nn.Module) -> dict:
    """The model and its optimizers (a flow model's one, the paper model's two stages) with their Adam moments
    (one zero-gradient step)."""
    optimizers = ({"flow": torch.optim.Adam(model.parameters())} if model.cfg.family == "unet"
                  else build_optimizers(model, None, GRUTrainConfig()))
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    for optimizer in optimizers.values():
        optimizer.step()
    return {"step": 1, "model": model.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()}}


def bench_preset(preset: str, repeats: int, folder: Path) -> list[str]:
    model = build_model(model_config_for(preset))
    weights = folder / f"{preset}.safetensors"
    save = median_seconds(lambda: save_model(weights, model, {"step": 1}), repeats)
    load = median_seconds(lambda: load_model(weights), repeats)
    tensors, header = read_verified(weights)
    verify = median_seconds(lambda: content_sha256({"model_config": header["model_config"],
                                                    "metadata": header["metadata"], "tensors": tensors}), repeats)
    state = resume_state(model)
    run = folder / preset
    run.mkdir()
    save_state = median_seconds(lambda: save_resume_state(run, state), repeats)
    load_state = median_seconds(lambda: load_resume_state(run), repeats)
    verify_state = median_seconds(lambda: content_sha256(state), repeats)
    mib = lambda path: path.stat().st_size / 2**20  # noqa: E731
    return [f"| {preset} | model.safetensors | {mib(weights):.1f} | {save * 1e3:.1f} | {load * 1e3:.1f} | "
            f"{verify * 1e3:.1f} |",
            f"| {preset} | resume.pt | {mib(run / RESUME_FILE):.1f} | {save_state * 1e3:.1f} | "
            f"{load_state * 1e3:.1f} | {verify_state * 1e3:.1f} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="cpu-64,paper-64")
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in options.presets.split(","):
            rows += bench_preset(preset, options.repeats, Path(tmp))
    print("| preset | file | MiB | save ms | load ms (verified) | of which verify ms |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
