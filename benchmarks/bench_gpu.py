"""GPU training step time and memory of the presets: a few hundred real training iterations each.

    python benchmarks/bench_gpu.py [--steps 300] [--presets paper-64 paper-128 cpu-64] [--precisions fp32 bf16]
                                   [--gan off on] [--device cuda]

Each row runs the preset's own iteration (stage 1 + stage 2 with its reconstruction loss; the paper
presets' VGG19 loss with untrained weights, which costs the same as the published ones) on a synthetic
batch of the preset's batch size, fp32 and bf16 autocast, without and with the discriminators (which the
paper presets switch on at step 4000). Printed: median ms per iteration over `--steps` iterations after
10 warm-up ones, samples/s, peak GPU memory (torch.cuda.max_memory_allocated), and ms per 10-frame video
at batch 1 (inference).
"""
from __future__ import annotations

import argparse
import dataclasses

import torch
from bench_model import _synthetic_batch, bench_recipe  # benchmarks/ is on sys.path when run as a script
from bench_prepare import median_seconds

from poke2video.model import build_model, count_parameters
from poke2video.pretrained.perceptual import vgg19_loss_features
from poke2video.train import losses
from poke2video.train.distributed import DistContext
from poke2video.train.loop import make_step_runner


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(run, repeats: int, device: torch.device, warmup: int = 10) -> float:
    """`median_seconds` in ms, each call ending with a device sync so that it times the GPU work."""
    def synced():
        run()
        _sync(device)
    _sync(device)
    return 1000 * median_seconds(synced, repeats, warmup=warmup)


def measure(preset: str, bf16: bool, gan: bool, steps: int, device: torch.device) -> dict:
    recipe = bench_recipe(preset, bf16, gan)
    train = recipe.train
    if recipe.family == "gru" and train.recon_loss == "vgg":
        losses.make_reconstruction_loss = lambda cfg: losses.PerceptualLoss(vgg19_loss_features())
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    model = build_model(recipe.model).to(device)
    res, frames = recipe.model.resolution, recipe.model.frames
    batch = _synthetic_batch(res, frames, train.batch_size)
    batch = type(batch)(*(getattr(batch, f.name).to(device) for f in dataclasses.fields(batch)))
    runner = make_step_runner(model, train, DistContext(device=device), torch.Generator().manual_seed(0))
    step_ms = _median_ms(lambda: runner(batch, step=10**6), steps, device)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    one = _synthetic_batch(res, frames, 1)
    source, poke_map, poke = one.source.to(device), one.poke_map.to(device), one.poke[:, :4].to(device)
    model.eval()

    def infer():
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            model(source, poke_map, steps=frames, poke=poke)

    video_ms = _median_ms(infer, 50, device)
    return {"preset": preset, "bf16": bf16, "gan": gan, "params_m": count_parameters(model) / 1e6,
            "batch": train.batch_size, "step_ms": step_ms, "samples_per_s": 1000 * train.batch_size / step_ms,
            "peak_mib": peak, "video_ms": video_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["paper-64", "paper-128", "cpu-64"])
    parser.add_argument("--steps", type=int, default=300, help="timed iterations per row")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--gan", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {name}, {args.steps} timed iterations per row (median)")
    print("| preset | bf16 | GAN | params (M) | batch | ms / iteration | samples/s | peak GPU MiB | ms / video (b1) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in args.presets:
        for bf16 in (p == "bf16" for p in args.precisions):
            for gan in (g == "on" for g in args.gan):
                r = measure(preset, bf16, gan, args.steps, device)
                print(f"| {r['preset']} | {r['bf16']} | {r['gan']} | {r['params_m']:.2f} | {r['batch']} | "
                      f"{r['step_ms']:.1f} | {r['samples_per_s']:.1f} | {r['peak_mib']:.0f} | {r['video_ms']:.1f} |",
                      flush=True)


if __name__ == "__main__":
    main()
