"""The command line's argument types: each turns one word into a value or says in a few words why not
(argparse then prints `poke2video CMD: error: argument --opt: <why>` on one line)."""
from __future__ import annotations

import argparse


def coordinate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"coordinate must be finite, got {text!r}")
    return value


def port_number(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {value}")
    return value


def int_from(low: int, words: str, high: int | None = None):
    """An argparse type: an integer from `low` (to `high`), else "<words>, got N"."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{words}, got {value}")
        return value
    return parse


positive_int, non_negative_int = int_from(1, "must be at least 1"), int_from(0, "must be 0 or more")
# Every --seed: numpy takes no negative seed and torch.manual_seed none above 2^64 - 1.
seed_number = int_from(0, "a seed is an integer from 0 to 2^64 - 1", 2**64 - 1)


def shard_spec(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    return int(index), int(count)


def nonempty_path(text: str) -> str:
    """A file or folder argument: anything but the empty string (which would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text
