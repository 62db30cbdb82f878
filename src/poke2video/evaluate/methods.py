"""The rows of an evaluation: ways to make a clip's T frames, and the forward flow they follow where there is one.

- `model`: the checkpoint through `Poker.animate`, nothing after the network reading the poke's target; a
  model that gives forward flows (`Poker.has_flow`) has its flow scored too, from the same run of the
  network (`Poker.animate_with_flow`).
- baselines (`baselines.py`): `static` (zero flow) and `warp` (its Gaussian field is its flow).
- oracles, made from the clip's true motion (PokeSim: the ground-truth flow; real footage: the real clip
  tracked by the metrics' tracker, `truth.true_motion`), rendered as the flow model renders its own flow
  (`render.render_video`: moving pixels drawn by backward sampling, uncovered pixels from the background
  plate). `oracle`: all of that motion, what the renderer alone costs. `oracle-true-fill`: drawn the same way,
  uncovered pixels taken from the true frames. `oracle-poked-part`: the motion kept only on the part that
  moves with the poked pixel (`poked_part`), everything else left still: the best a model that moves what
  was poked, and nothing else, can score. On footage where much moves on its own (a camera, walkers) it is
  the ceiling of any poke-driven row.
- `real clip` (PokeSim): the simulated video itself; its scores are the tracker's own floor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy import ndimage

from poke2video.errors import UserError
from poke2video.evaluate.baselines import Baseline, FlowFunction, baseline_flow, get_baseline
from poke2video.evaluate.cases import EvalCase
from poke2video.metrics import MOVES_PX, moves

REAL_CLIP = "real clip"
ORACLES = ("oracle", "oracle-true-fill", "oracle-poked-part")
PART_TOLERANCE = 0.5  # `poked_part`: a pixel moves with the poke when its motion differs by at most this x the poke's
ABOUT = {
    "static": "the source frame repeated: no motion (flow: zero)",
    "warp": "the source warped by a Gaussian displacement field around the poke that grows to the full poke at "
            "frame T (flow: that field)",
    "oracle": "the true motion (PokeSim: the ground-truth flow; footage: the real clip, tracked) rendered by the "
              "flow model's renderer (backward sampling; uncovered pixels from the background plate): what the "
              "renderer alone costs (flow: the ground truth)",
    "oracle-true-fill": "the true motion drawn as by `oracle`, uncovered pixels taken from the true frames "
                        "(flow: the ground truth)",
    "oracle-poked-part": "the true motion drawn as by `oracle`, kept only on the part that moves with the poked "
                         "pixel, everything else still: the ceiling of a model that moves what was poked "
                         "(flow: the ground truth)",
    REAL_CLIP: "the real clip itself at the store's size, tracked like every video: the tracker's own floor",
}


@dataclass(frozen=True)
class Method:
    """A named way to make videos: `animate(frame, source_xy, target_xy, T)` -> uint8 [T, H, W, 3] (a case with
    several pokes or pins adds the keywords `pokes` and `pins`, `EvalCase.method_inputs`); or, for
    an oracle, `oracle(case, true_motion)` made from the case's true motion float [T, 2, H, W]; neither: the
    real clip (the tracker's floor).
    `flow` (same arguments as `animate`) -> float32 [T, 2, H, W]: the forward flow its frames follow;
    `animate_flow` (same arguments) -> both at once, for a model whose frames and flow come from one run."""

    name: str
    animate: Baseline | None
    frames: int | None = None  # the T it always makes (models); None: any
    flow: FlowFunction | None = None
    oracle: Callable[[EvalCase, np.ndarray], np.ndarray] | None = None
    about: str = ""            # what the row is, for the report
    animate_flow: Callable | None = None

    @property
    def is_real(self) -> bool:
        return self.animate is None and self.oracle is None

    @property
    def gives_flow(self) -> bool:
        return self.flow is not None or self.oracle is not None or self.animate_flow is not None

    def video_and_flow(self, case: EvalCase, with_flow: bool,
                       true_motion: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(`video_for(case, true_motion)`, `flow_for(case)` when `with_flow`, else None), the model run once for
        both."""
        if with_flow and self.animate_flow is not None:
            return self.animate_flow(case.source_frame, case.poke_source, case.poke_target, case.frames,
                                     **case.method_inputs())
        return self.video_for(case, true_motion), self.flow_for(case) if with_flow else None

    def video_for(self, case: EvalCase, true_motion: np.ndarray | None = None) -> np.ndarray:
        """uint8 [T, H, W, 3]; an oracle needs the case's `true_motion` (`truth.true_motion`)."""
        if self.oracle is not None:
            if true_motion is None:
                raise ValueError(f"{self.name} is drawn from the clip's true motion; none was given")
            return self.oracle(case, true_motion)
        if self.animate is None:
            return case.expected_video[1:]
        return self.animate(case.source_frame, case.poke_source, case.poke_target, case.frames, **case.method_inputs())

    def flow_for(self, case: EvalCase) -> np.ndarray | None:
        """float32 [T, 2, H, W], the forward flow behind `video_for(case)`; None when the method has none."""
        if self.oracle is not None:
            return case.gt_flow
        if self.flow is None:
            return None
        return self.flow(case.source_frame, case.poke_source, case.poke_target, case.frames, **case.method_inputs())


def model_method(checkpoint: str | None, name: str = "model") -> Method:
    """The model in `checkpoint` (None: the bundled default) through `Poker.animate`, as a user gets it; a model
    that gives forward flows has them scored too (`Poker.animate_with_flow`: one run for both)."""
    from poke2video.poker import Poker

    poker = Poker.load(checkpoint)
    about = ("the network's own frames through `Poker.animate`; nothing after the network reads the poke's target"
             + (" (flow: its forward flow, rendered by backward sampling)" if poker.has_flow else ""))

    def animate(frame, source, target, frames, pokes=None, pins=None):
        return poker.animate(frame, *_one_or_several(source, target, pokes), pokes=pokes, pins=pins)

    def animate_flow(frame, source, target, frames, pokes=None, pins=None):
        return poker.animate_with_flow(frame, *_one_or_several(source, target, pokes), pokes=pokes, pins=pins)

    return Method(name, animate, poker.frames, about=about, animate_flow=animate_flow if poker.has_flow else None)


def _one_or_several(source, target, pokes) -> tuple:
    """(source, target) for `Poker` when the case has one poke; (None, None) when `pokes` holds them all."""
    return (source, target) if pokes is None else (None, None)


def real_clip_method() -> Method:
    """The real clip as a method: the tracker's own error against the exact flow (PokeSim) or a truth tracked
    on larger frames, a floor for any model."""
    return Method(REAL_CLIP, None, about=ABOUT[REAL_CLIP])


def baseline_methods(names: str) -> list[Method]:
    """Methods for `--baselines static,warp,oracle` ('' or 'none': no baselines)."""
    chosen = [n.strip() for n in names.split(",") if n.strip()] if names.strip() != "none" else []
    if len(set(chosen)) != len(chosen):
        raise UserError(f"--baselines names a baseline twice: {names!r}")
    return [oracle_method(name) if name in ORACLES else _baseline_method(name) for name in chosen]


def _baseline_method(name: str) -> Method:
    baseline = get_baseline(name)
    return Method(name, baseline, flow=baseline_flow(baseline), about=ABOUT.get(name, ""))


def oracle_method(name: str = "oracle") -> Method:
    """`oracle`, `oracle-true-fill` or `oracle-poked-part` (see the module docstring)."""
    if name not in ORACLES:
        raise UserError(f"unknown oracle {name!r}; available: {', '.join(ORACLES)}")

    def oracle(case: EvalCase, true_motion: np.ndarray) -> np.ndarray:
        if name == "oracle-true-fill":
            return render_true_fill(case.source_frame, true_motion, case.expected_video[1:])
        if name == "oracle-poked-part":
            true_motion = true_motion * poked_part(true_motion, case.poke_source)   # the first poke's part
        return render_flow(case.source_frame, true_motion)

    return Method(name, None, oracle=oracle, about=ABOUT[name])


def poked_part(true_motion: np.ndarray, source_xy) -> np.ndarray:
    """bool [H, W]: the part that moves with the pixel at `source_xy`, from the motion float [T, 2, H, W]: the
    4-connected region around that pixel of pixels that move (over `metrics.MOVES_PX` at frame T) whose
    displacement at frame T is within PART_TOLERANCE x the poked pixel's length (at least MOVES_PX) of the
    poked pixel's. Empty when the poked pixel itself does not move."""
    last = np.asarray(true_motion[-1], np.float64)                                        # [2, H, W]
    height, width = last.shape[1:]
    x = int(np.clip(round(source_xy[0]), 0, width - 1))
    y = int(np.clip(round(source_xy[1]), 0, height - 1))
    poked = last[:, y, x]
    length = float(np.hypot(*poked))
    if length <= MOVES_PX:
        return np.zeros((height, width), bool)
    along = np.hypot(*(last - poked[:, None, None])) <= max(PART_TOLERANCE * length, MOVES_PX)
    regions, _ = ndimage.label(along & moves(last))
    return regions == regions[y, x]


def render_flow(frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] carried along the forward flow float [T, 2, H, W] -> uint8 [T, H, W, 3], exactly as
    `Poker` renders a flow model's flow at the model's size."""
    from poke2video.model.render import STILL_PX
    from poke2video.poking.flow import render_uint8

    return render_uint8(np.asarray(frame, np.uint8), torch.from_numpy(np.asarray(flow, np.float32)), STILL_PX)


def render_true_fill(frame: np.ndarray, flow: np.ndarray, true_frames: np.ndarray) -> np.ndarray:
    """`render_flow`, but where the moving part does not cover a pixel that moved (fully or in part), it is
    filled from the true frame uint8 [T, H, W, 3] instead of the background plate."""
    from poke2video.model.render import STILL_PX, draw_part

    flows = torch.from_numpy(np.asarray(flow, np.float32))                                    # [T, 2, H, W]
    image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float()       # [1, 3, H, W]
    truth = torch.from_numpy(np.ascontiguousarray(true_frames)).permute(0, 3, 1, 2).float()    # [T, 3, H, W]
    moving = torch.hypot(flows[:, 0], flows[:, 1]).amax(dim=0) > STILL_PX                     # [H, W]
    with torch.inference_mode():
        colour, alpha = draw_part(image.expand(len(flows), -1, -1, -1), flows, moving.expand(len(flows), -1, -1))
        behind = torch.where(moving, truth, image)                     # a still pixel is its own background
        frames = alpha * colour + (1 - alpha) * behind
    return frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
