"""Shared settings and checks of the property-based (hypothesis) fuzz tests, tests/test_fuzz_*.py.

CI runs each test derandomized (the same examples every run) with a modest number of examples, so the
fuzz files stay under about a minute together. For a longer, random hunt set POKE2VIDEO_FUZZ_SCALE:

    POKE2VIDEO_FUZZ_SCALE=20 .venv/bin/python -m pytest -q tests/test_fuzz_*.py
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

SCALE = float(os.environ.get("POKE2VIDEO_FUZZ_SCALE", "1"))


def fuzz(max_examples: int) -> settings:
    """Hypothesis settings for a fuzz test: `max_examples` scaled, no deadline, derandomized at scale 1."""
    return settings(max_examples=max(1, round(max_examples * SCALE)), deadline=None, derandomize=SCALE == 1,
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_one_line(message: str, *words: str) -> None:
    """A user-facing error: one non-empty line, naming each of `words`."""
    assert message.strip() and "\n" not in message.strip(), repr(message)
    assert "Traceback" not in message, message
    for word in words:
        assert word in message, message
