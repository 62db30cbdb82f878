"""Training the flow network on generated scene pairs (flownet/scenes.py); resumable at any moment.

    poke2video train-flow --out runs/flow --pairs 12000 --steps 12000

The pairs are drawn once from `--seed` into OUT/pairs.npz (frames uint8, flow float16), a validation set from
another seed into OUT/val_pairs.npz. Each step takes a batch of random crops, flipped at random, and lowers the
end-point error of the flow at every level of the network. OUT/last.pt is rewritten atomically every
`save_every` steps and at the end, so a killed run resumes with `--resume` where it was saved; the weights with
the lowest validation error are written to OUT/flow_net.safetensors with their config.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm import tqdm

from poke2video.errors import UserError
from poke2video.flownet.model import STRIDE, FlowNet
from poke2video.flownet.scenes import scene_pair

MOVING_PX = 0.5     # a pixel whose true flow is longer than this counts as moving in the loss


@dataclass
class FlowTrainOptions:
    pairs: int = 12000          # generated training pairs
    val_pairs: int = 300        # generated validation pairs (another seed)
    size: int = 128             # the pairs' side in pixels
    crop: int = 96              # training crops' side (a multiple of the network's stride)
    batch: int = 8
    steps: int = 12000
    lr: float = 1e-3            # Adam, on a cosine to a hundredth of it
    seed: int = 0
    val_every: int = 500
    save_every: int = 100


def make_pairs(seed: int, count: int, size: int, path: Path, desc: str) -> dict[str, np.ndarray]:
    """Generate `count` pairs from `seed` into `path` (reused when it already holds them)."""
    if path.exists():
        with np.load(path) as cached:
            if len(cached["first"]) == count and cached["first"].shape[1] == size:
                return {name: cached[name] for name in cached.files}
    rng = np.random.default_rng(seed)
    first, second, flow = [], [], []
    for _ in tqdm(range(count), desc=desc, unit="pair"):
        a, b, f = scene_pair(rng, size)
        first.append(a), second.append(b), flow.append(f.astype(np.float16))
    arrays = {"first": np.stack(first), "second": np.stack(second), "flow": np.stack(flow)}
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)
    return arrays


def to_tensors(arrays: dict[str, np.ndarray], index: np.ndarray) -> tuple[torch.Tensor, ...]:
    first = torch.from_numpy(arrays["first"][index]).permute(0, 3, 1, 2).float()
    second = torch.from_numpy(arrays["second"][index]).permute(0, 3, 1, 2).float()
    return first, second, torch.from_numpy(arrays["flow"][index].astype(np.float32))


def augment(rng: np.random.Generator, first, second, flow, crop: int):
    """Random crops of side `crop`, half of them mirrored left-right (the flow's x negated)."""
    top, left = rng.integers(0, first.shape[2] - crop + 1, 2)
    view = (slice(None), slice(None), slice(top, top + crop), slice(left, left + crop))
    first, second, flow = first[view], second[view], flow[view].clone()
    if rng.random() < 0.5:
        first, second, flow = first.flip(3), second.flip(3), flow.flip(3)
        flow[:, 0] = -flow[:, 0]
    return first, second, flow


def balanced_error(flow: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """End-point error averaged over the pixels that move (over MOVING_PX) plus that averaged over the rest:
    moving pixels are a few percent of a frame, and a plain mean is lowest for a network that answers zero."""
    error = torch.linalg.vector_norm(flow - truth, dim=1)
    moving = (torch.linalg.vector_norm(truth, dim=1) > MOVING_PX).float()
    return (error * moving).sum() / moving.sum().clamp(min=1) + (error * (1 - moving)).sum() / (1 - moving).sum().clamp(min=1)


def level_loss(levels: list[torch.Tensor], full: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """`balanced_error` of the full-size flow plus, at a lower weight, of each level's against the truth
    averaged down to it."""
    loss = balanced_error(full, truth)
    for level in levels:
        loss = loss + 0.25 * balanced_error(level, F.adaptive_avg_pool2d(truth, level.shape[2:]))
    return loss


@torch.no_grad()
def validate(net: FlowNet, arrays: dict[str, np.ndarray]) -> float:
    """`balanced_error` (px) over all the validation pairs together."""
    net.eval()
    flows, truths = [], []
    for start in range(0, len(arrays["first"]), 32):
        first, second, truth = to_tensors(arrays, np.arange(start, min(start + 32, len(arrays["first"]))))
        flows.append(net(first, second)), truths.append(truth)
    net.train()
    return float(balanced_error(torch.cat(flows), torch.cat(truths)))


def save_weights(net: FlowNet, path: Path, metadata: dict) -> None:
    partial = path.with_suffix(".partial")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(partial),
              metadata={"config": json.dumps(metadata)})
    os.replace(partial, path)


def train_flow_net(out, options: FlowTrainOptions, resume: bool = False, max_minutes: float | None = None) -> Path:
    out = Path(out)
    if options.crop % STRIDE or options.crop > options.size:
        raise UserError(f"--crop must be a multiple of {STRIDE} no larger than --size {options.size}")
    if out.exists() and not resume and (out / "last.pt").exists():
        raise UserError(f"{out} holds a run; pass --resume to go on with it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(options.seed)
    pairs = make_pairs(options.seed, options.pairs, options.size, out / "pairs.npz", "training pairs")
    val = make_pairs(options.seed + 10_000, options.val_pairs, options.size, out / "val_pairs.npz", "validation pairs")
    net = FlowNet()
    optimizer = torch.optim.Adam(net.parameters(), options.lr)
    state = {"step": 0, "best": math.inf, "history": []}
    if resume and (out / "last.pt").exists():
        saved = torch.load(out / "last.pt", weights_only=False)
        net.load_state_dict(saved["net"]), optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
    started = time.monotonic()
    progress = tqdm(total=options.steps, initial=state["step"], desc="train-flow", unit="step")
    while state["step"] < options.steps:
        for group in optimizer.param_groups:
            group["lr"] = options.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * state["step"] / options.steps)))
        rng = np.random.default_rng([options.seed, state["step"]])    # per step: a resumed run draws the same
        index = rng.integers(0, len(pairs["first"]), options.batch)
        first, second, truth = augment(rng, *to_tensors(pairs, index), options.crop)
        full, levels = net(first, second, all_levels=True)
        loss = level_loss(levels, full, truth)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        state["step"] += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.3f}")
        if state["step"] % options.val_every == 0 or state["step"] == options.steps:
            error = validate(net, val)
            state["history"].append((state["step"], error))
            if error < state["best"]:
                state["best"] = error
                save_weights(net, out / "flow_net.safetensors", {"step": state["step"], "val_epe": error,
                                                                  "options": asdict(options)})
        timed_out = max_minutes is not None and time.monotonic() - started > 60 * max_minutes
        if state["step"] % options.save_every == 0 or state["step"] == options.steps or timed_out:
            torch.save({"net": net.state_dict(), "optimizer": optimizer.state_dict(), "state": state},
                       out / "last.partial.pt")
            os.replace(out / "last.partial.pt", out / "last.pt")
        if timed_out:
            break
    progress.close()
    return out / "flow_net.safetensors"
