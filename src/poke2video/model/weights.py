"""Model weights as safetensors: tensors plus the model's family, its config and caller metadata as strings.

Metadata keys: `format` = "poke2video-model", `format_version`, `family` (the model family: unet or gru,
`families.py`), `model_config` (that family's model config as JSON), `metadata` (the caller's dict as JSON,
e.g. {"impulse_scale": 12.0, "train": {...}}) and `sha256`, the content digest (`poke2video.integrity`) of
{"family", "model_config", "metadata", "tensors"}, checked on every load: a truncated file, a changed byte
in a tensor or in the metadata is an error naming the file. Versions 1 and 2 (written before each family
had a config of its own; the bundled model is version 2) hold no `family`: their `model_config` is one flat
section with both families' fields, whose `architecture` names the family; their digest covers
{"model_config", "metadata", "tensors"}, and version 1 files (written before the digest existed) carry
none and load unchecked. Loading reads only tensors and strings: no pickle, no code. Before a model is
built, the config and metadata are checked for shape and bounds, the tensors against the shapes the config
asks for, and what one poke of the model would cost (`model.cost`), so a hostile file with a valid digest
is one line too, never a huge allocation.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from poke2video.config import RetiredOption
from poke2video.errors import UserError, first_line
from poke2video.families import FAMILIES, ModelConfig, model_config_from_dict, model_config_from_flat
from poke2video.fsutil import atomic_path
from poke2video.integrity import content_sha256
from poke2video.model.cost import check_poke_cost
from poke2video.model.flow_unet import FlowUNet
from poke2video.model.poke_model import PokeModel

GENERATORS = {"unet": FlowUNet, "gru": PokeModel}   # by family (families.py)


def build_model(cfg: ModelConfig) -> FlowUNet | PokeModel:
    """The generator `cfg` describes, chosen by its family: FlowUNet (unet) or PokeModel (gru)."""
    return GENERATORS[cfg.family](cfg)


WEIGHTS_FORMAT = "poke2video-model"
MAX_CONFIG_CHARS = 64 * 1024         # a model config is about 1 KB of JSON
MAX_METADATA_CHARS = 1024 * 1024     # the caller's metadata (training recipe, step) a few KB
# Metadata keys this program reads, with the types they must have when present.
METADATA_TYPES = {"step": (int, "an integer"), "name": (str, "a string"), "impulse_scale": ((int, float), "a number")}
WEIGHTS_VERSION = "3"            # what save_model writes: the family and its own model config
FLAT_VERSIONS = ("1", "2")       # one flat model config for both families; 2 added the `sha256` digest
READABLE_VERSIONS = (*FLAT_VERSIONS, WEIGHTS_VERSION)


def save_model(path: str | os.PathLike, model: FlowUNet | PokeModel, metadata: dict[str, Any] | None = None) -> None:
    """Write `model`'s weights, family, config and `metadata` (JSON-serialisable) to `path` atomically."""
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    write_weights(path, tensors, model.cfg.family, json.dumps(model.cfg.to_dict(), sort_keys=True),
                  json.dumps(metadata or {}, sort_keys=True))


def write_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor], family: str, model_config: str,
                  metadata: str) -> None:
    """Write a weights file from its parts (strings as stored), with their digest, atomically."""
    header = {"format": WEIGHTS_FORMAT, "format_version": WEIGHTS_VERSION, "family": family,
              "model_config": model_config, "metadata": metadata,
              "sha256": _digest(tensors, {"family": family, "model_config": model_config, "metadata": metadata})}
    data = save(tensors, metadata=header)       # serialised here and written by Python, so that a full disk is
    with atomic_path(path) as tmp, open(tmp, "wb") as f:   # an OSError (safetensors' own writer says it in words)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _digest(tensors: dict[str, torch.Tensor], strings: dict[str, str]) -> str:
    return content_sha256({**strings, "tensors": tensors})


def _digested_strings(header: dict[str, str]) -> dict[str, str]:
    """The header strings the digest of its version covers (as stored; absent ones as written when missing)."""
    strings = {"model_config": header.get("model_config", ""), "metadata": header.get("metadata", "{}")}
    if header.get("format_version") not in FLAT_VERSIONS:
        strings["family"] = header.get("family", "")
    return strings


