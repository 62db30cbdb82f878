"""The app end to end in headless Debian Chromium (Playwright): pick an example, drag with the mouse, see
frames arrive and the arrow drawn, download a video. Screenshots go to test-artifacts/."""
import time
from pathlib import Path

import av
import pytest

from app_support import TINY, GatedModel, ServerThread, T, tiny_checkpoint
from poke2video.app.server import create_app
from poke2video.poker import Poker

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(),
                                 reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; "
                                        ".ci/run installs it)")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    poker = Poker.load(tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors"))
    with ServerThread(create_app(poker, "tiny test model")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def policy_violations(page) -> list[str]:
    """The page's console messages about its Content-Security-Policy, as they come (a list kept up to date)."""
    found = []
    page.on("console", lambda message: found.append(message.text) if "Content Security Policy" in message.text
            else None)
    return found


def wait_for(page, expression: str, timeout: float = 30000) -> None:
    """Wait until `expression` is true in the page, asked from here: the page's Content-Security-Policy
    forbids eval, which Playwright's own wait_for_function polls with."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(25)


def counter(page, name: str) -> int:
    return int(page.get_attribute("#status", f"data-{name}"))


def canvas_pixel(page, x: float, y: float) -> list[int]:
    """RGBA of the canvas's backing store at (x, y) given in CSS pixels of the canvas."""
    return page.evaluate("""([x, y]) => {
        const c = document.getElementById('canvas'), r = c.getBoundingClientRect();
        const px = Math.round(x * c.width / r.width), py = Math.round(y * c.height / r.height);
        return Array.from(c.getContext('2d').getImageData(px, py, 1, 1).data);
    }""", [x, y])


def is_arrow_red(rgba) -> bool:
    r, g, b, _ = rgba
    return r > 200 and g < 90 and b < 90


def test_drag_on_an_example_plays_the_response_and_downloads(server, browser, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1000, "height": 760}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    violations = policy_violations(page)
    page.goto(server)
    page.wait_for_selector("#example-willow")
    assert "tiny test model" in page.inner_text("#model")
    assert page.is_hidden("#modes")                      # this checkpoint has no impulse mode
    page.click("#example-maple")
    wait_for(page, "document.querySelector('#example-maple').classList.contains('active')")

    box = page.locator("#canvas").bounding_box()
    start = (box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.35)
    page.mouse.move(*start)
    page.mouse.down()
    for k in range(1, 13):                                # drag right and up, a little at a time
        page.mouse.move(start[0] + 12 * k, start[1] - 4 * k)
        page.wait_for_timeout(40)
    wait_for(page, "Number(document.querySelector('#status').dataset.applied) >= 1", timeout=30000)
    assert counter(page, "frames") == T
    mid = (start[0] + 72 - box["x"], start[1] - 24 - box["y"])    # halfway along the arrow, canvas CSS px
    assert is_arrow_red(canvas_pixel(page, *mid)), "the arrow is not drawn under the pointer's path"
    page.screenshot(path=str(ARTIFACTS / "app_mid_drag.png"))
    page.mouse.up()

    wait_for(page, "!document.querySelector('#download-gif').disabled")
    requests = counter(page, "requests")
    assert requests >= 2 and counter(page, "errors") == 0
    assert "ms per video" in page.inner_text("#timing")
    ticks = page.evaluate("() => Number(document.querySelector('#status').dataset.arrows)")
    page.wait_for_timeout(700)                             # the response loops after release
    assert counter(page, "arrows") > ticks + 3
    page.screenshot(path=str(ARTIFACTS / "app_after_release.png"))

    with page.expect_download() as info:
        page.click("#download-mp4")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name == "poke2video-maple.mp4"
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == T + 1
    assert errors == [] and violations == []
    page.close()


def test_upload_and_error_message(server, browser, tmp_path):
    page = browser.new_page()
    page.goto(server)
    page.wait_for_selector("#example-willow.active")
    (tmp_path / "notes.txt").write_text("not an image")
    page.set_input_files("#upload", str(tmp_path / "notes.txt"))
    page.wait_for_selector("#error:not([hidden])")
    assert "not an image" in page.inner_text("#error")

    from PIL import Image
    Image.new("RGB", (300, 200), (30, 120, 200)).save(tmp_path / "blue.png")   # > 128 px: jpeg frames
    page.set_input_files("#upload", str(tmp_path / "blue.png"))
    wait_for(page, "document.querySelector('#error').hidden")
    size = page.evaluate("() => [document.getElementById('canvas').width, document.getElementById('canvas').height]")
    assert abs(size[0] / size[1] - 1.5) < 0.02           # the canvas takes the upload's shape
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 90, steps=5)
    page.mouse.up()
    wait_for(page, "Number(document.querySelector('#status').dataset.applied) >= 1", timeout=30000)
    page.screenshot(path=str(ARTIFACTS / "app_upload.png"))
    page.close()


def test_the_openapi_page_renders_with_no_network(server, browser):
    """/docs draws the API with every request to another host refused (its CDN scripts once left it blank)."""
    page = browser.new_page()
    outside = []

    def local_only(route):
        if route.request.url.startswith(server):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", local_only)
    violations = policy_violations(page)
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/poke']", timeout=30000)
    page.click(".opblock-summary-path[data-path='/api/model']")          # "Try it out" on GET /api/model
    page.click(".opblock-get .try-out__btn")
    page.click(".opblock-get .execute")
    page.wait_for_selector(".opblock-get .responses-table .response-col_status", timeout=30000)
    assert '"resolution"' in page.inner_text(".opblock-get .live-responses-table")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "openapi_docs.png"))
    assert outside == [] and violations == []
    page.close()


