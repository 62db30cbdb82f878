"""The paper's ablations (Table 3 plus the depth K) of a preset of its GRU model, trained for equal budgets.

`train_variants` trains a preset of the paper's GRU model (default paper-64) and its ablations, each for the
same number of minutes (`train_run`): `full`; `bottleneck_rnn` (model.dynamics: three stacked GRU cells at
the bottleneck, finer skips fixed to the source's features); `no_traj` (train.traj_weight 0);
`single_stage` (train.schedule single); `K1`, `K2`, `K3` (model.levels below the preset's). A finished
model is not trained again (`OUT/runs/NAME/study.json`), so a killed study run again with the same
arguments continues.

    OUT/presets/NAME.yaml  OUT/runs/NAME/model.safetensors

benchmarks/ablation_study.py trains them with this module and scores them (`evaluate/ablation.py`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from poke2video.errors import UserError, print_line
from poke2video.fsutil import atomic_path, remove_path, write_json
from poke2video.preset import load_preset
from poke2video.train.loop import train_run

# name: (row label, model overrides, train overrides); K variants take their level count from the name
VARIANTS = {
    "full": ("full", {}, {}),
    "bottleneck_rnn": ("RNN at bottleneck", {"dynamics": "bottleneck_rnn"}, {}),
    "no_traj": ("without L_traj", {}, {"traj_weight": 0.0}),
    "single_stage": ("single stage", {}, {"schedule": "single"}),
    "K1": ("K = 1", {"levels": 1}, {}),
    "K2": ("K = 2", {"levels": 2}, {}),
    "K3": ("K = 3", {"levels": 3}, {}),
}
DONE_FILE = "study.json"


def variant_presets(base_preset: str, names: list[str]) -> dict[str, dict]:
    """{name: preset dict} for the chosen variants of `base_preset`; K variants at or above its K are skipped."""
    recipe = load_preset(base_preset)
    base = recipe.to_dict()
    if recipe.family != "gru":
        raise UserError(f"preset {base_preset} is not the paper's GRU model (architecture gru), whose parts the "
                        "study varies; use paper-64, paper-128 or a YAML file of that model")
    presets = {}
    for name in names:
        if name not in VARIANTS:
            raise UserError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        _, model_changes, train_changes = VARIANTS[name]
        if model_changes.get("levels", 0) >= base["model"]["levels"]:
            print_line(f"skipping {name}: the preset's own K is {base['model']['levels']}")
            continue
        presets[name] = {"model": {**base["model"], **model_changes}, "train": {**base["train"], **train_changes}}
    return presets


def train_variant(name: str, preset: dict, data: str, out: Path, minutes: float, seed: int) -> dict:
    """Train one variant for `minutes`, or to its preset's steps if sooner (skipped when an earlier run of the
    study finished it)."""
    run_dir = out / "runs" / name
    done = run_dir / DONE_FILE
    if done.is_file():
        return json.loads(done.read_text())
    remove_path(run_dir)  # an unfinished run: its budget cannot be split, start again
    preset_path = out / "presets" / f"{name}.yaml"
    preset_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(preset_path) as tmp:
        tmp.write_text(yaml.safe_dump(json.loads(json.dumps(preset)), sort_keys=False))  # tuples -> lists
    began = time.monotonic()
    trainer = train_run(data, str(run_dir), str(preset_path), max_minutes=minutes, seed=seed)
    record = {"steps": trainer.step, "minutes": round((time.monotonic() - began) / 60, 2), "budget_minutes": minutes}
    write_json(done, record)
    return record


def train_variants(data: str, out: str | Path, minutes_per_model: float, preset: str = "paper-64",
                   variants: list[str] | None = None, seed: int = 0) -> dict[str, dict]:
    """Train every chosen variant of `preset` (all when None) for `minutes_per_model`; {name: its record
    (its row label, steps reached, minutes taken, budget)}. Each variant's weights:
    OUT/runs/NAME/model.safetensors."""
    presets = variant_presets(preset, list(VARIANTS) if variants is None else variants)
    trained = {name: train_variant(name, variant, data, Path(out), minutes_per_model, seed)
               for name, variant in presets.items()}
    return {name: {"label": VARIANTS[name][0], **record} for name, record in trained.items()}
