"""What one poke of a model config costs, checked before a weights file becomes a model (`weights.load_model`).

Every size of a config may lie within `config.MODEL_BOUNDS` while their product does not: 1024 px, 64 frames
and 8 channels are a 178 KB file whose one poke takes 7.5 GB, and a flow model at 8 px with four levels
normalises 1x1 maps it cannot. So, from the config alone and before any real memory is taken:

- the smallest feature map must leave more than one value to every normalisation (`smallest_map_problem`):
  InstanceNorm (the paper's model) normalises each channel over the map, GroupNorm (the flow model) each
  group of channels over it; one value is an error inside PyTorch;
- one poke, as `Poker` runs it (batch 1, the config's frames), is run on the meta device, which computes
  shapes and no numbers: the activation memory alive at its peak and its floating-point operations must stay
  within MAX_POKE_BYTES and MAX_POKE_FLOPS (the bundled model: 3.4 MiB and 0.75 GFLOP; paper-128: 100 MiB
  and 0.17 TFLOP, and with 64 frames 0.63 GiB and 1.0 TFLOP). The dry run takes 0.1 to 0.5 s.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from poke2video.errors import UserError, first_line
from poke2video.families import ModelConfig

MAX_POKE_BYTES = 2 * 2**30     # activations alive at once during one poke
MAX_POKE_FLOPS = 4 * 10**12    # about a minute on one CPU core at the 70 GFLOP/s the paper's model reaches there
GROUPS = 8                     # flow_unet.conv_block: GroupNorm(gcd(8, channels), channels)


@dataclass(frozen=True)
class PokeCost:
    peak_bytes: int            # activation memory alive at the peak of one poke
    flops: int                 # floating-point operations of one poke


def smallest_map_problem(cfg: ModelConfig) -> str | None:
    """Why the config's smallest feature map cannot be normalised, or None when every one can."""
    if cfg.family == "unet":
        for level, channels in enumerate(cfg.unet_channels):
            side = cfg.resolution // 2 ** level
            per_group = channels // math.gcd(GROUPS, channels)
            if per_group * side * side < 2:
                return (f"its level {level} is a {side}x{side} map of {channels} channels in GroupNorm groups of "
                        f"{per_group}: one value per group ({cfg.resolution} px over {len(cfg.unet_channels)} levels)")
        return None
    side = cfg.resolution // 2 ** len(cfg.channels)
    if side * side < 2:
        return (f"its bottleneck is a {side}x{side} map, one value per channel for InstanceNorm ({cfg.resolution} px "
                f"halved by {len(cfg.channels)} stages)")
    return None


class _PeakMemory(TorchDispatchMode):
    """Counts the bytes of every tensor an operation creates (views and in-place results share memory, so
    they are not counted) until Python drops it: the activation memory alive at the peak."""

    def __init__(self):
        super().__init__()
        self.alive = self.peak = 0

    def _freed(self, size: int) -> None:
        self.alive -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        for returned, tensor in zip(func._schema.returns, outputs):
            if isinstance(tensor, torch.Tensor) and returned.alias_info is None:
                size = tensor.numel() * tensor.element_size()
                self.alive += size
                weakref.finalize(tensor, self._freed, size)
        self.peak = max(self.peak, self.alive)
        return out


def poke_cost(model: torch.nn.Module, cfg: ModelConfig) -> PokeCost:
    """Run one poke of `model` (built on the meta device) as `Poker` does, counting memory and operations (a
    flow model with `mirror_average` runs a batch of two)."""
    res, batch = cfg.resolution, 2 if getattr(cfg, "mirror_average", False) else 1
    source = torch.zeros(batch, 3, res, res, device="meta")
    memory, flops = _PeakMemory(), FlopCounterMode(display=False)
    with torch.inference_mode(), flops, memory:
        if cfg.family == "unet":                 # FlowUNet: Poker reads its flows
            out = model.forward_flows(source, torch.ones(batch, 4, device="meta"), cfg.frames)
        else:                                    # PokeModel: its video
            out = model.predict(source, torch.zeros(1, 2, res, res, device="meta"), cfg.frames).video
        del out
    return PokeCost(memory.peak, flops.get_total_flops())


def check_poke_cost(cfg: ModelConfig, meta_model: torch.nn.Module) -> PokeCost:
    """The cost of one poke of the config's model (`meta_model`: it, built on the meta device); a UserError
    (without the file's name, which the caller adds) when the model cannot run or one poke costs too much."""
    problem = smallest_map_problem(cfg)
    if problem is not None:
        raise UserError(f"describes a model that cannot run: {problem}")
    try:
        cost = poke_cost(meta_model, cfg)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise UserError(f"describes a model that cannot run one poke ({first_line(exc)})") from None
    size = f"{cfg.frames} frames at {cfg.resolution} px"
    if cost.peak_bytes > MAX_POKE_BYTES:
        raise UserError(f"describes a model whose one poke would take {cost.peak_bytes / 2**30:.1f} GiB of "
                        f"activations ({size}); at most {MAX_POKE_BYTES / 2**30:g} GiB")
    if cost.flops > MAX_POKE_FLOPS:
        raise UserError(f"describes a model whose one poke would take {cost.flops / 1e12:.1f} TFLOP ({size}); "
                        f"at most {MAX_POKE_FLOPS / 1e12:g} TFLOP")
    return cost
