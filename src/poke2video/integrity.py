"""Content digests that detect truncated or altered checkpoints.

`content_sha256(obj)` is a SHA-256 over a nested structure of dicts, lists, tuples, tensors and plain
values (None, bool, int, float, str), fed in a fixed order: dict keys sorted by their repr, each value
framed by its type and length, each tensor by its dtype and shape followed by its raw bytes. It depends
only on the content, not on how a file lays it out, so it is computed before saving, stored inside the
file (safetensors metadata `sha256`, resume.pt key `sha256`) and recomputed after loading.
"""
from __future__ import annotations

import hashlib
from typing import Any

import torch


def content_sha256(obj: Any) -> str:
    """Hex SHA-256 of `obj`'s content (see the module docstring); TypeError for other types."""
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def _frame(digest, tag: bytes, payload: bytes) -> None:
    digest.update(tag + str(len(payload)).encode() + b":" + payload)


def _feed(digest, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().to("cpu").contiguous().reshape(-1)
        _frame(digest, b"T", f"{tensor.dtype}{tuple(obj.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        _frame(digest, b"D", str(len(obj)).encode())
        for key in sorted(obj, key=repr):
            _feed(digest, key)
            _feed(digest, obj[key])
    elif isinstance(obj, (list, tuple)):
        _frame(digest, b"L" if isinstance(obj, list) else b"U", str(len(obj)).encode())
        for item in obj:
            _feed(digest, item)
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        _frame(digest, type(obj).__name__.encode(), repr(obj).encode())
    else:
        raise TypeError(f"cannot digest a {type(obj).__name__}")
