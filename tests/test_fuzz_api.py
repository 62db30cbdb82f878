"""The app's HTTP API fuzzed from its own OpenAPI schema with schemathesis, in-process over ASGI.

Every operation gets schema-valid requests (positive) and, where it takes input, schema-violating ones
(negative). Checks: no 5xx; the status code, content type, headers and body are the documented ones;
requests that violate the schema are refused with a 4xx; every error body is a one-line JSON `detail`.
Generated image ids rarely exist, so most pokes are pointed at a real image (an example scene or an
upload) and half the uploads carry a real image, to reach the model and the encoders as well.
"""
import io
import json
import warnings

import numpy as np
import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from PIL import Image

from app_support import TINY
from fuzz_support import assert_one_line, fuzz
from poke2video.app.server import create_app
from poke2video.model import PokeModel
from poke2video.poker import Poker

TestClient = pytest.importorskip("fastapi.testclient").TestClient
schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402
from schemathesis.python.asgi import HOST as schemathesis_host  # noqa: E402
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,  # noqa: E402
                                               response_headers_conformance, response_schema_conformance,
                                               status_code_conformance)

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning")]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
POKES = ("POST /api/poke", "POST /api/video")


def image_file(seed: int, width: int, height: int, fmt: str) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def api():
    """(schema, known image ids with their sizes) for the app on a tiny random-weight model."""
    torch.manual_seed(0)
    app = create_app(Poker(PokeModel(TINY)), "tiny", host=schemathesis_host)   # the Host its client sends
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    state = app.state.poke2video
    known = [(e["image_id"], e["width"], e["height"]) for e in state.examples]
    upload = state.images.add_upload("植物.png", np.zeros((9, 30, 3), np.uint8))     # a non-ASCII name
    known.append((upload.image_id, upload.width, upload.height))
    yield schema, known
    state.queue.close()


def operations(schema, labels=None):
    return [op.ok() for op in schema.get_all_operations() if labels is None or op.ok().label in labels]


def steer(case, data, known) -> None:
    """Point 3 in 4 pokes at a real image (coordinates mostly inside it) and give half the uploads an image."""
    label = case.operation.label
    mostly = st.sampled_from([True, True, True, False])
    if label in POKES and isinstance(case.body, dict) and data.draw(mostly, label="real image"):
        image_id, width, height = data.draw(st.sampled_from(known), label="image")
        case.body["image_id"] = image_id
        if data.draw(mostly, label="inside"):
            for key in ("source", "target"):
                case.body[key] = [data.draw(st.floats(0, width - 1)), data.draw(st.floats(0, height - 1))]
    if label == "POST /api/images" and isinstance(case.body, dict) and data.draw(st.sampled_from([True, False]), label="real file"):
        size = data.draw(st.tuples(st.integers(1, 40), st.integers(1, 40)))
        case.body["file"] = image_file(size[0], *size, data.draw(st.sampled_from(["PNG", "JPEG", "GIF", "BMP"])))


def call(case, checks) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response = case.call_and_validate(checks=checks)
    event(f"{case.operation.label} -> {response.status_code}")
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_one_line(response.json()["detail"])


@pytest.mark.slow
@fuzz(120)
@given(data=st.data())
def test_schema_valid_requests(api, data):
    schema, known = api
    case = data.draw(st.one_of([op.as_strategy() for op in operations(schema)]), label="case")
    steer(case, data, known)
    call(case, CHECKS)


@pytest.mark.slow
@fuzz(80)
@given(data=st.data())
def test_schema_violating_requests_are_refused_with_4xx(api, data):
    schema, known = api
    takes_input = operations(schema, {"POST /api/images", *POKES})
    case = data.draw(st.one_of([op.as_strategy(generation_mode=GenerationMode.NEGATIVE) for op in takes_input]),
                     label="case")
    call(case, [*CHECKS, negative_data_rejection])


@pytest.fixture(scope="module")
def local():
    """A client for the app on a tiny model, addressed as 127.0.0.1 (the host it serves by default)."""
    torch.manual_seed(0)
    with TestClient(create_app(Poker(PokeModel(TINY)), "tiny"), base_url="http://127.0.0.1") as client:
        yield client


