"""Dragging clients against the app: the load loop of tests/test_app_load.py and benchmarks/load_app.py.

A client drags as a person on the page does: it picks an image (an example scene or an upload), presses
on a point and moves the pointer in 4 to 15 steps towards an end point, sending POST /api/poke for each
position (PNG frames for the 64 px scenes, JPEG above 128 px, as the page asks) and, as the page's
throttle, at most one request in flight and one per `think_s`. `run_load` counts the statuses, keeps the
latencies and, given the server's pid, samples its resident memory every second.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import numpy as np

ALLOWED = {200, 429}


def rss_mb(pid: int) -> float | None:
    """Resident set size of process `pid` in MB (Linux /proc), None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class MemorySampler(threading.Thread):
    """Samples the server's RSS every `interval` seconds: (seconds since start, MB)."""

    def __init__(self, pid: int, interval: float = 1.0):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        started = time.perf_counter()
        while not self.stopped.is_set():
            value = rss_mb(self.pid)
            if value is not None:
                self.samples.append((time.perf_counter() - started, value))
            self.stopped.wait(self.interval)

    def stop(self) -> list[tuple[float, float]]:
        self.stopped.set()
        self.join(10)
        return self.samples


def drag(rng: np.random.Generator, image: dict):
    """The request bodies of one drag on `image`: a press, then 4..15 pointer positions towards an end point."""
    w, h = image["width"], image["height"]
    if "source" in image and rng.random() < 0.5:                   # near the simulator's own poke
        source = np.clip(np.array(image["source"], float) + rng.normal(0, 2, 2), 0, [w - 1, h - 1])
    else:
        source = rng.uniform(0, 1, 2) * [w - 1, h - 1]
    end = np.clip(source + rng.normal(0, 0.12, 2) * max(w, h), 0, [w - 1, h - 1])
    steps = int(rng.integers(4, 16))
    fmt = "jpeg" if max(w, h) > 128 else "png"
    for k in range(1, steps + 1):
        target = np.clip(source + (end - source) * k / steps, 0, [w - 1, h - 1])   # no -1e-15 past the edge
        yield {"image_id": image["image_id"], "source": [float(v) for v in source],
               "target": [float(v) for v in target], "format": fmt}


def run_load(url: str, images: list[dict], clients: int, seconds: float, think_s: float,
             pid: int | None = None, warmup_s: float = 10.0) -> dict:
    """Drive `clients` dragging clients for `seconds`; statuses, latencies and (with `pid`) the server's RSS."""
    statuses: Counter = Counter()
    latencies: dict[int, list[float]] = {200: [], 429: []}
    problems: list[str] = []
    lock = threading.Lock()
    sampler = MemorySampler(pid) if pid else None
    if sampler:
        sampler.start()
        time.sleep(1.1)                                            # one sample before the load starts
    started = time.perf_counter()
    stop_at = started + seconds

    def client_loop(index: int) -> None:
        rng = np.random.default_rng(1000 + index)
        with httpx.Client(base_url=url, timeout=60) as client:
            while time.perf_counter() < stop_at:
                for body in drag(rng, images[int(rng.integers(len(images)))]):
                    sent = time.perf_counter()
                    if sent >= stop_at:
                        break
                    try:
                        response = client.post("/api/poke", json=body)
                        status, answer = response.status_code, response.json()
                        detail = answer.get("detail", "") if status != 200 else ""
                        if status == 200 and len(answer["frames"]) != answer["count"]:
                            status, detail = "bad body", "frames and count differ"
                    except (httpx.HTTPError, ValueError) as exc:
                        status, detail = f"error {type(exc).__name__}", str(exc)
                    elapsed = time.perf_counter() - sent
                    with lock:
                        statuses[status] += 1
                        if status in latencies:
                            latencies[status].append(elapsed * 1000)
                        if status not in ALLOWED and len(problems) < 10:
                            problems.append(f"{status}: {detail}"[:300])
                    time.sleep(max(0.0, think_s - elapsed))

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    result = {"seconds": elapsed, "statuses": dict(statuses), "problems": problems,
              "answered": sum(statuses.values()), "ok": statuses[200], "busy": statuses[429]}
    for status, values in latencies.items():
        result[f"latency_{status}"] = ({q: float(np.percentile(values, q)) for q in (50, 95, 99)}
                                     if values else None)
    if sampler:
        result["rss"] = memory_summary(sampler.stop(), warmup_s + 1.1)
    return result


def memory_summary(samples: list[tuple[float, float]], warm_at: float) -> dict:
    """Start, after warm-up, max and end of the RSS samples; flat when the end is near the warm value."""
    values = [mb for _, mb in samples]
    if not values:
        return {"samples": 0, "start": 0.0, "warm": 0.0, "max": 0.0, "end": 0.0, "margin": 0.0, "flat": False}
    warm = next((mb for t, mb in samples if t >= warm_at), values[-1])
    end = values[-1]
    margin = max(10.0, 0.05 * warm)
    return {"samples": len(values), "start": values[0], "warm": warm, "max": max(values), "end": end,
            "margin": margin, "flat": end - warm <= margin}
