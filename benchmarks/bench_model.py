"""Speed of the generator: ms per 10-frame video at batch 1, training samples/s, peak memory.

    .venv/bin/python benchmarks/bench_model.py [--repeats 20] [--presets cpu-64 paper-64]

Each (preset, precision) is measured in its own subprocess so that its peak RSS (ru_maxrss) is its own.
Training steps run the preset's real iteration (stage 1 + stage 2, its reconstruction loss; the paper
presets' VGG19 loss with untrained weights, which costs the same) on a synthetic batch, without the
discriminators (they join at step 4000 in the paper presets; `--gan` adds them). Data loading is not
included: the training log's perf/samples_per_s is the end-to-end figure. Medians over repeats; the
paper-64 rows are also given as a ratio to cpu-64 measured in the same run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys

import torch
from bench_prepare import median_seconds  # benchmarks/ is on sys.path when run as a script


def _synthetic_batch(resolution: int, frames: int, size: int):
    from poke2video.train.batch import Batch

    g = torch.Generator().manual_seed(0)
    source = torch.rand(size, 3, resolution, resolution, generator=g) * 2 - 1
    poke_map = torch.zeros(size, 2, resolution, resolution)
    poke_map[:, :, 30:33, 30:33] = 4.0
    target = torch.rand(size, frames, 3, resolution, resolution, generator=g) * 2 - 1
    flows = torch.zeros(size, frames, 2, *source.shape[2:])      # every frame's flow (what a flow model reads)
    return Batch(source, poke_map, target, torch.zeros(size, 5), flows)


def bench_recipe(preset: str, bf16: bool, gan: bool):
    """The preset with bf16 autocast on or off and, for the paper's model, its critics from step 0 or off (a
    flow model has none)."""
    from poke2video.preset import load_preset

    recipe = load_preset(preset)
    changes = {"bf16": bf16}
    if recipe.family == "gru":
        changes["gan"] = dataclasses.replace(recipe.train.gan, start_step=0 if gan else -1)
    return recipe._replace(train=dataclasses.replace(recipe.train, **changes))


def measure(preset: str, bf16: bool, repeats: int, train_batch: int | None, gan: bool) -> dict:
    """One configuration, in this process: inference ms/video and training samples/s."""
    from poke2video.model import build_model, count_parameters
    from poke2video.train import losses
    from poke2video.train.distributed import DistContext
    from poke2video.train.loop import make_step_runner

    torch.set_flush_denormal(True)  # as training does
    recipe = bench_recipe(preset, bf16, gan)
    train = recipe.train
    if recipe.family == "gru" and train.recon_loss == "vgg":  # costs what the real weights, absent here, cost
        from poke2video.pretrained.perceptual import vgg19_loss_features

        losses.make_reconstruction_loss = lambda cfg: losses.PerceptualLoss(vgg19_loss_features())
    torch.manual_seed(0)
    model = build_model(recipe.model)
    frames, res = recipe.model.frames, recipe.model.resolution
    one = _synthetic_batch(res, frames, 1)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def infer():
        with torch.inference_mode(), autocast:
            model(one.source, one.poke_map, steps=frames, poke=one.poke[:, :4])

    model.eval()
    ms_per_video = median_seconds(infer, repeats, warmup=2) * 1000
    model.train()
    size = train_batch or train.batch_size
    batch = _synthetic_batch(res, frames, size)
    runner = make_step_runner(model, train, DistContext(), torch.Generator().manual_seed(0))
    step_s = median_seconds(lambda: runner(batch, step=10**6), max(3, repeats // 4), warmup=1)
    return {"preset": preset, "bf16": bf16, "params_m": count_parameters(model) / 1e6,
            "ms_per_video": ms_per_video, "train_batch": size, "samples_per_s": size / step_s,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run_worker(preset: str, bf16: bool, args) -> dict:
    command = [sys.executable, __file__, "--worker", preset, "--repeats", str(args.repeats)]
    command += ["--bf16"] if bf16 else []
    command += ["--gan"] if args.gan else []
    if preset.startswith("paper"):
        command += ["--train-batch", str(args.paper_batch), "--repeats", str(max(3, args.repeats // 4))]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cpu-64", "paper-64"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--paper-batch", type=int, default=2, help="training batch for paper presets (time)")
    parser.add_argument("--bf16-presets", nargs="*", default=["cpu-64"], help="presets also measured with bf16")
    parser.add_argument("--gan", action="store_true", help="include the discriminators in the training step")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--train-batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.bf16, args.repeats, args.train_batch, args.gan)))
        return
    rows = {(p, bf16): _run_worker(p, bf16, args) for p in args.presets for bf16 in (False, True)
            if not bf16 or p in args.bf16_presets}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, gan={'on' if args.gan else 'off'}")
    print("| preset | bf16 | params (M) | ms / 10-frame video (b1) | train batch | train samples/s | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows.values():
        print(f"| {r['preset']} | {r['bf16']} | {r['params_m']:.2f} | {r['ms_per_video']:.1f} | {r['train_batch']} "
              f"| {r['samples_per_s']:.2f} | {r['peak_rss_mib']:.0f} |")
    base = rows.get(("cpu-64", False))
    for (preset, bf16), other in rows.items():
        if base is not None and preset != "cpu-64" and not bf16:
            print(f"{preset} / cpu-64: {other['ms_per_video'] / base['ms_per_video']:.1f}x the ms per video, "
                  f"{base['samples_per_s'] / other['samples_per_s']:.1f}x fewer training samples/s")
        if bf16 and (preset, False) in rows:
            fp32 = rows[(preset, False)]
            print(f"{preset} bf16 autocast speedup: training {other['samples_per_s'] / fp32['samples_per_s']:.2f}x, "
                  f"inference {fp32['ms_per_video'] / other['ms_per_video']:.2f}x")

if __name__ == "__main__":
    main()
