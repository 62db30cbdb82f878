"""prefetched(): items in order, errors raised where they happened, the source closed when the consumer stops."""
import threading
import time

import pytest

from poke2video.data.prefetch import prefetched
from poke2video.errors import UserError


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "prefetch"]


def test_items_arrive_in_order_and_the_reader_ends():
    assert list(prefetched(range(200), depth=2)) == list(range(200))
    assert _prefetch_threads() == []


def test_an_error_while_reading_is_raised_in_the_consumer_after_the_items_before_it():
    def frames():
        yield from range(3)
        raise UserError("clip.mp4: corrupt video data")

    seen = []
    with pytest.raises(UserError, match="corrupt video data"):
        for item in prefetched(frames()):
            seen.append(item)
    assert seen == [0, 1, 2]


def test_stopping_early_stops_the_reader_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield 1
        finally:
            closed.set()

    items = prefetched(endless(), depth=3)
    assert next(items) == 1
    items.close()
    assert closed.wait(timeout=5)
    assert _prefetch_threads() == []


def test_an_error_in_the_consumer_stops_a_reader_blocked_on_a_slow_source():
    closed = threading.Event()

    def slow():
        try:
            for i in range(1000):
                time.sleep(0.001)
                yield i
        finally:
            closed.set()

    with pytest.raises(RuntimeError):
        for item in prefetched(slow(), depth=1):
            if item == 2:
                raise RuntimeError("the consumer failed")
    assert closed.wait(timeout=5)


def test_reading_runs_ahead_of_the_consumer():
    read = []

    def source():
        for i in range(5):
            read.append(i)
            yield i

    items = prefetched(source(), depth=4)
    assert next(items) == 0
    deadline = time.monotonic() + 5
    while len(read) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert read == [0, 1, 2, 3, 4]       # read before the consumer asked for them
    assert list(items) == [1, 2, 3, 4]


def test_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="depth"):
        next(prefetched(range(3), depth=0))
