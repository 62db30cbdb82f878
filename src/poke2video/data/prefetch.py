"""Reading ahead: an iterator drained by a background thread, so decoding overlaps the work on each item.

    for frame, large in prefetched(iter_frame_pairs(path, sampling, 256)):
        ...   # optical flow here runs while the next frames are decoded

Decoding (PyAV) and optical flow (OpenCV) both release Python's lock while they work, so on two cores
the two halves of `prepare` run side by side. Items arrive in order; an exception raised while reading
is raised again in the consumer, with its own type, at the position where it happened. When the
consumer stops early (an error of its own, `break`, a closed generator), the reader stops too and the
source iterator is closed, so a video file is never left open.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

Item = TypeVar("Item")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterable[Item], depth: int = 4) -> Iterator[Item]:
    """Yield `items` in order while a daemon thread reads up to `depth` of them ahead."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    reader = threading.Thread(target=_read, args=(iter(items), ahead, stop), daemon=True, name="prefetch")
    reader.start()
    try:
        while True:
            item = ahead.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        _drain(ahead)       # a reader blocked on a full queue wakes up, sees `stop` and ends
        reader.join()


def _read(source: Iterator, ahead: queue.Queue, stop: threading.Event) -> None:
    try:
        for item in source:
            if not _put(ahead, item, stop):
                return
        _put(ahead, _DONE, stop)
    except BaseException as error:       # handed to the consumer, which raises it
        _put(ahead, _Failed(error), stop)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _put(ahead: queue.Queue, item, stop: threading.Event) -> bool:
    """Queue `item` unless the consumer has stopped; False when it has."""
    while not stop.is_set():
        try:
            ahead.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _drain(ahead: queue.Queue) -> None:
    while True:
        try:
            ahead.get_nowait()
        except queue.Empty:
            return
