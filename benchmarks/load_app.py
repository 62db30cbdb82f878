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
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))
from app_load_support import ALLOWED, run_load  # noqa: E402  (the loop of tests/test_app_load.py)
from bench_app import served_app  # noqa: E402


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
