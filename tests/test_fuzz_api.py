"""The app's HTTP API fuzzed from its own OpenAPI schema with schemathesis, in-process over ASGI.

Every operation gets schema-valid requests (positive) and, where it takes input, schema-violating ones
(negative). Checks: no 5xx; the status code, content type, headers and body are the documented ones;
requests that violate the schema are refused with a 4xx; every error body is a one-line JSON `detail`.
Generated image ids rarely exist, so most pokes are pointed at a real image (an example scene or an
upload) and half the uploads carry a real image, to reach the model and the encoders as well.
"""
import io
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
    app = create_app(Poker(PokeModel(TINY)), "tiny")
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


@fuzz(120)
@given(data=st.data())
def test_schema_valid_requests(api, data):
    schema, known = api
    case = data.draw(st.one_of([op.as_strategy() for op in operations(schema)]), label="case")
    steer(case, data, known)
    call(case, CHECKS)


@fuzz(80)
@given(data=st.data())
def test_schema_violating_requests_are_refused_with_4xx(api, data):
    schema, known = api
    takes_input = operations(schema, {"POST /api/images", *POKES})
    case = data.draw(st.one_of([op.as_strategy(generation_mode=GenerationMode.NEGATIVE) for op in takes_input]),
                     label="case")
    call(case, [*CHECKS, negative_data_rejection])


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
        with TestClient(app) as client:
            assert client.post("/api/poke", json=body).status_code == 200
