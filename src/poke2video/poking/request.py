"""What a caller may ask of `Poker`: one poke (`source=`, `target=`) or several (`pokes=`), and pins.

The checks here are of form and count; whether each point lies inside the image is `poker.check_point`'s.
"""
from __future__ import annotations

from poke2video.errors import UserError

MAX_POKES = 8     # pokes at once, for Poker, the command line and the app
MAX_PINS = 8


def _shown(value) -> str:
    return " ".join(repr(value).split())[:100]


def _as_list(name: str, value) -> list:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
        raise UserError(f"{name} must be a list, got {_shown(value)}")
    return list(value)


def requested_pokes(source, target, pokes) -> list[tuple[object, object]]:
    """[(source, target), ...] from either `source` and `target` (one poke) or `pokes`, a list of 1 to
    MAX_POKES (source, target) pairs; both forms, neither, half of one or too many is a UserError."""
    single = source is not None or target is not None
    if single and pokes is not None:
        raise UserError("give one poke as source= and target=, or several as pokes=[(source, target), ...], not both")
    if single:
        if source is None or target is None:
            raise UserError("a poke needs both source= and target=")
        return [(source, target)]
    if pokes is None:
        raise UserError("no poke: give source= and target=, or pokes=[(source, target), ...]")
    listed = _as_list("pokes", pokes)
    if not 1 <= len(listed) <= MAX_POKES:
        raise UserError(f"pokes must hold 1 to {MAX_POKES} (source, target) pairs, got {len(listed)}")
    pairs = []
    for index, pair in enumerate(listed):
        if isinstance(pair, (str, bytes, dict)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise UserError(f"pokes[{index}] must be a (source, target) pair, got {_shown(pair)}")
        pairs.append((pair[0], pair[1]))
    return pairs


def requested_pins(pins) -> list:
    """The pins as a list (None: none); more than MAX_PINS is a UserError."""
    if pins is None:
        return []
    listed = _as_list("pins", pins)
    if len(listed) > MAX_PINS:
        raise UserError(f"at most {MAX_PINS} pins, got {len(listed)}")
    return listed
