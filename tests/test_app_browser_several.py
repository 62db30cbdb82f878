"""The page with several arrows and pins, in headless Debian Chromium: add arrows one after another, remove one,
place pins with the mouse and by touch; what the page draws and what it asks the API for."""
import pytest
import torch

from app_support import ServerThread
from poke2video.app.server import create_app
from poke2video.flow_config import FlowModelConfig
from poke2video.model import FlowUNet, save_model
from poke2video.poker import Poker
from test_app_browser import ARTIFACTS, browser, canvas_pixel, counter, is_arrow_red, wait_for  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "flow.safetensors"
    save_model(path, FlowUNet(FlowModelConfig(resolution=16, unet_channels=[4, 8], time_basis=2, frames=4)))
    with ServerThread(create_app(Poker.load(path), "tiny flow model")) as url:
        yield url


def poke_bodies(page) -> list[dict]:
    """The JSON bodies of the page's /api/poke requests, as they are sent (a list kept up to date)."""
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/poke") else None)
    return bodies


def settled(page, applied_before: int) -> None:
    """Wait until no request waits or runs and one more answer than `applied_before` has been shown."""
    wait_for(page, "document.querySelector('#status').dataset.busy === '0' && "
                   f"Number(document.querySelector('#status').dataset.applied) > {applied_before}", timeout=30000)


def drag(page, start, end) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()


def is_pin_white(rgba) -> bool:
    return all(channel > 200 for channel in rgba[:3])


def test_arrows_are_added_one_after_another_removed_and_pinned_with_the_mouse(server, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors, bodies = [], poke_bodies(page)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server)
    page.wait_for_selector("#example-willow.active")
    page.check("input[name=tool][value=add]")
    box = page.locator("#canvas").bounding_box()
    at = lambda fx, fy: (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)   # noqa: E731
    drag(page, at(0.3, 0.3), at(0.45, 0.3))
    settled(page, 0)
    applied = counter(page, "applied")
    drag(page, at(0.6, 0.7), at(0.6, 0.55))
    settled(page, applied)
    assert counter(page, "pokes") == 2 and len(bodies[-1]["pokes"]) == 2
    assert is_arrow_red(canvas_pixel(page, box["width"] * 0.375, box["height"] * 0.3))
    assert is_arrow_red(canvas_pixel(page, box["width"] * 0.6, box["height"] * 0.625))

    page.check("input[name=tool][value=pins]")
    applied = counter(page, "applied")
    page.mouse.click(*at(0.2, 0.8))
    wait_for(page, "document.querySelector('#status').dataset.pinned === '1'")
    settled(page, applied)
    width, height = page.evaluate("[state.image.width, state.image.height]")
    assert bodies[-1]["pins"] == [[pytest.approx(0.2 * width - 0.5, abs=0.1), pytest.approx(0.8 * height - 0.5, abs=0.1)]]
    ring = canvas_pixel(page, box["width"] * 0.2 + 12, box["height"] * 0.8)
    assert is_pin_white(ring), ring
    page.screenshot(path=str(ARTIFACTS / "app_several.png"))

    applied = counter(page, "applied")
    page.click("#marks li:first-child button")                     # remove arrow 1
    wait_for(page, "document.querySelector('#status').dataset.pokes === '1'")
    settled(page, applied)
    assert len(bodies[-1]["pokes"]) == 1 and len(bodies[-1]["pins"]) == 1
    assert not is_arrow_red(canvas_pixel(page, box["width"] * 0.375, box["height"] * 0.3))
    applied = counter(page, "applied")
    page.click("#marks li:last-child button")                      # remove the pin: one arrow, today's form
    wait_for(page, "document.querySelector('#status').dataset.pinned === '0'")
    settled(page, applied)
    assert "source" in bodies[-1] and "pokes" not in bodies[-1]
    assert errors == [] and counter(page, "errors") == 0
    page.close()


def test_pins_and_arrows_by_touch(server, browser):  # noqa: F811
    context = browser.new_context(has_touch=True, viewport={"width": 600, "height": 1000})
    page = context.new_page()
    bodies = poke_bodies(page)
    page.goto(server)
    page.wait_for_selector("#example-jelly")
    page.locator("#example-jelly").tap()
    wait_for(page, "document.querySelector('#example-jelly').classList.contains('active')")
    page.locator("label:has(input[value=pins])").tap()
    box = page.locator("#canvas").bounding_box()
    page.touchscreen.tap(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.2)
    wait_for(page, "document.querySelector('#status').dataset.pinned === '1'")
    page.locator("label:has(input[value=add])").tap()
    cdp = context.new_cdp_session(page)
    x, y = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for k in range(1, 7):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x + 8 * k, "y": y}]})
        page.wait_for_timeout(40)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    settled(page, 0)
    assert counter(page, "pokes") == 1
    assert len(bodies[-1]["pokes"]) == 1 and len(bodies[-1]["pins"]) == 1
    assert is_pin_white(canvas_pixel(page, box["width"] * 0.7 + 12, box["height"] * 0.2))
    page.screenshot(path=str(ARTIFACTS / "app_several_touch.png"))
    context.close()
