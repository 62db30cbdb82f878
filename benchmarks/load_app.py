"""Load test of the app: concurrent clients dragging on images, over loopback only.

    .venv/bin/python benchmarks/load_app.py [--checkpoint CKPT] [--clients 8] [--seconds 60] [--think-ms 80]

Starts `poke2video app` (the bundled model unless --checkpoint) in a subprocess on a free 127.0.0.1 port,
uploads two images (512 x 384 and 160 x 120), then runs --clients threads for --seconds. Each client drags
as a person on the page does: it picks an image (an example scene or an upload), presses on a point and
moves the pointer in 4 to 15 steps towards an end point, sending POST /api/poke for each position (PNG
frames for the 64 px scenes, JPEG for the uploads, as the page asks) and, as the page's throttle, at most
one request in flight and one per --think-ms. It reports requests/s, latency percentiles, the count of each
status code, and the server's resident memory sampled every second (at start, after the warm-up, the most,
at the end; "flat" when the end is within max(10 MB, 5%) of the value after warm-up). Only 200 and the
documented 429 (queue full) are allowed: any other status, a failed connection, a dead server after the
run or memory that keeps growing is reported and the exit status is 1.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_app import percentile, served_app  # noqa: E402

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
        result[f"latency_{status}"] = ({q: percentile(values, q) for q in (50, 95, 99)} if values else None)
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


def upload(client: httpx.Client, width: int, height: int, fmt: str, seed: int) -> dict:
    """A photo-like image (smooth colour blobs) of width x height uploaded as `fmt`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    response = client.post("/api/images", files={"file": (f"load.{fmt.lower()}", buffer.getvalue())})
    response.raise_for_status()
    return response.json()


def report(result: dict, clients: int, think_ms: float, described: str) -> list[str]:
    """The printed report; also the list of failures (empty when the run passed)."""
    failures = [f"unexpected answers: {p}" for p in result["problems"]]
    others = {s: n for s, n in result["statuses"].items() if s not in ALLOWED}
    if others:
        failures.insert(0, f"statuses other than 200 and 429: {others}")
    if not result.get("alive", True):
        failures.append("the server did not answer GET /api/model after the run")
    seconds = result["seconds"]
    print(f"model: {described}; {clients} clients dragging for {seconds:.1f} s, at most one request each per "
          f"{think_ms:g} ms; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"requests: {result['answered']} answered, {result['answered'] / seconds:.1f}/s "
          f"({result['ok'] / seconds:.1f}/s with 200)")
    print("status codes: " + ", ".join(f"{s}: {n}" for s, n in sorted(result["statuses"].items(), key=str)))
    for status in (200, 429):
        q = result.get(f"latency_{status}")
        if q:
            print(f"latency of {status}s: p50 {q[50]:.1f} ms, p95 {q[95]:.1f} ms, p99 {q[99]:.1f} ms")
    rss = result.get("rss")
    if rss:
        verdict = "flat" if rss["flat"] else "GROWING"
        print(f"server RSS ({rss['samples']} samples, 1/s): start {rss['start']:.1f} MB, after warm-up "
              f"{rss['warm']:.1f} MB, max {rss['max']:.1f} MB, end {rss['end']:.1f} MB: {verdict} "
              f"(end within {rss['margin']:.1f} MB of the warm value)")
        if not rss["flat"]:
            failures.append(f"server memory grew from {rss['warm']:.1f} to {rss['end']:.1f} MB")
    print(f"server alive after the run: {'yes' if result.get('alive', True) else 'NO'}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model.safetensors (default: the bundled model)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think-ms", type=float, default=80.0, help="the page's throttle: one request per N ms")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before the 'after warm-up' RSS")
    args = parser.parse_args()
    with served_app(args.checkpoint) as (url, described, server):
        with httpx.Client(base_url=url, timeout=60) as client:
            images = client.get("/api/examples").json()
            images += [upload(client, 512, 384, "JPEG", 0), upload(client, 160, 120, "PNG", 1)]
        result = run_load(url, images, args.clients, args.seconds, args.think_ms / 1000, server.pid, args.warmup)
        try:
            result["alive"] = httpx.get(f"{url}/api/model", timeout=30).status_code == 200
        except httpx.HTTPError:
            result["alive"] = False
    failures = report(result, args.clients, args.think_ms, described)
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
