"""Latency and throughput of the app's POST /api/poke on this machine, over loopback only.

    .venv/bin/python benchmarks/bench_app.py [--checkpoint CKPT] [--requests 100] [--clients 4] [--seconds 15]

Starts `poke2video app` in a subprocess on a free 127.0.0.1 port (one torch thread, the default), then
1. latency: --requests sequential pokes (after 5 warm-up ones) with a random source and target each, on
   the 64 px example scenes and on an uploaded 512 x 512 image (the largest an upload is kept at; frames as
   PNG and as JPEG, which the page asks for above 128 px): p50 and p95 of the round trip (request to decoded
   JSON) and of the model's own time that the server reports;
2. throughput: --clients threads poking back to back for --seconds (at most --requests each): requests/s
   answered 200, and how many were refused with 429 (the queue bound).
Without --checkpoint it uses the bundled model, or when none is bundled, a cpu-64 model with random weights
(the same size and cost per video) written to a temporary file. Prints a table.
"""
from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resolve_checkpoint(checkpoint: str | None, folder: Path) -> tuple[str, str]:
    """(path, description): the given file, the bundled model, or a random cpu-64 stand-in."""
    from poke2video.poker import DEFAULT_WEIGHTS

    if checkpoint:
        return checkpoint, checkpoint
    if DEFAULT_WEIGHTS.is_file():
        return str(DEFAULT_WEIGHTS), "bundled default model"
    import torch

    from poke2video.model import build_model, save_model
    from poke2video.preset import load_preset

    torch.manual_seed(0)
    path = folder / "cpu64-random.safetensors"
    save_model(path, build_model(load_preset("cpu-64").model), {"name": "cpu-64, random weights"})
    return str(path), "cpu-64 with random weights (no bundled model yet)"


def start_server(checkpoint: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    process = subprocess.Popen([sys.executable, "-m", "poke2video", "app", "--checkpoint", checkpoint,
                                "--port", str(port)], stdout=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the app exited with status {process.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/model", timeout=2)
            return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the app did not start within 120 s")


@contextmanager
def served_app(checkpoint: str | None):
    """(url, model description, process): `poke2video app` on a free loopback port, stopped on exit."""
    with tempfile.TemporaryDirectory() as folder:
        path, described = resolve_checkpoint(checkpoint, Path(folder))
        port = free_port()
        server = start_server(path, port)
        try:
            yield f"http://127.0.0.1:{port}", described, server
        finally:
            server.terminate()
            server.wait(30)


def random_poke(rng, image: dict, fmt: str = "png") -> dict:
    w, h = image["width"], image["height"]
    source = [float(rng.uniform(0, w - 1)), float(rng.uniform(0, h - 1))]
    target = [float(np.clip(source[0] + rng.normal(0, w / 10), 0, w - 1)),
              float(np.clip(source[1] + rng.normal(0, h / 10), 0, h - 1))]
    return {"image_id": image["image_id"], "source": source, "target": target, "format": fmt}


def one_poke(client: httpx.Client, body: dict) -> tuple[int, float, float]:
    """(status, round-trip ms, model ms or nan)."""
    started = time.perf_counter()
    response = client.post("/api/poke", json=body)
    data = response.json()
    wall = (time.perf_counter() - started) * 1000
    return response.status_code, wall, float(data.get("ms", "nan")) if response.status_code == 200 else float("nan")


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, float), q))


def latency(client: httpx.Client, images: list[dict], requests: int, seed: int, fmt: str = "png") -> dict:
    rng = np.random.default_rng(seed)
    for _ in range(5):
        one_poke(client, random_poke(rng, images[0], fmt))
    walls, models = [], []
    for k in range(requests):
        status, wall, model = one_poke(client, random_poke(rng, images[k % len(images)], fmt))
        assert status == 200, status
        walls.append(wall)
        models.append(model)
    return {"p50": percentile(walls, 50), "p95": percentile(walls, 95),
            "model_p50": percentile(models, 50), "model_p95": percentile(models, 95)}


def throughput(url: str, images: list[dict], clients: int, seconds: float, cap: int) -> dict:
    counts = {"ok": 0, "busy": 0, "other": 0}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client_loop(index: int) -> None:
        rng = np.random.default_rng(100 + index)
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(cap):
                if time.perf_counter() > stop_at:
                    break
                status, _, _ = one_poke(client, random_poke(rng, images[index % len(images)]))
                key = "ok" if status == 200 else "busy" if status == 429 else "other"
                with lock:
                    counts[key] += 1

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {**counts, "seconds": elapsed, "per_s": counts["ok"] / elapsed}


def upload_square(client: httpx.Client, side: int) -> dict:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (side // 8, side // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    response = client.post("/api/images", files={"file": ("square.png", buffer.getvalue(), "image/png")})
    response.raise_for_status()
    return response.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--requests", type=int, default=100, help="sequential pokes per latency row; cap per client")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the throughput run")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with served_app(args.checkpoint) as (url, described, _):
        with httpx.Client(base_url=url, timeout=60) as client:
            examples = client.get("/api/examples").json()
            upload = upload_square(client, 512)
            rows = [("64 px examples, png frames", latency(client, examples, args.requests, 0)),
                    ("512 px upload, png frames", latency(client, [upload], args.requests, 1)),
                    ("512 px upload, jpeg frames", latency(client, [upload], args.requests, 2, "jpeg"))]
        busy = throughput(url, examples, args.clients, args.seconds, args.requests)
    print(f"model: {described}; load average before {load:.2f}, after {os.getloadavg()[0]:.2f}; "
          f"{os.cpu_count()} CPUs")
    print("| image | round trip p50 (ms) | p95 (ms) | model p50 (ms) | model p95 (ms) |")
    print("|---|---|---|---|---|")
    for name, row in rows:
        print(f"| {name} | {row['p50']:.1f} | {row['p95']:.1f} | {row['model_p50']:.1f} | {row['model_p95']:.1f} |")
    print(f"\n{args.clients} concurrent clients, 64 px, {busy['seconds']:.1f} s: {busy['per_s']:.1f} requests/s "
          f"answered ({busy['ok']} ok, {busy['busy']} refused with 429, {busy['other']} other)")


if __name__ == "__main__":
    main()
