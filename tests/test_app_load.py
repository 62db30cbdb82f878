"""The app under load, briefly: 8 clients dragging for a few seconds (app_load_support.py's loop).

Only 200 and the documented 429 may come back, and the server must still answer afterwards. The full
minute against the bundled model is `benchmarks/load_app.py` (docs/benchmarks.md).
"""
import httpx
import numpy as np
import pytest
import torch

from app_load_support import drag, memory_summary, run_load
from app_support import TINY, ServerThread
from poke2video.app.images import Limits
from poke2video.app.server import create_app
from poke2video.model import PokeModel
from poke2video.poker import Poker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.slow
@pytest.mark.parametrize("think_ms, max_waiting", [(80, 4), (0, 1)])   # the page's pace; hammering a short queue
def test_eight_dragging_clients_get_only_200_and_429(think_ms, max_waiting):
    torch.manual_seed(0)
    app = create_app(Poker(PokeModel(TINY), trace=True), "tiny", Limits(max_waiting=max_waiting))
    with ServerThread(app) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            images = client.get("/api/examples").json()
            uploaded = app.state.poke2video.images.add_upload("big.png", np.zeros((300, 400, 3), np.uint8))
            images.append(uploaded.describe())
            result = run_load(url, images, clients=8, seconds=2.5, think_s=think_ms / 1000)
            assert set(result["statuses"]) <= {200, 429}, result["problems"]
            assert result["problems"] == []
            if max_waiting == 1:
                # 8 clients without pause against a queue of one, in this process beside the server: how many
                # get through in 2.5 s depends on the machine (2 of them once in a clean-clone CI run), so
                # only that some do, and that the bound turned the rest away.
                assert result["ok"] >= 1 and result["busy"] > 0
            else:
                assert result["ok"] >= 5
            assert client.get("/api/model").status_code == 200    # alive afterwards
            body = {"image_id": "example-willow", "source": [30, 20], "target": [34, 22]}
            assert client.post("/api/poke", json=body).status_code == 200


def test_drags_stay_inside_the_image_and_memory_verdicts():
    rng = np.random.default_rng(0)
    for _ in range(500):                                  # the last target once came out at -1e-15: a 400
        width, height = (int(v) for v in rng.integers(1, 600, 2))
        image = {"image_id": "x", "width": width, "height": height, "source": [width - 1, 0]}
        bodies = list(drag(rng, image))
        assert 4 <= len(bodies) <= 15 and len({tuple(b["source"]) for b in bodies}) == 1
        for body in bodies:
            for x, y in (body["source"], body["target"]):
                assert 0 <= x <= width - 1 and 0 <= y <= height - 1
            assert body["format"] == ("jpeg" if max(width, height) > 128 else "png")
    samples = [(t, 300.0 + t) for t in range(60)]                    # 1 MB a second: growing
    assert not memory_summary(samples, 10)["flat"]
    assert memory_summary([(t, 300.0 + (t < 10) * t) for t in range(60)], 10)["flat"]
