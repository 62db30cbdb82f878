"""The paper's ablation study on PokeSim with equal wall-clock budgets: trains, scores, prints the tables.

    python benchmarks/ablation_study.py --data data/pokesim64 --out reports/ablation --minutes-per-model 30

The variants and their training are poke2video.train.ablation (its docstring lists them), their scores and
tables poke2video.evaluate.ablation; this script runs both. Run again with the same command, it skips
finished models.

    OUT/presets/NAME.yaml  OUT/runs/NAME/  OUT/reports/SPLIT/  OUT/ablation.md
"""
from __future__ import annotations

import argparse
import sys

from poke2video.errors import UserError
from poke2video.evaluate.ablation import check_study_data, score_study
from poke2video.evaluate.results import EvalOptions
from poke2video.metrics import TRACKER
from poke2video.train.ablation import VARIANTS, train_variants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="PokeSim store (poke2video simulate)")
    parser.add_argument("--out", required=True, help="study folder")
    parser.add_argument("--minutes-per-model", type=float, required=True, help="training budget of every model")
    parser.add_argument("--preset", default="paper-64", help="the full model's preset: the paper's GRU model (name or YAML)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of " + ", ".join(VARIANTS))
    parser.add_argument("--splits", default="test,test_unseen")
    parser.add_argument("--baselines", default="static,warp")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N clips of each split")
    parser.add_argument("--structure-clips", type=int, default=8)
    parser.add_argument("--structure-pokes", type=int, default=16)
    parser.add_argument("--lpips", choices=["vgg", "alex", "off"], default="vgg")
    parser.add_argument("--i3d-weights", default=None)
    parser.add_argument("--no-fvd", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracker", default=TRACKER,
                        help=f"flow that tracks pixels for the metrics (default {TRACKER})")
    args = parser.parse_args(argv)
    command = " ".join(["python benchmarks/ablation_study.py", *(sys.argv[1:] if argv is None else argv)])
    options = EvalOptions(limit=args.limit, structure_clips=args.structure_clips, structure_pokes=args.structure_pokes,
                          lpips=args.lpips, fvd=not args.no_fvd, i3d_weights=args.i3d_weights, seed=args.seed,
                          tracker=args.tracker)
    splits = tuple(s for s in args.splits.split(",") if s)
    try:
        check_study_data(args.data, splits)
        trained = train_variants(args.data, args.out, args.minutes_per_model, args.preset,
                                 [n for n in args.variants.split(",") if n], args.seed)
        path = score_study(args.data, args.out, trained, args.minutes_per_model, splits, args.baselines, options,
                           command)
    except UserError as exc:
        print(f"ablation_study: error: {exc}", file=sys.stderr)
        return 2
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
