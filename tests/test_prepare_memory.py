"""`prepare` streams: its Python memory peak stays a small fraction of the arrays it writes."""
import tracemalloc

import numpy as np
import pytest

from memory_support import CYCLE, cycle_frames, write_long_video
from poke2video.data import prepare as prepare_module
from poke2video.data.flow import DISFlow
from poke2video.data.prepare import prepare_dataset
from poke2video.data.store import Store

FRAMES, RES = 3000, 32
pytestmark = pytest.mark.slow


def test_peak_memory_is_a_small_fraction_of_the_frames_written(tmp_path, monkeypatch):
    video = write_long_video(tmp_path / "long.mp4", FRAMES, RES)
    monkeypatch.setattr(prepare_module, "get_flow_estimator", lambda name: DISFlow())  # 10x faster, same sizes
    tracemalloc.start()
    try:
        out = prepare_dataset([video], tmp_path / "d", resolution=RES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    store = Store.open(out)
    frames_bytes = store.frames(0).nbytes  # 9.2 MB; flow (float16) is two thirds of that again
    assert store.frames(0).shape == (FRAMES, RES, RES, 3) and store.flow(0).shape[0] == FRAMES - 10
    cycle = cycle_frames(RES)
    assert np.abs(store.frames(0)[FRAMES - 1].astype(int) - cycle[(FRAMES - 1) % CYCLE]).mean() < 3
    # Holding the video took 6.6x frames_bytes (frames, per-step float32 flows, clip flows). Streaming peaks at
    # about 2.3 MB whatever the length (one frame, T step flows, the 1 MB read buffer of the hashes).
    assert peak < frames_bytes / 2, f"peak {peak / 1e6:.1f} MB while writing {frames_bytes / 1e6:.1f} MB of frames"
