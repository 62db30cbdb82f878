"""Evaluation of stores with several pokes and pins: every method gets every poke and pin, pinned pixels are
measured, and the Gaussian warp adds its pokes' fields and holds its pins."""
import json

import numpy as np
import pytest
import torch

from poke2video.data.store import Store
from poke2video.evaluate.baselines import WarpBaseline, static_baseline
from poke2video.evaluate.cases import load_cases
from poke2video.evaluate.evaluator import evaluate_to_dir
from poke2video.evaluate.results import EvalOptions
from poke2video.flow_config import FlowModelConfig
from poke2video.model import FlowUNet, save_model
from poke2video.sim.generate import simulate_dataset

torch.set_num_threads(1)


def texture(size=48) -> np.ndarray:
    ys, xs = np.mgrid[:size, :size]
    return np.stack([(xs * 7) % 255, (ys * 11) % 255, (xs * ys) % 255], -1).astype(np.uint8)


def test_warp_adds_the_fields_of_its_pokes():
    warp, frame = WarpBaseline(), texture(96)
    first, second = ((20, 20), (24, 20)), ((75, 70), (75, 66))
    both = warp.forward_flow(frame, *first, 5, pokes=[first, second])
    alone = warp.forward_flow(frame, *first, 5) + warp.forward_flow(frame, *second, 5)
    np.testing.assert_allclose(both, alone, atol=1e-5)
    np.testing.assert_allclose(both[-1, :, 20, 20], [4, 0], atol=1e-3)
    np.testing.assert_allclose(both[-1, :, 70, 75], [0, -4], atol=1e-3)


def test_warp_is_still_at_its_pins_and_moves_elsewhere():
    warp, frame = WarpBaseline(), texture()
    pin = (26, 20)
    flow = warp.forward_flow(frame, (20, 20), (26, 20), 5, pokes=[((20, 20), (26, 20))], pins=[pin])
    assert np.abs(flow[:, :, pin[1], pin[0]]).max() == 0
    assert np.hypot(*flow[-1, :, 20, 14]) > 1.0
    video = warp(frame, (20, 20), (26, 20), 5, pokes=[((20, 20), (26, 20))], pins=[pin])
    np.testing.assert_array_equal(video[:, pin[1], pin[0]], np.repeat(frame[None, pin[1], pin[0]], 5, axis=0))
    assert not np.array_equal(video[-1], frame)
    np.testing.assert_array_equal(static_baseline(frame, (1, 1), (2, 2), 3, pokes=[], pins=[pin]),
                                  np.repeat(frame[None], 3, axis=0))


@pytest.fixture(scope="module")
def several(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "several"
    simulate_dataset(out, clips=40, resolution=32, seed=2, chunk_clips=20, max_pokes=3, max_pins=2)
    return out


def test_cases_carry_every_poke_and_pin(several):
    cases = list(load_cases(Store.open(several), "train"))
    assert any(case.more_pokes for case in cases) and any(case.pins for case in cases)
    plain = [case for case in cases if not case.more_pokes and not case.pins]
    assert all(case.method_inputs() == {} for case in plain)
    case = next(case for case in cases if case.more_pokes and case.pins)
    inputs = case.method_inputs()
    assert inputs["pokes"][0] == (case.poke_source, case.poke_target) and len(inputs["pokes"]) == 1 + len(case.more_pokes)
    assert inputs["pins"] == list(case.pins)


def test_evaluate_reports_how_far_pinned_pixels_move(several, tmp_path):
    torch.manual_seed(0)
    model = FlowUNet(FlowModelConfig(resolution=32, unet_channels=[4, 8], time_basis=2, frames=10))
    with torch.no_grad():
        model.head.bias[:2] = 2.0                      # an untrained model that moves every pixel
    save_model(tmp_path / "model.safetensors", model)
    options = EvalOptions(limit=20, structure_clips=0, lpips="off", fvd=False, example_clips=1)
    out = evaluate_to_dir(str(tmp_path / "model.safetensors"), str(several), str(tmp_path / "report"), split="train",
                          baselines="static,warp", options=options)
    summary = json.loads((out / "metrics.json").read_text())["metrics"]
    pinned = {method: summary[method]["pin_motion"] for method in ("model", "static", "warp", "real clip")}
    assert all(entry["status"] == "ok" and entry["n"] >= 1 for entry in pinned.values())
    assert summary["model"]["pin_flow"]["mean"] == 0.0            # held at render time
    assert summary["warp"]["pin_flow"]["mean"] == 0.0
    assert summary["static"]["pin_motion"]["mean"] < 0.05
    assert "pinned motion" in (out / "report.md").read_text()