def json_text(depth: int) -> st.SearchStrategy[str]:
    """JSON documents and near-misses: valid values, poke-shaped objects, nesting up to `depth`, cut ends."""
    leaf = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.integers(), st.text(max_size=8))
    value = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                           max_size=3), max_leaves=8)
    poke = st.fixed_dictionaries({"image_id": st.sampled_from(["example-willow", "x"]), "source": value,
                                  "target": st.lists(st.floats(0, 63), min_size=2, max_size=2)})
    valid = st.one_of(value, poke).map(json.dumps)
    deep = st.tuples(st.sampled_from(["[", '{"a":']), st.integers(1, depth)).map(lambda t: t[0] * t[1])
    return st.one_of(valid, valid.map(lambda text: text[:-1]), deep, st.text(max_size=40))


@fuzz(150)
@given(body=st.one_of(json_text(5000).map(str.encode), st.binary(max_size=200)),
       path=st.sampled_from(["/api/poke", "/api/video"]))
def test_any_body_gets_a_documented_answer(local, body, path):
    """Bodies that are not JSON (cut short, not UTF-8, nested past Python's stack) get 422 as documented,
    never FastAPI's 400; anything else a status of docs/reliability.md's table; every error one line."""
    response = local.post(path, content=body, headers={"content-type": "application/json"})
    try:
        json.loads(body)
        parsed = True
    except (ValueError, RecursionError):
        parsed = False
    event(f"{'JSON' if parsed else 'not JSON'} -> {response.status_code}")
    assert response.status_code in ({200, 400, 404, 422} if parsed else {422}), response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    if response.status_code >= 400:
        assert_one_line(response.json()["detail"])


@fuzz(100)
@given(name=st.sampled_from(["127.0.0.1", "localhost", "::1"]),
       prefix=st.from_regex(r"[a-z0-9.-]{0,6}", fullmatch=True), suffix=st.from_regex(r"[a-z0-9.-]{0,6}", fullmatch=True),
       port=st.one_of(st.none(), st.integers(0, 65535)), upper=st.booleans())
def test_only_the_served_host_names_are_answered(local, name, prefix, suffix, port, upper):
    """Host headers around the loopback names: only the names themselves (any case, a final dot, any port)
    are served; every other name, as a page rebinding its DNS name would send, gets 403 before anything runs."""
    host = prefix + name + suffix
    host = f"[{host}]" if ":" in host else host
    host = (host.upper() if upper else host) + (f":{port}" if port is not None else "")
    response = local.get("/api/model", headers={"host": host})
    served = prefix == "" and suffix in ("", ".")
    event(f"{'served' if served else 'other'} -> {response.status_code}")
    assert response.status_code == (200 if served else 403), host
    if not served:
        assert_one_line(response.json()["detail"], "does not answer for the host")


def test_a_video_of_an_upload_named_in_another_script(api):
    """Regression: the download's Content-Disposition could not encode 植物 (latin-1 headers): 500."""
    schema, known = api
    image_id, width, height = known[-1]
    case = operations(schema, {"POST /api/video"})[0].Case(
        body={"image_id": image_id, "source": [1, 1], "target": [width - 1, height - 1], "format": "gif"},
        media_type="application/json")
    response = case.call_and_validate(checks=CHECKS)
    assert response.status_code == 200
    disposition = response.headers["content-disposition"][0]
    assert 'filename="poke2video-_.gif"' in disposition and "%E6%A4%8D%E7%89%A9" in disposition


def test_the_app_serves_again_after_its_lifespan_restarts():
    """Regression: the lifespan's shutdown stopped the worker for good; a second client got 500 for every poke."""
    app = create_app(Poker(PokeModel(TINY)), "tiny")
    body = {"image_id": "example-willow", "source": [30, 20], "target": [34, 22]}
    for _ in range(2):
        with TestClient(app, base_url="http://127.0.0.1") as client:
            assert client.post("/api/poke", json=body).status_code == 200
