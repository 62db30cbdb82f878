"""The evaluator on tiny stores: known answers for the static baseline, unavailable networks, the report
folder, flow stores, and the `evaluate` command's errors."""
import json
import subprocess
import sys
import urllib.error

import av
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from eval_support import checkpoint, sim  # noqa: F401 (fixtures)
from poke2video import metrics
from poke2video.data.dataset import PokeDataset
from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video.evaluate import evaluator
from poke2video.evaluate.cases import load_cases
from poke2video.evaluate.evaluator import EvalOptions, Method, baseline_methods, evaluate, real_clip_method
from poke2video.evaluate.report import summarize, write_report
from poke2video.pretrained import perceptual
from train_support import make_tiny_store

OFFLINE_OFF = dict(lpips="off", fvd=False)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch hub cache, and downloads that fail as they do without a network."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def fail(url, dst, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)


def test_static_baseline_has_known_scores(sim):
    cases = list(load_cases(sim, "test"))
    result = evaluate(sim, "test", baseline_methods("static"), EvalOptions(structure_clips=1, structure_pokes=4,
                                                                           **OFFLINE_OFF))
    scores = result.per_clip["static"]
    assert [c.is_background for c in cases] == [True, False, False]
    assert scores["background_change"] == [0.0, None, None]
    assert scores["endpoint_error"][0] is None
    for case, error in zip(cases[1:], scores["endpoint_error"][1:]):
        assert case.poke_length > 1 and error == pytest.approx(case.poke_length, abs=1e-6)  # a still video
    assert scores["psnr"][0] == 100.0 and scores["ssim"][0] == pytest.approx(1.0)  # background: nothing moves
    assert all(v is not None and v > 0 for v in scores["motion_error"][1:])
    assert scores["structure_auc"] == [None, 0.5, None]  # a still video ties every pixel: chance


def test_summary_statuses_for_model_baselines_and_real_clip(sim, checkpoint):
    methods = [evaluator.model_method(str(checkpoint)), *baseline_methods("static,warp"), real_clip_method()]
    result = evaluate(sim, "test", methods, EvalOptions(structure_clips=1, structure_pokes=3, **OFFLINE_OFF))
    summary = summarize(result)
    assert list(summary) == ["model", "static", "warp", "real clip"]
    for name in ("model", "static", "warp"):
        entry = summary[name]["endpoint_error"]
        assert entry["status"] == "ok" and entry["n"] == 2 and entry["low"] <= entry["mean"] <= entry["high"]
        assert summary[name]["structure_auc"]["n"] == 1
    real = summary["real clip"]
    assert real["psnr"] == {"status": "not applicable", "reason": "compares the real clip with itself"}
    assert real["endpoint_error"]["status"] == "ok" and real["background_change"]["mean"] == 0.0
    assert summary["warp"]["endpoint_error"]["mean"] < summary["static"]["endpoint_error"]["mean"]
    assert summary["model"]["lpips"] == {"status": "unavailable", "reason": "turned off (--lpips off)"}


def test_missing_networks_are_reported_unavailable_with_the_option(sim, offline):
    result = evaluate(sim, "test", baseline_methods("static"), EvalOptions(limit=2, structure_clips=0))
    assert "--vgg16-weights" in result.unavailable["lpips"] and "--i3d-weights" in result.unavailable["fvd"]
    summary = summarize(result)["static"]
    assert summary["lpips"]["status"] == summary["fvd"]["status"] == "unavailable"
    assert all(v is None for v in result.per_clip["static"]["lpips"])
    with pytest.raises(UserError, match="--i3d-weights"):  # a file the user names must exist
        evaluate(sim, "test", baseline_methods("static"), EvalOptions(limit=2, lpips="off", i3d_weights="nope.pt"))


class MeanI3D(nn.Module):
    """Stand-in with the TorchScript I3D port's signature: a linear map of the clip's mean colours."""

    def __init__(self):
        super().__init__()
        self.project = nn.Linear(3 * 16, 400)

    def forward(self, videos: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        return self.project(videos.mean(dim=(3, 4)).flatten(1))


def test_lpips_and_fvd_are_computed_from_given_files(sim, tmp_path, offline):
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning):
        torch.jit.script(MeanI3D()).save(str(tmp_path / "i3d.pt"))
    lpips = perceptual.LPIPS("alex")
    torch.save(lpips.backbone.state_dict(), tmp_path / "alex.pth")
    torch.save({k: v.abs() for k, v in lpips.heads.state_dict().items()}, tmp_path / "heads.pth")
    options = EvalOptions(lpips="alex", lpips_backbone=str(tmp_path / "alex.pth"),
                          lpips_heads=str(tmp_path / "heads.pth"), i3d_weights=str(tmp_path / "i3d.pt"),
                          structure_clips=0)
    result = evaluate(sim, "test", baseline_methods("static,warp"), options)
    assert result.unavailable == {}
    assert result.per_clip["static"]["lpips"][0] == pytest.approx(0.0, abs=1e-6)  # background: identical frames
    assert result.per_clip["warp"]["lpips"][1] > 0
    assert set(result.fvd) == {"static", "warp"} and all(np.isfinite(v) and v >= 0 for v in result.fvd.values())


