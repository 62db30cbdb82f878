"""Parameters and GFLOP per 10-frame video (batch 1) of each preset's generator, as a table.

    .venv/bin/python benchmarks/model_size.py [--presets cpu-64 paper-64 paper-128]

GFLOP are counted by torch.utils.flop_counter (2 per multiply-add) over encoders, dynamics and decoder.
"""
from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from poke2video.preset import model_config_for
from poke2video.model import build_model, count_parameters


def preset_size(preset: str) -> tuple[int, float]:
    cfg = model_config_for(preset)
    model = build_model(cfg).eval()
    source = torch.zeros(1, 3, cfg.resolution, cfg.resolution)
    poke_map = torch.zeros(1, 2, cfg.resolution, cfg.resolution)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(source, poke_map, steps=10, poke=torch.tensor([[30.0, 30.0, 4.0, 0.0]]))
    return count_parameters(model), counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cpu-64", "paper-64", "paper-128"])
    args = parser.parse_args()
    print("| preset | parameters (M) | GFLOP / 10-frame video |\n|---|---|---|")
    for preset in args.presets:
        params, gflop = preset_size(preset)
        print(f"| {preset} | {params / 1e6:.2f} | {gflop:.2f} |")


if __name__ == "__main__":
    main()
