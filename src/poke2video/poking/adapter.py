"""What each family's adapter behind `Poker` shares: the network, its size, and its one call shape (batch 1,
T frames) run eagerly or as a frozen TorchScript trace.

Eager PyTorch spends much of a small model's time dispatching its small convolutions; a frozen trace gives
the same output to float precision (`tests/test_poker.py`). torch.compile would need a C++ toolchain and
minutes of compiling on the user's machine; torch.jit is deprecated but present in the pinned torch.
"""
from __future__ import annotations

import warnings
from typing import Callable, ClassVar

import torch


class Adapter:
    """A family's network as `Poker` runs it; `trace` off runs the model's own methods (what test doubles need)."""

    gives_flow: ClassVar[bool]        # `Poker.forward_flow` and `animate_with_flow` answer
    reads_impulses: ClassVar[bool]    # `Poker.modes` may offer "impulse" (weights with an impulse_scale)

    def __init__(self, model: torch.nn.Module, trace: bool):
        self.model, self.trace = model, trace
        self.resolution, self.frames = model.cfg.resolution, model.cfg.frames
        self.traced: dict[tuple, torch.jit.ScriptModule] = {}   # a trace per set of input shapes, built on first use

    def run(self, inputs: tuple[torch.Tensor, ...], eager: Callable[..., torch.Tensor],
            traceable: Callable[[], torch.nn.Module], example: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The network's output for `inputs`: `eager(*inputs)`, or with `trace` on the frozen trace of
        `traceable()` (traced on `example`, inputs of the same shapes) built at the first call with these
        shapes (several pokes or pins change a shape: each count is traced once)."""
        with torch.inference_mode():
            if not self.trace:
                return eager(*inputs)
            shapes = tuple(tuple(tensor.shape) for tensor in inputs)
            if shapes not in self.traced:
                self.traced[shapes] = frozen_trace(traceable().eval(), example)
            return self.traced[shapes](*inputs)

    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def frozen_trace(module: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """`module` (in eval mode) traced on `example` and frozen."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit: deprecated in 2.13, still there
        return torch.jit.freeze(torch.jit.trace(module, example, check_trace=False))
