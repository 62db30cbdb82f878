"""Where a warp model's own flows take the poked pixel, next to where the tracker sees it go (PokeSim).

    python benchmarks/poke_trajectory.py --data data/pokesim64 --split test --limit 150 \
        --checkpoint runs/a/model.safetensors [--checkpoint runs/b/model.safetensors ...]

A `model.output: warp` model draws frame t by sampling the source at q + B_t(q), so the poked pixel p sits
in frame t at the q whose B_t(q) leads back to p (the nearest such pixel: the "own" position, whole
pixels). For every object poke of the split's first `--limit` clips this prints, per checkpoint, means of:
- own error T: distance from the own position at frame T to the true one (`gt_flow`);
- share of poke: the own displacement at T along the poke, over the poke's length (1: all the way);
- tracked error T: the metric (`farneback-fine` tracking through the generated video), for reference;
- tracked vs own T: how far the tracker ends from the model's own position;
- own path / true path: summed frame-to-frame steps of the own and the true positions (a path much
  longer than the true one means the part jumps back and forth between frames);
- moved area: pixels of frame T the model moves (backward flow over 0.5 px) over the pixels the clip
  moves (`gt_flow` over 0.5 px): 1 when the moving region has the part's size, more when it spreads.
Below the table, per checkpoint, how the own error at T is spread: its median, how many clips end more
than 3 px away and their share of the total, and its correlation with the poke's length.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from poke2video.config import poke_size_for
from poke2video.data.flow import get_flow_estimator
from poke2video.data.pokes import make_poke_map
from poke2video.data.store import Store
from poke2video.evaluate.cases import EvalCase, is_pokesim, load_cases
from poke2video.evaluate.metrics import TRACKER, to_uint8_video, track_point
from poke2video.errors import UserError
from poke2video.poker import Poker

COLUMNS = ("own error T", "share of poke", "tracked error T", "tracked vs own T", "own path", "true path",
           "moved area")
MOVED_PX = 0.5


def own_positions(backward_flow: np.ndarray, source_xy: np.ndarray) -> np.ndarray:
    """backward_flow [T, 2, H, W] -> [T, 2]: per frame, the pixel whose flow leads back nearest to source_xy."""
    _, _, height, width = backward_flow.shape
    ys, xs = np.mgrid[0:height, 0:width]
    positions = []
    for flow in backward_flow:
        miss = np.hypot(xs + flow[0] - source_xy[0], ys + flow[1] - source_xy[1])
        row, col = np.unravel_index(miss.argmin(), miss.shape)
        positions.append((col, row))
    return np.array(positions, np.float64)


def moved_area(backward_flow: np.ndarray, forward_flow: np.ndarray) -> float:
    """Pixels the model moves at frame T over pixels the clip moves: both flows [2, H, W], px."""
    moved = np.hypot(*backward_flow) > MOVED_PX
    truly_moved = np.hypot(*forward_flow) > MOVED_PX
    return float(moved.sum()) / max(int(truly_moved.sum()), 1)


def path_length(start: np.ndarray, positions: np.ndarray) -> float:
    return float(np.hypot(*np.diff(np.vstack([start, positions]), axis=0).T).sum())


def score_case(model, case: EvalCase, tracker) -> tuple[float, ...]:
    source_xy = np.array(case.poke_source)
    displacement = np.array(case.poke_target) - source_xy
    res = model.cfg.resolution
    source = torch.from_numpy(case.source_frame).permute(2, 0, 1)[None].float().div(127.5).sub(1)
    poke_map = torch.from_numpy(make_poke_map(res, case.poke_source, displacement, poke_size_for(res)))[None]
    with torch.no_grad():
        prediction = model.predict(source, poke_map, steps=case.frames)
    own = own_positions(prediction.backward_flow[0].numpy(), source_xy)
    video = np.concatenate([case.source_frame[None], to_uint8_video(prediction.video[0])])
    tracked = track_point(video, source_xy, tracker)[-1]
    column, row = int(source_xy[0]), int(source_xy[1])
    true = source_xy + np.array([flow[:, row, column] for flow in case.gt_flow], np.float64)
    true_end = np.array(case.true_target)
    length = max(float(np.hypot(*displacement)), 1e-6)
    return (float(np.hypot(*(own[-1] - true_end))), float((own[-1] - source_xy) @ displacement) / length ** 2,
            float(np.hypot(*(tracked - true_end))), float(np.hypot(*(tracked - own[-1]))),
            path_length(source_xy, own), path_length(source_xy, true),
            moved_area(prediction.backward_flow[0, -1].numpy(), case.gt_flow[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="a warp model (repeatable)")
    parser.add_argument("--data", required=True, help="a PokeSim store")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=150)
    args = parser.parse_args()
    store = Store.open(args.data)
    if not is_pokesim(store):
        raise SystemExit(f"poke_trajectory: {args.data} is not a PokeSim store (no ground-truth flow)")
    tracker = get_flow_estimator(TRACKER)
    cases = [case for case in load_cases(store, args.split, args.limit) if not case.is_background]
    print(f"| checkpoint ({len(cases)} object pokes, {args.split}) | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    spreads = []
    for path in args.checkpoint:
        model = Poker.load(path, trace=False).model
        if model.cfg.output != "warp":
            raise UserError(f"{path}: model.output is {model.cfg.output!r}; only a warp model has its own flow")
        scores = np.array([score_case(model, case, tracker) for case in cases])
        print(f"| {path} | " + " | ".join(f"{value:.2f}" for value in scores.mean(axis=0)) + " |")
        spreads.append(spread(path, scores[:, 0], np.array([case.poke_length for case in cases])))
    print("\n" + "\n".join(spreads))


def spread(path: str, own_error: np.ndarray, poke_length: np.ndarray) -> str:
    far = own_error > 3.0
    return (f"{path}: own error at T median {np.median(own_error):.2f} px; {far.sum()} clips over 3 px make "
            f"{own_error[far].sum() / max(own_error.sum(), 1e-9):.0%} of the total; correlation with the poke's "
            f"length {np.corrcoef(own_error, poke_length)[0, 1]:.2f}")


if __name__ == "__main__":
    main()
