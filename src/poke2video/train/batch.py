"""A batch of training items on the run's device, as both families' training iterations read it."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    source: torch.Tensor    # [B, 3, H, W] in [-1, 1]
    poke_map: torch.Tensor  # [B, 2, H, W]
    target: torch.Tensor    # [B, T, 3, H, W] in [-1, 1]
    poke: torch.Tensor      # [B, 5] (x, y, dx, dy, is_background)
    flow: torch.Tensor      # [B, 2, H, W] the clip's flow F(0 -> T), pixels, zeros for background pokes;
    #                         [B, T, 2, H, W] F(0 -> t) for every frame with train.flow_frames: all
    pokes: torch.Tensor | None = None   # [B, K, 5] every poke (x, y, dx, dy, present), from a PokeSim store
    #                                     made with several pokes or pins; `poke` is then its first
    pins: torch.Tensor | None = None    # [B, P, 3] every pin (x, y, present), from such a store

    @property
    def network_poke(self) -> torch.Tensor:
        """What a flow model reads as its poke: every poke [B, K, 5] where the batch has them, else [B, 5]."""
        return self.pokes if self.pokes is not None else self.poke

    @classmethod
    def collate(cls, items, device: torch.device) -> "Batch":
        return cls.on_device(stack_items(items), device)

    @classmethod
    def on_device(cls, columns, device: torch.device) -> "Batch":
        """From stacked columns (`stack_items`); pinned CPU tensors copy to a GPU without blocking."""
        return cls(*(column.to(device, non_blocking=True) for column in columns))


def stack_items(items) -> tuple[torch.Tensor, ...]:
    """Dataset items (tuples of tensors) -> one stacked tensor per field (a DataLoader collate_fn)."""
    return tuple(torch.stack(column) for column in zip(*items))