def _read_raw_header(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable safetensors file ({first_line(exc)})") from None
    if header.get("format") != WEIGHTS_FORMAT:
        raise UserError(f"{path} is not a poke2video model (no '{WEIGHTS_FORMAT}' header)")
    version = header.get("format_version")
    if version not in READABLE_VERSIONS:
        raise UserError(f"{path} has model format version {version!r}; this poke2video reads versions "
                        f"{', '.join(READABLE_VERSIONS)}")
    if version != "1" and "sha256" not in header:
        raise UserError(f"{path} is damaged: a version {version} weights file must carry its sha256")
    return header


def stored_digest(path: str | os.PathLike) -> str | None:
    """The content digest `path`'s header carries (None in a version 1 file), read without the tensors and
    unchecked: `load_model` checks it."""
    return _read_raw_header(Path(path)).get("sha256")


def read_header(path: str | os.PathLike) -> tuple[ModelConfig, dict[str, Any]]:
    """The model config and caller metadata stored in `path`, without loading (or checking) tensors."""
    path = Path(path)
    return _parse_header(path, _read_raw_header(path))


def _parse_header(path: Path, header: dict[str, str]) -> tuple[ModelConfig, dict[str, Any]]:
    """The model config and metadata of a weights file, checked for shape and bounds before anything is
    built from them: each a JSON object of bounded size and depth, the config its family's and within that
    config's bounds, the metadata keys this program reads of the right type. Anything else is one line
    naming the file."""
    config = _json_object(path, "a corrupt model config", header.get("model_config"), MAX_CONFIG_CHARS)
    metadata = _json_object(path, "corrupt metadata", header.get("metadata", "{}"), MAX_METADATA_CHARS)
    flat = header.get("format_version") in FLAT_VERSIONS
    if not flat and header.get("family") not in FAMILIES:
        raise UserError(f"{path} has an unknown model family ({_short(repr(header.get('family')))}; "
                        f"this poke2video knows {', '.join(sorted(FAMILIES))})")
    try:
        cfg = model_config_from_flat(config) if flat else model_config_from_dict(header["family"], config)
    except RetiredOption as exc:
        raise UserError(f"{path}: {exc}") from None
    except (TypeError, ValueError, UserError) as exc:
        raise UserError(f"{path} has a corrupt model config ({_short(first_line(exc))})") from None
    for key, (kinds, words) in METADATA_TYPES.items():
        value = metadata.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise UserError(f"{path} has corrupt metadata ({key} must be {words}, got {_short(repr(value))})")
    return cfg, metadata


def _json_object(path: Path, damaged: str, text: str | None, limit: int) -> dict[str, Any]:
    """A JSON object from a header string; else a UserError `PATH has <damaged> (why)`."""
    if text is None:
        raise UserError(f"{path} has {damaged} (it is missing)")
    if len(text) > limit:
        raise UserError(f"{path} has {damaged} ({len(text):,} characters; at most {limit:,})")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
        raise UserError(f"{path} has {damaged} (not JSON: {_short(first_line(exc))})") from None
    if not isinstance(value, dict):
        kind = {list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(type(value), "a number")
        raise UserError(f"{path} has {damaged} (JSON {kind}, not an object of named values)")
    return value


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _check_shapes(path: Path, expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> None:
    """The file's tensors are the ones the config's model has, each of its shape; else one line saying which
    is not (checked on a model built on the meta device, before a real one takes any memory)."""
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    wrong = [name for name in expected if name in tensors and tuple(expected[name].shape) != tuple(tensors[name].shape)]
    if missing:
        why = f"{len(missing)} tensor(s) the config's model needs are missing, e.g. {missing[0]!r}"
    elif unexpected:
        why = f"{len(unexpected)} tensor(s) the config's model does not have, e.g. {_short(unexpected[0], 80)!r}"
    elif wrong:
        name = wrong[0]
        why = f"tensor {name!r} is {list(tensors[name].shape)} where the config needs {list(expected[name].shape)}"
    else:
        return
    raise UserError(f"{path} does not match its model config: {why}")


def read_verified(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(CPU tensors, raw header) of `path` after checking its sha256; a UserError naming the file if the
    file is missing, not safetensors, truncated or altered."""
    path = Path(path)
    header = _read_raw_header(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} has corrupt tensors ({first_line(exc)})") from None
    stored = header.get("sha256")
    if stored is not None and stored != _digest(tensors, _digested_strings(header)):
        raise UserError(f"{path} is damaged: its content does not match the sha256 it was saved with "
                        "(truncated, altered or a disk error)")
    return tensors, header


def load_model(path: str | os.PathLike,
               device: str | torch.device = "cpu") -> tuple[FlowUNet | PokeModel, dict[str, Any]]:
    """Build the model stored in `path` and load its verified weights -> (model in eval mode, metadata)."""
    path = Path(path)
    tensors, header = read_verified(path)
    cfg, metadata = _parse_header(path, header)
    with torch.device("meta"):                  # shapes only, no memory, whatever the config asks for
        meta_model = build_model(cfg).eval()
    _check_shapes(path, meta_model.state_dict(), tensors)
    try:
        check_poke_cost(cfg, meta_model)        # what one poke takes, run on the meta device
    except UserError as exc:
        raise UserError(f"{path} {exc}") from None
    model = build_model(cfg)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path} does not match its model config: {first_line(exc)}") from None
    return model.to(device).eval(), metadata
