"""The app's JSON API on a tiny model: the happy paths, and every error case as a clear JSON 4xx."""
import base64
import io
import re
import threading
import time

import av
import numpy as np
import pytest
from PIL import Image

from app_support import TINY, GatedModel, T, tiny_checkpoint
from poke2video.app.images import Limits
from poke2video.app.server import create_app
from poke2video.poker import Poker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # starlette's TestClient over httpx
TestClient = pytest.importorskip("fastapi.testclient").TestClient


@pytest.fixture(scope="module")
def poker(tmp_path_factory):
    return Poker.load(tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.safetensors"))


LOCAL = "http://127.0.0.1"    # the Host the app serves by default; TestClient's own "testserver" is refused


def make_client(poker, **limits):
    return TestClient(create_app(poker, "tiny", Limits(**limits)), base_url=LOCAL)


@pytest.fixture(scope="module")
def client(poker):
    with make_client(poker) as test_client:
        yield test_client


def png(width: int, height: int, mode: str = "RGB", **save) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), 128).save(buffer, format="PNG", **save)
    return buffer.getvalue()


def upload(client, data: bytes, name: str = "img.png"):
    return client.post("/api/images", files={"file": (name, data, "image/png")})


def poke(client, image_id="example-willow", source=(30, 20), target=(34, 22), **extra):
    return client.post("/api/poke", json={"image_id": image_id, "source": list(source), "target": list(target),
                                          **extra})


def assert_error(response, status: int, *words: str):
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    for word in words:
        assert word in detail, detail


def decode_frame(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB"))


def test_model_and_examples(client):
    model = client.get("/api/model").json()
    assert model["resolution"] == 16 and model["frames"] == T and model["modes"] == ["displacement"]
    examples = client.get("/api/examples").json()
    assert len(examples) >= 4 and any(e["background"] for e in examples)
    assert {e["kind"] for e in examples} == {"plant", "figure"}
    image = client.get(examples[0]["url"])
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (examples[0]["width"], examples[0]["height"])


def test_poke_returns_t_frames_at_the_image_size(client):
    example = client.get("/api/examples").json()[0]
    response = poke(client, example["image_id"], example["source"], example["target"])
    body = response.json()
    assert response.status_code == 200 and body["count"] == T == len(body["frames"])
    assert body["ms"] > 0 and body["mode"] == "displacement" and body["format"] == "png"
    assert decode_frame(body["frames"][0]).shape == (example["height"], example["width"], 3)


def test_upload_scales_to_the_work_size_and_pokes(client):
    info = upload(client, png(1000, 700)).json()
    assert (info["width"], info["height"]) == (512, 358) and info["name"] == "img.png"
    body = poke(client, info["image_id"], (500, 10), (511, 357)).json()
    assert decode_frame(body["frames"][-1]).shape == (358, 512, 3)
    body = poke(client, info["image_id"], (500, 10), (511, 357), format="jpeg").json()
    assert body["format"] == "jpeg" and base64.b64decode(body["frames"][0])[:2] == b"\xff\xd8"
    assert decode_frame(body["frames"][0]).shape == (358, 512, 3)


def test_upload_turns_exif_rotated_photos_upright(client):
    exif = Image.Exif()
    exif[0x0112] = 6                                             # orientation: rotate 90 degrees
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), 90).save(buffer, format="JPEG", exif=exif)
    info = upload(client, buffer.getvalue(), "photo.jpg").json()
    assert (info["width"], info["height"]) == (20, 40)


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_video_download(client, fmt, tmp_path):
    response = client.post("/api/video", json={"image_id": "example-doll", "source": [40, 30], "target": [36, 33],
                                               "format": fmt})
    assert response.status_code == 200
    assert f'filename="poke2video-doll.{fmt}"' in response.headers["content-disposition"]
    path = tmp_path / f"v.{fmt}"
    path.write_bytes(response.content)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == T + 1 and frames[0].shape == (64, 64, 3)


@pytest.mark.parametrize("source, target, status, words", [
    ((64, 3), (4, 4), 400, ["source", "outside", "64x64"]),
    ((3, 3), (-1, 4), 400, ["target", "outside"]),
    ((3, 3, 3), (4, 4), 422, ["source"]),
    ((3,), (4, 4), 422, ["source"]),
    (("a", 3), (4, 4), 422, ["source"]),
    (("1", "2"), (4, 4), 422, ["source"]),      # numbers in strings are not numbers
    ((3, 3), (True, 4), 422, ["target"]),
])
def test_bad_pokes(client, source, target, status, words):
    assert_error(poke(client, source=source, target=target), status, *words)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_coordinates(client, literal):
    body = '{"image_id": "example-willow", "source": [%s, 3], "target": [4, 4]}' % literal
    response = client.post("/api/poke", content=body, headers={"content-type": "application/json"})
    assert_error(response, 422, "source", "finite")


