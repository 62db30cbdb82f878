"""The ablation study script with budgets of a second on a tiny PokeSim store (never the real study)."""
import importlib.util
import json
from pathlib import Path

import pytest

from eval_support import SIM_FRAMES, SIM_RES, make_tiny_pokesim
from poke2video.config import load_preset
from train_support import write_preset

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ablation_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("ablation_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_variant_of_cpu64_is_a_valid_preset(study, tmp_path):
    presets = study.variant_presets("cpu-64", list(study.VARIANTS))
    assert list(presets) == ["full", "bottleneck_rnn", "no_traj", "single_stage", "K1", "K2", "K3"]
    assert presets["full"] == {"model": presets["no_traj"]["model"], "train": {**presets["no_traj"]["train"],
                                                                               "traj_weight": 0.1}}
    assert presets["bottleneck_rnn"]["model"]["dynamics"] == "bottleneck_rnn"
    assert presets["single_stage"]["train"]["schedule"] == "single"
    assert [presets[f"K{k}"]["model"]["levels"] for k in (1, 2, 3)] == [1, 2, 3]
    assert presets["full"]["model"]["levels"] == 4
    for name, preset in presets.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(study.yaml.safe_dump(json.loads(json.dumps(preset))))
        load_preset(str(path))  # validates


def test_tiny_study_trains_evaluates_and_writes_the_tables(study, tmp_path):
    data = make_tiny_pokesim(tmp_path / "sim")
    preset = write_preset(tmp_path / "tiny.yaml", model={"resolution": SIM_RES, "frames": SIM_FRAMES})
    assert load_preset(str(preset)).model.levels == 3   # so K3 is skipped: it is the full model
    out = tmp_path / "study"
    args = ["--data", str(data), "--out", str(out), "--minutes-per-model", "0.005", "--preset", str(preset),
            "--variants", "full,no_traj,K1,K3", "--limit", "2", "--structure-clips", "1", "--structure-pokes", "2",
            "--lpips", "off", "--no-fvd"]
    assert study.main(args) == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["K1", "full", "no_traj"]
    trained = json.loads((out / "runs" / "full" / "study.json").read_text())
    assert trained["steps"] >= 1 and trained["budget_minutes"] == 0.005
    text = (out / "ablation.md").read_text()
    assert "## `test`" in text and "## `test_unseen`" in text
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows.count("| without L_traj") == 2 and rows.count("| K = 1") == 2 and rows.count("| real clip") == 2
    assert rows.count("| full") == 4 and "| RNN at bottleneck" not in rows
    for split in ("test", "test_unseen"):
        document = json.loads((out / "reports" / split / "metrics.json").read_text())
        assert document["methods"] == ["full", "without L_traj", "K = 1", "static", "warp", "real clip"]
        assert document["clips"] == 2
    weights = out / "runs" / "full" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert study.main(args) == 0                        # finished models are not trained again
    assert weights.stat().st_mtime_ns == before


def test_study_needs_a_pokesim_store(study, tmp_path, capsys):
    from train_support import make_tiny_store

    store = make_tiny_store(tmp_path / "flow")
    assert study.main(["--data", str(store), "--out", str(tmp_path / "o"), "--minutes-per-model", "1"]) == 2
    assert "not a PokeSim store" in capsys.readouterr().err and not (tmp_path / "o").exists()
