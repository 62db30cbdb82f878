"""What a store's arrays may be: the dtype and shape of each array the format knows, in one table.

`Store.open` checks every array of every video against it (from the .npy headers, which must agree with the
manifest), so an array whose dtype, rank or shape the format does not allow is one line naming its file,
before anything memory-maps or reads it. The sizes in a shape:

    N  frames of the video       K  clips (rows of starts.npy; PokeSim: one per clip)
    R  the store's resolution    T  its clip length (frames after the first)
    *  any size (the most pokes or pins a PokeSim clip may have, set by `simulate`)

Arrays the table does not name (optional extras) may have any shape, but like every array a numeric dtype:
an object array would need unpickling, and neither it nor a string or record array can be memory-mapped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from poke2video.errors import UserError

SEGMENT_SLOTS = 48    # sim/bodies.MAX_SEGMENTS: gt_parents and gt_joints have a row per possible segment
POKE_FIELDS = 10      # sim/scene.POKE_COLUMNS
OBJECT_FIELDS = 4     # sim/scene.OBJECT_COLUMNS
PIN_FIELDS = 3        # sim/scene.PIN_COLUMNS

# name -> (dtype, shape); a shape entry is a size above or a number
ARRAY_FORMAT: dict[str, tuple[str, tuple[Any, ...]]] = {
    "frames": ("uint8", ("N", "R", "R", 3)),            # RGB frames
    "starts": ("int32", ("K",)),                        # first frame of each clip
    "flow": ("float16", ("K", 2, "R", "R")),            # F(s -> s+T) per clip, pixels
    "motion": ("float32", ("N-1",)),                    # mean |F(t -> t+1)| per step
    "step_flow": ("float16", ("N-1", 2, "R", "R")),     # F(t -> t+1) per step (prepare)
    "tracked_motion": ("float16", ("K", "T", 2, "R", "R")),  # prepare --tracked-truth: frame 0 to frames 1..T
    "gt_flow": ("float16", ("K", "T+1", 2, "R", "R")),  # PokeSim: exact flow from frame 0 to every frame
    "gt_segments": ("uint8", ("K", "T+1", "R", "R")),
    "gt_track": ("float32", ("K", "T+1", 2)),
    "gt_poke": ("float32", ("K", POKE_FIELDS)),
    "gt_parents": ("int16", ("K", SEGMENT_SLOTS)),
    "gt_joints": ("float32", ("K", SEGMENT_SLOTS, 3)),
    "gt_object": ("int16", ("K", OBJECT_FIELDS)),
    "gt_pokes": ("float32", ("K", "*", POKE_FIELDS)),     # PokeSim --max-pokes: every poke of a clip
    "gt_pins": ("float32", ("K", "*", PIN_FIELDS)),       # PokeSim --max-pins: every pin of a clip
}
NUMERIC_KINDS = "biuf"   # bool, signed and unsigned integers, floats


def expected_shape(name: str, frames: int, clips: int, resolution: int, clip_length: int) -> list[int | None] | None:
    """The shape the format gives array `name` in a video of `frames` frames and `clips` clips (None where any
    size will do); None for an array it does not name."""
    if name not in ARRAY_FORMAT:
        return None
    sizes = {"N": frames, "N-1": max(frames - 1, 0), "K": clips, "R": resolution, "T": clip_length,
             "T+1": clip_length + 1, "*": None}
    return [sizes[dim] if isinstance(dim, str) else dim for dim in ARRAY_FORMAT[name][1]]


def shape_fits(shape: list[int], wanted: list[int | None]) -> bool:
    """Whether `shape` is `wanted`, a None there standing for any size."""
    return len(shape) == len(wanted) and all(w is None or w == s for s, w in zip(shape, wanted))


def describe(name: str) -> str:
    """e.g. "int32 [K]": how the format writes array `name` (for error lines)."""
    dtype, dims = ARRAY_FORMAT[name]
    return f"{dtype} [{', '.join(map(str, dims))}]"


def check_video_arrays(where: str, folder: Path, arrays: dict[str, dict], resolution: int, clip_length: int) -> None:
    """Every array of one video (its manifest entries, already found equal to the files' headers) against the
    table: a UserError naming the first file whose dtype or shape the format does not allow."""
    frames, clips = arrays["frames"]["shape"][:1], arrays["starts"]["shape"][:1]
    frames, clips = (frames[0] if frames else 0), (clips[0] if clips else 0)
    for name, info in arrays.items():
        file = folder / f"{name}.npy"
        shape, dtype = list(info["shape"]), _dtype(info["dtype"])
        if name not in ARRAY_FORMAT:
            if dtype is None or dtype.kind not in NUMERIC_KINDS:
                raise UserError(f"{where}: {file} is a {info['dtype']} array; a store holds only numbers (bool, "
                                "integer or float arrays)")
            continue
        wanted = expected_shape(name, frames, clips, resolution, clip_length)
        if dtype != np.dtype(ARRAY_FORMAT[name][0]) or not shape_fits(shape, wanted):
            raise UserError(f"{where}: {file} is {info['dtype']} {shape}; a store's {name}.npy is {describe(name)}, "
                            f"here {ARRAY_FORMAT[name][0]} {wanted} (N={frames} frames, K={clips} clips, "
                            f"R={resolution}, T={clip_length})")


def _dtype(text: str) -> np.dtype | None:
    """The dtype a header spelt as `text`; None for one numpy cannot spell back (a record array)."""
    try:
        return np.dtype(text)
    except (TypeError, ValueError):
        return None