def test_malformed_requests(client):
    assert_error(client.post("/api/poke", json={"source": [1, 1], "target": [2, 2]}), 422, "image_id")
    assert_error(client.post("/api/poke", content="{", headers={"content-type": "application/json"}), 422)
    assert_error(poke(client, mode="sideways"), 422, "mode")
    assert_error(poke(client, format="bmp"), 422, "format")
    assert_error(poke(client, mode="impulse"), 400, "impulse", "not available")
    assert_error(client.post("/api/video", json={"image_id": "example-willow", "source": [1, 1],
                                                 "target": [2, 2], "format": "avi"}), 422, "format")


def test_unknown_image_id(client):
    for response in (poke(client, image_id="no-such-image"), client.get("/api/images/no-such-image"),
                     client.post("/api/video", json={"image_id": "x", "source": [1, 1], "target": [2, 2]})):
        assert_error(response, 404, "unknown image id", "upload")


def test_non_image_uploads(client):
    assert_error(upload(client, b"this is not an image", "notes.txt"), 415, "not an image")
    assert_error(upload(client, png(20, 20)[:60]), 415, "broken")
    assert_error(upload(client, b""), 400, "empty")
    assert_error(client.post("/api/images", data={"other": "field"}), 422, "file")


def test_upload_byte_limit(poker):
    with make_client(poker, max_upload_bytes=1000) as small:
        big = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(big).save(buffer, format="PNG")
        assert_error(upload(small, buffer.getvalue()), 413, "request has", "at most 1,000")         # refused by Content-Length
        assert_error(upload(small, b"x" * 1500), 413, "larger than", "1,000 bytes")                   # refused after reading


def test_upload_pixel_limit(poker):
    with make_client(poker, max_pixels=10_000) as small:
        assert_error(upload(small, png(101, 100, mode="1")), 413, "101x100", "10,000")
        assert upload(small, png(100, 100)).status_code == 200


def test_old_uploads_are_forgotten(poker):
    with make_client(poker, max_images=2) as small:
        ids = [upload(small, png(8, 8)).json()["image_id"] for _ in range(3)]
        assert_error(poke(small, ids[0], (1, 1), (2, 2)), 404, "last 2 uploads")
        assert poke(small, ids[2], (1, 1), (2, 2)).status_code == 200
        assert poke(small, "example-willow").status_code == 200                      # examples stay


def test_busy_server_answers_429_and_recovers():
    GatedModel.gate.clear()
    with make_client(Poker(GatedModel(TINY)), max_waiting=1) as small:
        queue = small.app.state.poke2video.queue
        results = []
        threads = [threading.Thread(target=lambda: results.append(poke(small).status_code)) for _ in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while queue.pending < 2 and time.monotonic() < deadline:     # one running, one waiting
            time.sleep(0.01)
        assert_error(poke(small), 429, "busy")
        assert_error(upload(small, png(8, 8)), 429, "busy")
        GatedModel.gate.set()
        for thread in threads:
            thread.join(30)
        assert results == [200, 200]
        assert poke(small).status_code == 200


def test_a_failing_model_gives_500_json_and_the_server_keeps_going():
    GatedModel.gate.set()
    app = create_app(Poker(GatedModel(TINY)), "failing")
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as failing:
        GatedModel.fail = True
        try:
            assert_error(poke(failing), 500, "internal error", "boom")
        finally:
            GatedModel.fail = False
        assert poke(failing).status_code == 200


def test_impulse_checkpoints_offer_both_modes(tmp_path):
    impulse = Poker.load(tiny_checkpoint(tmp_path / "impulse.safetensors", {"impulse_scale": 0.5}))
    with make_client(impulse) as client:
        model = client.get("/api/model").json()
        assert model["modes"] == ["impulse", "displacement"] and model["impulse_scale"] == 0.5
        assert poke(client).json()["mode"] == "impulse"
        assert poke(client, mode="displacement").json()["mode"] == "displacement"


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/images", "/api/examples", "/api/poke", "/api/video", "/api/model"):
        assert path in spec["paths"]
    assert "PokeResponse" in spec["components"]["schemas"]
    page = client.get("/")
    assert page.status_code == 200 and "canvas" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_the_openapi_page_needs_no_network(client):
    """Swagger UI loads its script and style from this server, so /docs works offline (a CDN did not)."""
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"} <= set(sources)
    assert not [url for url in sources if "://" in url], sources
    script = client.get("/docs-assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert len(script.content) > 100_000
