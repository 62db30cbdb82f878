"""How models answer different kinds of poke on the same PokeSim clips.

    python benchmarks/poke_kinds.py --data data/val606 --checkpoint from-video --checkpoint default \
        [--drag-scales 1 0.8] [--split test] [--limit 200]

Every object clip of the split is poked three ways: with the simulator's own poke (its pushed pixel, dragged to
where that pixel is at frame T: what `evaluate` hands a model on a PokeSim store), and with one poke drawn from
the clip's exact flow the way training draws pokes from a video's flow (`train.poke.place` onset and moving,
seed 0, epoch 0), dragged by that flow. Each drag can be scaled before the model reads it. Every video is
tracked and scored against the exact flow over the object's pixels (`truth.motion_scores`, as `evaluate`
does). Printed: the mean motion error, on moving and on still pixels, per model, kind of poke and scale, with
the Gaussian warp poked alike and static and the real clip (the tracker's floor) for reference; then, for the
simulator's pokes at scale 1, the same by the poke's reach: its drag over the object's largest displacement
at frame T (low: a poke near a joint that swings a longer part; near 1: the poked pixel is the one that moves
most). A diagnostic of a model: use a store of your own seed, not the one
you report on.
"""
from __future__ import annotations

import argparse
import dataclasses
from collections import defaultdict

import numpy as np
from tqdm import tqdm

from poke2video.config import PokeConfig, poke_size_for
from poke2video.data.dataset import PokeDataset
from poke2video.data.store import Store
from poke2video.evaluate.cases import EvalCase, _inside, is_pokesim, pokesim_case
from poke2video.evaluate.methods import Method, baseline_methods, model_method, real_clip_method
from poke2video.evaluate.truth import motion_scores, motion_truth

SAMPLED = ("onset", "moving")   # train.poke.place values: pokes drawn from the clip's (exact) flow
METRICS = ("motion_error", "motion_error_moving", "motion_error_still")
REACH_BINS = (0.0, 0.3, 0.6, np.inf)


def poked_cases(store: Store, split: str, limit: int):
    """Yield {kind: EvalCase} per object clip: the simulator's poke and each SAMPLED kind, same clip."""
    samplers = {place: PokeDataset(store, split, PokeConfig(poke_size=poke_size_for(store.resolution),
                                                            source="flow", place=place, background_fraction=0.0))
                for place in SAMPLED}
    for sampler in samplers.values():
        sampler.set_epoch(0)
    for index, (video, row) in enumerate(store.clips(split)[:limit]):
        case = pokesim_case(store, int(video), int(row))
        if case.is_background:
            continue
        cases = {"simulator": case}
        for place, sampler in samplers.items():
            (x, y), (dx, dy), _ = sampler.sample(index)
            source, target = (float(x), float(y)), (float(x + dx), float(y + dy))
            cases[place] = dataclasses.replace(case, poke_source=source, poke_target=target, true_target=target)
        yield cases


def scaled_target(source, drag, scale: float, width: int, height: int) -> tuple[float, float]:
    """source + scale x drag, kept inside a width x height image."""
    return _inside((source[0] + scale * drag[0], source[1] + scale * drag[1]), width, height)


def scaled_case(case: EvalCase, scale: float) -> EvalCase:
    """`case` with the drag handed to the model times `scale` (where the pixel really goes unchanged)."""
    drag = np.subtract(case.poke_target, case.poke_source)
    height, width = case.source_frame.shape[:2]
    return dataclasses.replace(case, poke_target=scaled_target(case.poke_source, drag, scale, width, height))


def reach(case: EvalCase) -> float:
    """The poke's drag over the largest displacement at frame T of the object's pixels."""
    largest = np.hypot(*case.gt_flow[-1])[case.object_mask].max()
    return case.poke_length / max(float(largest), 1e-6)


def print_table(title: str, rows: dict[tuple, dict[str, list]], columns: tuple[str, ...]) -> None:
    print(f"\n{title}\n| {' | '.join(columns)} | clips | all | moving | still |")
    print("|" + "---|" * (len(columns) + 4))
    for key, scores in rows.items():
        values = " | ".join(f"{np.nanmean(scores[m]):.3f}" for m in METRICS)
        names = " | ".join(f"{k:g}" if isinstance(k, float) else k for k in key)
        print(f"| {names} | {len(scores[METRICS[0]])} | {values} |")


def clip_scores(cases: dict[str, EvalCase], truth, poked: list[Method], unpoked: list[Method],
                scales: list[float]):
    """Yield ((row, kind, scale), motion scores): the `unpoked` rows (static, the real clip) once, kind "any";
    every `poked` row for every kind of poke and drag scale."""
    simulator = cases["simulator"]
    jobs = [(method, simulator, ("any", 1.0)) for method in unpoked]
    jobs += [(method, scaled_case(case, scale), (kind, scale))
             for kind, case in cases.items() for scale in scales for method in poked]
    for method, case, (kind, scale) in jobs:
        video = np.concatenate([case.source_frame[None], method.video_for(case)])
        yield (method.name, kind, scale), motion_scores(truth, video, case.poke_source, case.true_target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a PokeSim store (poke2video simulate)")
    parser.add_argument("--checkpoint", action="append", required=True,
                        help="a weights file or bundled name; repeat for several models")
    parser.add_argument("--drag-scales", type=float, nargs="+", default=[1.0],
                        help="factors on every drag (default 1; the table by reach shows scale 1 only)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=200, help="first clips of the split (default 200)")
    args = parser.parse_args()
    store = Store.open(args.data)
    if not is_pokesim(store):
        parser.error(f"{args.data} is not a PokeSim store: the scores need the simulator's flow and pokes")
    poked = [model_method(name, name=name) for name in args.checkpoint] + baseline_methods("warp")
    unpoked = baseline_methods("static") + [real_clip_method()]
    scores_of: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))   # per clip, nan: none
    by_reach: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for cases in tqdm(poked_cases(store, args.split, args.limit), desc="clips", unit="clip"):
        truth = motion_truth(cases["simulator"])
        if truth is None:
            continue
        low = REACH_BINS[np.searchsorted(REACH_BINS, reach(cases["simulator"]), side="right") - 1]
        for key, scores in clip_scores(cases, truth, poked, unpoked, args.drag_scales):
            values = {metric: np.nan if scores[metric] is None else scores[metric] for metric in METRICS}
            targets = [scores_of[key]] + ([by_reach[(key[0], f"{low:g}+")]]
                                          if key[1] in ("simulator", "any") and key[2] == 1.0 else [])
            for target in targets:
                for metric, value in values.items():
                    target[metric].append(value)
    print(f"Object pokes of {args.data} {args.split}: motion error against the exact flow over object pixels, px")
    print_table("By kind of poke", scores_of, ("model", "pokes", "drag x"))
    print_table("The simulator's pokes by reach (drag over the object's largest displacement)",
                dict(sorted(by_reach.items())), ("model", "reach"))


if __name__ == "__main__":
    main()
