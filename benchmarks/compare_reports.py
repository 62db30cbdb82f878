"""Paired comparison of two evaluation reports on the same clips: B - A with a bootstrap interval.

    python benchmarks/compare_reports.py reports/a reports/b [--and reports/a2 reports/b2] [--row model]
        [--metrics motion_error moving_iou]

Both folders are `poke2video evaluate --out` folders of the same store, split and clips (checked). For each
metric it prints A's and B's means and the mean of the per-clip differences B - A with a seeded 95%
percentile-bootstrap interval over clips (2,000 resamples): the clips are the same, so the interval of the
difference is far narrower than the two means' own intervals suggest. Each `--and A2 B2` adds another pair
of reports of the same two methods (another split, say): their clips are pooled with the first pair's.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DEFAULT_METRICS = ("motion_error", "motion_error_moving", "motion_error_still", "moving_iou", "psnr")


def per_clip(report: Path, row: str, metric: str) -> tuple[list, np.ndarray]:
    data = json.loads((report / "metrics.json").read_text())
    clips = [(c["video"], c["row"]) for c in data["per_clip"]["clips"]]
    if row not in data["per_clip"]["scores"]:
        raise SystemExit(f"{report}: no row {row!r} (rows: {', '.join(data['per_clip']['scores'])})")
    values = data["per_clip"]["scores"][row].get(metric)
    if values is None:
        raise SystemExit(f"{report}: row {row!r} has no per-clip {metric!r}")
    return clips, np.array([np.nan if v is None else v for v in values], np.float64)


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0, resamples: int = 2000) -> tuple[float, float, float]:
    """Mean of b - a over clips where both are scored, and its 95% bootstrap interval."""
    both = ~(np.isnan(a) | np.isnan(b))
    difference = (b - a)[both]
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), (resamples, len(difference)))].mean(axis=1)
    return float(difference.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def pooled_clips(pairs: list[tuple[Path, Path]], row_a: str, row_b: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """A's and B's per-clip values of `metric` over every pair of reports, each pair checked to be the same clips."""
    a_values, b_values = [], []
    for report_a, report_b in pairs:
        clips_a, a = per_clip(report_a, row_a, metric)
        clips_b, b = per_clip(report_b, row_b, metric)
        if clips_a != clips_b:
            raise SystemExit(f"{report_a} and {report_b} scored different clips; compare reports of the same store "
                             "and split")
        a_values.append(a)
        b_values.append(b)
    return np.concatenate(a_values), np.concatenate(b_values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--row", default="model", help="the row compared in both reports (default model)")
    parser.add_argument("--row-b", default=None, help="B's row when it differs (default: --row)")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    parser.add_argument("--and", dest="more", nargs=2, type=Path, action="append", default=[], metavar=("A2", "B2"),
                        help="another pair of reports of the same methods, pooled with the first; repeatable")
    args = parser.parse_args()
    pairs = [(args.a, args.b), *(tuple(pair) for pair in args.more)]
    print(" + ".join(f"A = {a} ({args.row}), B = {b} ({args.row_b or args.row})" for a, b in pairs))
    print(f"{'metric':22s} {'A':>8s} {'B':>8s} {'B - A':>8s}  95% interval   clips")
    for metric in args.metrics:
        a, b = pooled_clips(pairs, args.row, args.row_b or args.row, metric)
        mean, low, high = paired_difference(a, b)
        scored = int((~(np.isnan(a) | np.isnan(b))).sum())
        print(f"{metric:22s} {np.nanmean(a):8.3f} {np.nanmean(b):8.3f} {mean:+8.3f}  {low:+.3f} to {high:+.3f}  {scored}")


if __name__ == "__main__":
    main()
