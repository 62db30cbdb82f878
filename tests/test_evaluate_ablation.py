"""The ablation study (train/ablation.py trains the variants, evaluate/ablation.py scores them) with budgets of
a second on a tiny PokeSim store (never the real study)."""
import json

import pytest
import yaml

from eval_support import SIM_FRAMES, SIM_RES, make_tiny_pokesim
from poke2video.errors import UserError
from poke2video.evaluate.ablation import check_study_data, score_study
from poke2video.evaluate.results import EvalOptions
from poke2video.preset import load_preset
from poke2video.train import ablation as study
from train_support import write_preset


def test_every_variant_of_paper128_is_a_valid_preset(tmp_path):
    presets = study.variant_presets("paper-128", list(study.VARIANTS))
    assert list(presets) == ["full", "bottleneck_rnn", "no_traj", "single_stage", "K1", "K2", "K3"]
    assert presets["full"] == {"model": presets["no_traj"]["model"], "train": {**presets["no_traj"]["train"],
                                                                               "traj_weight": 0.1}}
    assert presets["bottleneck_rnn"]["model"]["dynamics"] == "bottleneck_rnn"
    assert presets["single_stage"]["train"]["schedule"] == "single"
    assert [presets[f"K{k}"]["model"]["levels"] for k in (1, 2, 3)] == [1, 2, 3]
    assert presets["full"]["model"]["levels"] == 4
    for name, preset in presets.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(json.loads(json.dumps(preset))))
        load_preset(str(path))  # validates
    with pytest.raises(UserError, match="not the paper's GRU model"):
        study.variant_presets("cpu-64", ["full"])


@pytest.mark.slow
def test_tiny_study_trains_evaluates_and_writes_the_tables(tmp_path):
    data = make_tiny_pokesim(tmp_path / "sim")
    preset = write_preset(tmp_path / "tiny.yaml", model={"resolution": SIM_RES, "frames": SIM_FRAMES})
    assert load_preset(str(preset)).model.levels == 3   # so K3 is skipped: it is the full model
    out = tmp_path / "study"
    options = EvalOptions(limit=2, structure_clips=1, structure_pokes=2, lpips="off", fvd=False)

    def run():
        check_study_data(str(data), ("test", "test_unseen"))
        trained = study.train_variants(str(data), out, 0.005, str(preset), ["full", "no_traj", "K1", "K3"],
                                       options.seed)
        return score_study(str(data), out, trained, 0.005, options=options, command="the study")

    assert run() == out / "ablation.md"
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
    assert run() == out / "ablation.md"                 # finished models are not trained again
    assert weights.stat().st_mtime_ns == before


def test_study_needs_a_pokesim_store(tmp_path):
    from train_support import make_tiny_store

    store = make_tiny_store(tmp_path / "flow")
    with pytest.raises(UserError, match="not a PokeSim store"):
        check_study_data(str(store), ("test",))
    with pytest.raises(UserError, match="not a PokeSim store"):
        score_study(str(store), tmp_path / "o", {}, 1.0)
    assert not (tmp_path / "o").exists()
