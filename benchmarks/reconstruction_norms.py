"""Stage-1 reconstruction (object encoder + decoder alone) of PokeSim frames under each `model.norm`.

    python benchmarks/reconstruction_norms.py --data data/pokesim64 --steps 300

Trains each variant of the preset for the same steps (batch 20, Adam 1e-3, the l1_gradient loss, one
thread) and prints the PSNR of held-out test frames.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from poke2video.config import load_preset
from poke2video.data.store import Store
from poke2video.model import PokeModel
from poke2video.train.losses import l1_gradient_loss


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1  # [B, 3, H, W]


def frames_of(store: Store, split: str, count: int) -> np.ndarray:
    """`count` frames spread over the clips of `split` (uint8 [count, H, W, 3])."""
    clips = store.clips(split)
    picks = np.linspace(0, len(clips) - 1, count).round().astype(int)
    return np.stack([store.frames(int(v))[int(store.starts(int(v))[int(r)]) + k % (store.clip_length + 1)]
                     for k, (v, r) in enumerate(clips[picks])])


def train_and_score(preset: str, norm: str, train_frames, test_frames, steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    model = PokeModel(dataclasses.replace(load_preset(preset).model, norm=norm))
    params = [*model.object_encoder.parameters(), *model.decoder.parameters()]
    optimizer = torch.optim.Adam(params, 1e-3)
    rng = np.random.default_rng(0)
    began = time.perf_counter()
    for _ in range(steps):
        batch = to_tensor(train_frames[rng.choice(len(train_frames), 20)])
        loss = l1_gradient_loss(model.decode(model.encode_object(batch)), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        test = to_tensor(test_frames)
        mse = ((model.eval().decode(model.encode_object(test)) - test) / 2).pow(2).mean().item()
    return 10 * np.log10(1 / mse), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--preset", default="cpu-64")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--norms", default="instance,affine")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    store = Store.open(args.data)
    train_frames, test_frames = frames_of(store, "train", 2000), frames_of(store, "test", 64)
    print("| norm | steps | test PSNR (dB) | seconds |\n|---|---|---|---|")
    for norm in args.norms.split(","):
        db, seconds = train_and_score(args.preset, norm, train_frames, test_frames, args.steps)
        print(f"| {norm} | {args.steps} | {db:.2f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
