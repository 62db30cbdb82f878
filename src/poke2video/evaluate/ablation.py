"""The paper's ablation study (Table 3 plus the depth K) on PokeSim, with equal wall-clock budgets.

`run_study` trains a preset of the paper's GRU model (default paper-64) and its ablations, each for the same number of
minutes (`train_run`): `full`; `bottleneck_rnn` (model.dynamics: three stacked GRU cells at the
bottleneck, finer skips fixed to the source's features); `no_traj` (train.traj_weight 0); `single_stage`
(train.schedule single); `K1`, `K2`, `K3` (model.levels below the preset's). Then one evaluator call per
split scores every model next to the baselines and the real clip, writing a full report folder per
split, and `OUT/ablation.md` holds the two tables per split. A finished model is not trained again
(`OUT/runs/NAME/study.json`), so a killed study run again with the same arguments continues.

    OUT/presets/NAME.yaml  OUT/runs/NAME/  OUT/reports/SPLIT/  OUT/ablation.md

benchmarks/ablation_study.py is its command line.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from poke2video.config import load_preset, to_dict
from poke2video.data.store import Store
from poke2video.errors import UserError, print_line
from poke2video.evaluate.cases import is_pokesim
from poke2video.evaluate.evaluator import EvalOptions, baseline_methods, evaluate, model_method, real_clip_method
from poke2video.evaluate.report import markdown_table, summarize, write_report
from poke2video.fsutil import atomic_path, remove_path, write_json
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
TABLE3 = ("bottleneck_rnn", "no_traj", "single_stage", "full")
DEPTH = ("K1", "K2", "K3", "full")
DONE_FILE = "study.json"


def variant_presets(base_preset: str, names: list[str]) -> dict[str, dict]:
    """{name: preset dict} for the chosen variants of `base_preset`; K variants at or above its K are skipped."""
    base = to_dict(load_preset(base_preset))
    if base["model"]["architecture"] != "gru":
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
    """Train one variant for `minutes` (skipped when an earlier run of the study finished it)."""
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


def study_table(summary: dict, names: tuple[str, ...], trained: dict[str, dict], references: list[str]) -> str:
    """Rows: the variants in `names` (their labels), then the baselines and the real clip."""
    rows = {VARIANTS[n][0]: summary[VARIANTS[n][0]] for n in names if n in trained}
    rows.update({name: summary[name] for name in references})
    steps = {VARIANTS[n][0]: str(trained[n]["steps"]) for n in names if n in trained}
    return markdown_table(rows, extra_columns={"steps": steps})


def write_study(out: Path, summaries: dict[str, dict], trained: dict[str, dict], references: list[str],
                command: str, minutes: float) -> Path:
    lines = ["# Ablation study", "", f"`{command}`", "",
             f"Every model trained for {minutes:g} minutes (equal wall-clock budgets; `steps` = steps reached). "
             "Means with 95% bootstrap intervals; full reports (per clip, plots, examples) in `reports/SPLIT/`.",
             "The paper's Table 3 (Poking-Plants, 64 px; LPIPS / PSNR / FVD): full 0.06 / 21.81 / 89.67, "
             "RNN at bottleneck 0.08 / 20.92 / 175.42, without L_traj 0.07 / 21.53 / 110.00, "
             "single stage 0.07 / 21.41 / 115.65.", ""]
    for split, summary in summaries.items():
        lines += [f"## `{split}`", "", study_table(summary, TABLE3, trained, references), "",
                  "Depth K (the full model has the preset's K):", "",
                  study_table(summary, DEPTH, trained, []), ""]
    path = out / "ablation.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


def run_study(data: str, out: str, minutes_per_model: float, preset: str = "paper-64",
              variants: list[str] | None = None, splits: tuple[str, ...] = ("test", "test_unseen"),
              baselines: str = "static,warp", options: EvalOptions = EvalOptions(), command: str = "") -> Path:
    """Train every variant of `preset` for `minutes_per_model` (seed `options.seed`), score them all on
    each split of the PokeSim store `data`; returns OUT/ablation.md."""
    store = Store.open(data)
    if not is_pokesim(store):
        raise UserError(f"{data} is not a PokeSim store (poke2video simulate); the study needs its ground truth")
    for split in splits:
        store.clips(split)  # a missing split fails now, not after hours of training
    out_dir = Path(out)
    presets = variant_presets(preset, list(VARIANTS) if variants is None else variants)
    trained = {name: train_variant(name, variant, data, out_dir, minutes_per_model, options.seed)
               for name, variant in presets.items()}
    models = [model_method(str(out_dir / "runs" / name / "model.safetensors"), VARIANTS[name][0]) for name in trained]
    references = baseline_methods(baselines) + [real_clip_method()]
    summaries = {}
    for split in splits:
        result = evaluate(store, split, models + references, options)
        write_report(result, out_dir / "reports" / split, overwrite=True, command=command)
        summaries[split] = summarize(result)
    return write_study(out_dir, summaries, trained, [m.name for m in references], command, minutes_per_model)
