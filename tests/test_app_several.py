"""The app's JSON API with several pokes and pins: the "pokes" and "pins" fields beside today's, their limits,
and the two forms refused together, each a 4xx with one line."""
import pytest
import torch

from poke2video.app.images import Limits
from poke2video.app.server import create_app
from poke2video.flow_config import FlowModelConfig
from poke2video.model import FlowUNet, save_model
from poke2video.poker import Poker
from poke2video.poking.request import MAX_PINS, MAX_POKES
from test_app_api import LOCAL, assert_error, poker  # noqa: F401  (the gru model's fixture)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TestClient = pytest.importorskip("fastapi.testclient").TestClient
FRAMES = 4


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "flow.safetensors"
    save_model(path, FlowUNet(FlowModelConfig(resolution=16, unet_channels=[4, 8], time_basis=2, frames=FRAMES)))
    with TestClient(create_app(Poker.load(path), "tiny flow", Limits()), base_url=LOCAL) as test_client:
        yield test_client


def arrows(count: int) -> list[dict]:
    return [{"source": [10 + k, 12], "target": [14 + k, 10]} for k in range(count)]


def test_model_says_its_limits(client, poker):  # noqa: F811
    info = client.get("/api/model").json()
    assert info["max_pokes"] == MAX_POKES and info["max_pins"] == MAX_PINS
    with TestClient(create_app(poker, "tiny gru"), base_url=LOCAL) as gru:
        assert gru.get("/api/model").json()["max_pins"] == 0        # a model that draws frames takes no pins


def test_several_pokes_and_pins_give_frames_and_a_video(client):
    body = {"image_id": "example-willow", "pokes": arrows(3), "pins": [[40, 40], [5, 50]]}
    answer = client.post("/api/poke", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["count"] == FRAMES
    video = client.post("/api/video", json={**body, "format": "gif"})
    assert video.status_code == 200 and video.content[:3] == b"GIF"
    single = client.post("/api/poke", json={"image_id": "example-willow", "source": [10, 12], "target": [14, 10],
                                            "pins": [[40, 40]]})
    assert single.status_code == 200, single.text


@pytest.mark.parametrize("body, status, words", [
    ({"pokes": arrows(MAX_POKES + 1)}, 400, [f"1 to {MAX_POKES}", f"got {MAX_POKES + 1}"]),
    ({"pokes": arrows(1), "pins": [[1, 1]] * (MAX_PINS + 1)}, 400, [f"at most {MAX_PINS} pins"]),
    ({"pokes": arrows(1), "source": [1, 1], "target": [2, 2]}, 400, ["not both"]),
    ({}, 400, ["no poke"]),
    ({"pokes": []}, 400, [f"1 to {MAX_POKES}"]),
    ({"pokes": arrows(1), "pins": [[1, 999]]}, 400, ["pins[0] (1, 999) is outside"]),
    ({"pokes": [{"source": [1, 1]}]}, 422, ["pokes", "target"]),
    ({"pokes": arrows(1), "pins": [[1, "2"]]}, 422, ["pins"]),
])
def test_bad_pokes_and_pins_are_one_line_4xx(client, body, status, words):
    for path in ("/api/poke", "/api/video"):
        assert_error(client.post(path, json={"image_id": "example-willow", **body}), status, *words)


def test_a_model_without_flows_refuses_pins(poker):  # noqa: F811
    with TestClient(create_app(poker, "tiny gru"), base_url=LOCAL) as gru:
        assert_error(gru.post("/api/poke", json={"image_id": "example-willow", "pokes": arrows(2),
                                                 "pins": [[20, 20]]}), 400, "pins need a model that gives flows")
        assert gru.post("/api/poke", json={"image_id": "example-willow", "pokes": arrows(2)}).status_code == 200
