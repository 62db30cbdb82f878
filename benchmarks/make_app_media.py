"""Regenerate the README's media: docs/app_drag.png (the app mid-drag) and docs/demo_scenes.gif.

    .venv/bin/python benchmarks/make_app_media.py [--checkpoint CKPT] [--docs docs] [--scene jelly]

docs/demo_scenes.gif: the demo's scenes side by side (image, then the model's frames, the poke drawn as
an arrow), looping. docs/app_drag.png: `poke2video app` in headless Debian chromium (/usr/bin/chromium,
through Playwright) with the mouse held down halfway through a drag on one example scene. Without
--checkpoint both use the bundled model.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench_app import free_port, start_server  # benchmarks/ is on sys.path when run as a script

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
GIF_SCALE = 2


def demo_gif(checkpoint: str | None, path: Path) -> None:
    from poke2video.demo import scene_video
    from poke2video.export import write_video
    from poke2video.poker import Poker
    from poke2video.sim.examples import example_scenes

    poker = Poker.load(checkpoint)
    videos = [scene_video(s, poker.animate(s.image, s.source, s.target), GIF_SCALE) for s in example_scenes(64)]
    gap = np.full((videos[0].shape[0], videos[0].shape[1], 4, 3), 255, np.uint8)
    tiles = [part for video in videos for part in (video, gap)][:-1]
    write_video(path, np.concatenate(tiles, axis=2), fps=6)
    print(f"wrote {path}")


def app_screenshot(checkpoint: str, path: Path, scene: str) -> None:
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = start_server(checkpoint, port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            # the app's Content-Security-Policy forbids eval, which wait_for_function polls with
            page = browser.new_page(viewport={"width": 1000, "height": 780}, bypass_csp=True)
            page.goto(f"http://127.0.0.1:{port}/")
            page.click(f"#example-{scene}")
            page.wait_for_function(f"document.querySelector('#example-{scene}').classList.contains('active')")
            _drag_halfway(page, scene)
            page.screenshot(path=str(path))
            page.mouse.up()
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    print(f"wrote {path}")


def _drag_halfway(page, scene: str) -> None:
    """Press on the scene's poked pixel and move towards its target (x4 the simulator's drag), holding on."""
    example = next(e for e in page.evaluate("fetch('/api/examples').then(r => r.json())") if e["name"] == scene)
    box = page.locator("#canvas").bounding_box()
    to_page = lambda xy: (box["x"] + (xy[0] + 0.5) * box["width"] / example["width"],   # noqa: E731
                          box["y"] + (xy[1] + 0.5) * box["height"] / example["height"])
    start = np.array(to_page(example["source"]))
    end = start + 2 * (np.array(to_page(example["target"])) - start)
    page.mouse.move(*start)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(*(start + (end - start) * k / 10))
        page.wait_for_timeout(60)
    page.wait_for_function("Number(document.querySelector('#status').dataset.applied) >= 2", timeout=60000)
    page.wait_for_timeout(500)          # a few frames into the looping response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model.safetensors (default: the bundled model)")
    parser.add_argument("--docs", default="docs", help="output folder (default docs)")
    parser.add_argument("--scene", default="jelly", help="example scene dragged in the screenshot")
    args = parser.parse_args()
    from poke2video.poker import DEFAULT_WEIGHTS

    checkpoint = args.checkpoint or str(DEFAULT_WEIGHTS)
    if not Path(checkpoint).is_file():
        raise SystemExit(f"no model at {checkpoint}; pass --checkpoint")
    docs = Path(args.docs)
    docs.mkdir(exist_ok=True)
    demo_gif(checkpoint, docs / "demo_scenes.gif")
    app_screenshot(checkpoint, docs / "app_drag.png", args.scene)


if __name__ == "__main__":
    main()