@pytest.mark.slow
def test_report_folder_holds_parseable_files(sim, checkpoint, tmp_path):
    methods = [evaluator.model_method(str(checkpoint)), *baseline_methods("static"), real_clip_method()]
    result = evaluate(sim, "test", methods, EvalOptions(structure_clips=1, structure_pokes=2, **OFFLINE_OFF))
    out = write_report(result, tmp_path / "report", command="poke2video evaluate ...")
    assert sorted(p.name for p in out.iterdir()) == ["examples.mp4", "examples.png", "metrics.json", "plots",
                                                    "report.md"]
    document = json.loads((out / "metrics.json").read_text())
    assert document["methods"] == ["model", "static", "real clip"] and document["clips"] == 3
    assert document["object_pokes"] == 2 and document["background_pokes"] == 1 and document["pokesim"]
    assert document["metrics"]["static"]["lpips"]["status"] == "unavailable"
    assert len(document["per_clip"]["scores"]["model"]["psnr"]) == 3
    table = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table] == ["| method", "| model", "| static", "| real clip"]
    assert "endpoint error" in table[0] and "unavailable" in table[1]
    for png in [out / "examples.png", *(out / "plots").iterdir()]:
        with Image.open(png) as image:
            assert image.format == "PNG" and min(image.size) > 50
    assert {p.name for p in (out / "plots").iterdir()} >= {"psnr.png", "endpoint_error.png", "structure_auc.png"}
    with av.open(str(out / "examples.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 11  # the sources, then frames 1..T
    assert not list(tmp_path.glob(".*tmp*"))


def test_flow_store_uses_the_datasets_test_pokes(tmp_path):
    store = Store.open(make_tiny_store(tmp_path / "store"))
    result = evaluate(store, "test", baseline_methods("static"), EvalOptions(structure_clips=2, **OFFLINE_OFF))
    dataset = PokeDataset(store, "test")
    dataset.set_epoch(0)
    for index, clip in enumerate(result.clips):
        source, displacement, background = dataset.sample(index)
        assert clip["source"] == list(source) and clip["is_background"] == background
        if not background:
            assert result.per_clip["static"]["endpoint_error"][index] == pytest.approx(np.hypot(*displacement))
    summary = summarize(result)["static"]
    assert summary["flow_error"] == {"status": "not applicable", "reason": "needs PokeSim ground truth"}
    assert summary["motion_error"]["status"] == "ok"          # against the real clip, tracked
    assert summary["structure_auc"]["status"] == "not applicable"


def test_model_clip_length_must_match_the_store(tmp_path, checkpoint):
    store = Store.open(make_tiny_store(tmp_path / "store"))  # T = 3; the model makes 10 frames
    with pytest.raises(UserError, match="makes 10 frames"):
        evaluate(store, "test", [evaluator.model_method(str(checkpoint))], EvalOptions(**OFFLINE_OFF))


def test_method_names_and_baseline_lists():
    assert baseline_methods("none") == [] and [m.name for m in baseline_methods(" warp, static ")] == ["warp", "static"]
    with pytest.raises(UserError, match="twice"):
        baseline_methods("static,static")
    with pytest.raises(UserError, match="unknown baseline"):
        baseline_methods("static,flow")
    assert Method("x", None).animate is None


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "poke2video", "evaluate", *map(str, args)],
                          capture_output=True, text=True)


@pytest.mark.slow
def test_evaluate_command_writes_the_report(sim, checkpoint, tmp_path):
    out = tmp_path / "reports" / "a"
    result = run_cli("--checkpoint", checkpoint, "--data", sim.root, "--limit", 2, "--out", out, "--lpips", "off",
                     "--no-fvd", "--structure-clips", 1, "--structure-pokes", 2, "--examples", 2)
    assert result.returncode == 0, result.stderr
    document = json.loads((out / "metrics.json").read_text())
    assert document["methods"] == ["model", "static", "warp", "real clip"] and document["clips"] == 2
    assert document["command"].startswith("poke2video evaluate --checkpoint")
    assert document["options"]["tracker"] == "farneback-fine"
    assert "`farneback-fine` flow" in (out / "report.md").read_text()
    again = run_cli("--checkpoint", checkpoint, "--data", sim.root, "--out", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.slow
def test_evaluate_tracker_choices_are_the_flow_estimators_and_are_recorded(sim, checkpoint, tmp_path):
    from poke2video.cli import TRACKERS
    from poke2video.data.flow import ESTIMATORS

    assert sorted(TRACKERS) == sorted(ESTIMATORS) and TRACKERS[0] == metrics.TRACKER
    result = run_cli("--checkpoint", checkpoint, "--data", sim.root, "--limit", 2, "--out", tmp_path / "r",
                     "--lpips", "off", "--no-fvd", "--structure-clips", 0, "--examples", 0, "--tracker", "dis-fine")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["options"]["tracker"] == "dis-fine"


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--data", "{tmp}/missing"], "no such dataset"),
    (["--data", "{sim}", "--baselines", "static,nearest"], "unknown baseline"),
    (["--data", "{sim}", "--split", "valid"], "no split 'valid'"),
    (["--data", "{sim}", "--checkpoint", "{tmp}/none.safetensors"], "checkpoint not found"),
])
def test_evaluate_command_errors_are_one_line_and_leave_nothing(sim, tmp_path, args, message):
    filled = [a.format(tmp=tmp_path, sim=sim.root) for a in args]
    result = run_cli(*filled, "--out", tmp_path / "out", "--lpips", "off", "--no-fvd")
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
