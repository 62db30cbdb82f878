"""Score a checkpoint on a PokeSim split with the simulator's own pokes: the issue-4 measurement.

The evaluator (`poke2video.evaluate.evaluator`, the code behind `poke2video evaluate`) runs the model, the
static baseline (the source frame repeated: its endpoint error is the poke's own length) and the real clip
(the tracker's own error, a floor for any model) on every clip. Object pokes: poke endpoint error;
background pokes: mean absolute change from the source frame. Means with 95% bootstrap intervals. For
every metric, plots and example sheets use `poke2video evaluate` instead.

    python benchmarks/pokesim_endpoint.py --checkpoint runs/a/model.safetensors --data data/pokesim64 --split test

`--anchor-max-gain` and `--anchor-min-motion` score the weights with anchoring's limits changed in memory (the
file is not touched): how the bundled model's limits were chosen on a validation store (README, "Poke anchoring").
"""
from __future__ import annotations

import argparse

from poke2video.data.store import Store
from poke2video.errors import UserError
from poke2video.evaluate.evaluator import EvalOptions, baseline_methods, evaluate, model_method, real_clip_method
from poke2video.evaluate.metrics import TRACKER
from poke2video.evaluate.report import summarize

ROWS = (("endpoint_error", "model"), ("endpoint_error", "static"), ("endpoint_error", "real clip"),
        ("background_change", "model"), ("ms_per_video", "model"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N clips")
    parser.add_argument("--tracker", default=TRACKER, help=f"flow that tracks the poked pixel (default {TRACKER})")
    parser.add_argument("--no-anchor", action="store_true", help="a model.poke_anchor checkpoint's own flows")
    parser.add_argument("--anchor-max-gain", type=float, help="model.anchor_max_gain for this run (default: the file's)")
    parser.add_argument("--anchor-min-motion", type=float,
                        help="model.anchor_min_motion for this run (default: the file's)")
    args = parser.parse_args()
    try:
        summary = score(args)
    except UserError as error:          # a bad checkpoint, store, split or limit: one line, not a traceback
        raise SystemExit(f"error: {error}")
    print(f"| {args.split} | clips | mean | 95% interval |")
    print("|---|---|---|---|")
    for metric, method in ROWS:
        entry = summary[method][metric]
        digits = 4 if metric == "background_change" else 3   # its goal is 2/255 = 0.0078
        if entry["status"] == "ok":
            print(f"| {metric}, {method} | {entry['n']} | {entry['mean']:.{digits}f} | "
                  f"{entry['low']:.{digits}f}–{entry['high']:.{digits}f} |")


def score(args: argparse.Namespace) -> dict:
    """The evaluator's summary of the model, the static baseline and the real clip on `args.split`."""
    limits = {key: value for key, value in (("anchor_max_gain", args.anchor_max_gain),
                                            ("anchor_min_motion", args.anchor_min_motion)) if value is not None}
    methods = [model_method(args.checkpoint, anchor=not args.no_anchor, anchor_limits=limits),
               *baseline_methods("static"), real_clip_method()]
    options = EvalOptions(limit=args.limit, motion=False, structure_clips=0, lpips="off", fvd=False, example_clips=0,
                          tracker=args.tracker)
    return summarize(evaluate(Store.open(args.data), args.split, methods, options))


if __name__ == "__main__":
    main()