def test_another_page_cannot_frame_the_app(server, browser):
    """frame-ancestors 'none' and X-Frame-Options: a page elsewhere that frames the app gets an empty frame."""
    page = browser.new_page()
    violations = policy_violations(page)
    page.set_content(f'<iframe id="app" src="{server}/" width="400" height="300"></iframe>')
    deadline = time.monotonic() + 30
    while not any("frame-ancestors 'none'" in v for v in violations):
        assert time.monotonic() < deadline, "the frame was not refused"
        page.wait_for_timeout(25)
    assert page.frame_locator("#app").locator("#canvas").count() == 0
    page.close()


def test_touch_drag(server, browser):
    """A real touch (Chromium's touch input through CDP) drives the same Pointer Events path."""
    context = browser.new_context(has_touch=True, viewport={"width": 600, "height": 900})
    page = context.new_page()
    page.goto(server)
    page.wait_for_selector("#example-jelly")
    page.locator("#example-jelly").tap()
    wait_for(page, "document.querySelector('#example-jelly').classList.contains('active')")
    box = page.locator("#canvas").bounding_box()
    scrolled = page.evaluate("window.scrollY")
    cdp = context.new_cdp_session(page)
    x, y = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for k in range(1, 9):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x + 8 * k, "y": y - 5 * k}]})
        page.wait_for_timeout(40)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_for(page, "Number(document.querySelector('#status').dataset.applied) >= 1", timeout=30000)
    mid = (x + 32 - box["x"], y - 20 - box["y"])
    assert is_arrow_red(canvas_pixel(page, *mid))
    assert page.evaluate("window.scrollY") == scrolled           # the drag did not scroll the page
    page.screenshot(path=str(ARTIFACTS / "app_touch.png"))
    context.close()


def test_a_response_for_the_previous_image_is_dropped(browser):
    """Drag, switch to another example while the poke is still running: its late answer is not shown."""
    GatedModel.gate.clear()
    with ServerThread(create_app(Poker(GatedModel(TINY)), "gated")) as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#example-willow.active")           # the first example is shown on load
        box = page.locator("#canvas").bounding_box()
        page.mouse.move(box["x"] + 100, box["y"] + 100)
        page.mouse.down()
        page.mouse.move(box["x"] + 160, box["y"] + 120, steps=4)
        page.mouse.up()
        wait_for(page, "Number(document.querySelector('#status').dataset.requests) >= 1")
        page.click("#example-doll")
        wait_for(page, "document.querySelector('#example-doll').classList.contains('active')")
        GatedModel.gate.set()
        wait_for(page, "Number(document.querySelector('#status').dataset.dropped) >= 1", timeout=30000)
        assert counter(page, "applied") == 0
        page.close()


def test_impulse_checkpoints_get_a_mode_switch(browser, tmp_path):
    poker = Poker.load(tiny_checkpoint(tmp_path / "impulse.safetensors", {"impulse_scale": 0.5}))
    with ServerThread(create_app(poker, "impulse")) as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#example-willow.active")
        assert page.is_visible("#modes") and page.is_checked("input[value=impulse]")
        box = page.locator("#canvas").bounding_box()
        page.mouse.move(box["x"] + 200, box["y"] + 200)
        page.mouse.down()
        page.mouse.move(box["x"] + 260, box["y"] + 180, steps=4)
        page.mouse.up()
        wait_for(page, "document.querySelector('#status').dataset.busy === '0' && "
                               "Number(document.querySelector('#status').dataset.applied) >= 1", timeout=30000)
        with page.expect_request("**/api/poke") as sent:
            page.check("input[value=displacement]")         # the same poke again, read the other way
        assert sent.value.post_data_json["mode"] == "displacement"
        wait_for(page, "Number(document.querySelector('#status').dataset.applied) >= 2", timeout=30000)
        page.close()
