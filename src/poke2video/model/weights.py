"""Model weights as safetensors: tensors plus the model config and caller metadata as JSON strings.

Metadata keys: `format` = "poke2video-model", `format_version`, `model_config` (ModelConfig as JSON),
`metadata` (the caller's dict as JSON, e.g. {"impulse_scale": 12.0, "train": {...}}).
Loading reads only tensors and strings: no pickle, no code.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from poke2video.config import ModelConfig
from poke2video.errors import UserError
from poke2video.fsutil import atomic_path
from poke2video.model.poke_model import PokeModel

WEIGHTS_FORMAT = "poke2video-model"
WEIGHTS_VERSION = "1"


def save_model(path: str | os.PathLike, model: PokeModel, metadata: dict[str, Any] | None = None) -> None:
    """Write `model`'s weights, config and `metadata` (JSON-serialisable) to `path` atomically."""
    header = {
        "format": WEIGHTS_FORMAT,
        "format_version": WEIGHTS_VERSION,
        "model_config": json.dumps(model.cfg.to_dict(), sort_keys=True),
        "metadata": json.dumps(metadata or {}, sort_keys=True),
    }
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)


def read_header(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any]]:
    """The model config and caller metadata stored in `path`, without loading tensors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable safetensors file ({exc})") from None
    if header.get("format") != WEIGHTS_FORMAT:
        raise UserError(f"{path} is not a poke2video model (no '{WEIGHTS_FORMAT}' header)")
    if header.get("format_version") != WEIGHTS_VERSION:
        raise UserError(f"{path} has model format version {header.get('format_version')!r}; "
                        f"this poke2video reads version {WEIGHTS_VERSION}")
    try:
        cfg = ModelConfig.from_dict(json.loads(header["model_config"]))
        metadata = json.loads(header.get("metadata", "{}"))
    except (KeyError, json.JSONDecodeError, TypeError, UserError) as exc:
        raise UserError(f"{path} has a corrupt model config ({exc})") from None
    return cfg, metadata


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[PokeModel, dict[str, Any]]:
    """Build the model stored in `path` and load its weights -> (model in eval mode, metadata)."""
    cfg, metadata = read_header(path)
    model = PokeModel(cfg)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} has corrupt tensors ({exc})") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise UserError(f"{path} does not match its model config: {first_line}") from None
    return model.to(device).eval(), metadata
