"""What an evaluation measured (`Evaluation`) and how it was asked for (`EvalOptions`): written by the
evaluator (`evaluator.py`), read by the report (`report.py`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from poke2video import metrics
from poke2video.evaluate.sheets import Example

CLIP_METRICS = ("psnr", "ssim", "lpips", "endpoint_error", "motion_error", "motion_error_moving",
                "motion_error_still", "moving_iou", "flow_error", "flow_error_moving", "flow_error_still",
                "background_change", "structure_auc", "pin_motion", "pin_flow", "ms_per_video")
PER_FRAME = ("motion_error",)  # also kept per frame (Evaluation.per_frame): "<metric>_per_frame" in score_clip
AGAINST_REAL = ("psnr", "ssim", "lpips", "fvd")  # compare with the real clip: meaningless for the real clip


@dataclass
class EvalOptions:
    """How `evaluate` scores: which clips, which metrics, which networks and tracker."""

    limit: int | None = None          # the first N clips of the split (None: all)
    motion: bool = True               # motion metrics (track every scored pixel; on real footage the real clip too)
    structure_clips: int = 4          # PokeSim object pokes that get a correlation map (0: none)
    structure_pokes: int = 16         # random pokes per correlation map
    lpips: str = "vgg"                # LPIPS variant: vgg | alex | off
    lpips_backbone: str | None = None  # torchvision VGG16 / AlexNet file
    lpips_heads: str | None = None    # lpips v0.1 linear heads file
    fvd: bool = True
    i3d_weights: str | None = None
    example_clips: int = 4
    seed: int = 0                     # pokes of the correlation maps, bootstrap resampling
    tracker: str = metrics.TRACKER    # flow estimator that tracks pixels (data/flow.py ESTIMATORS)


@dataclass
class Evaluation:
    """Everything measured: per-clip scores (None where a metric does not apply), FVD, unavailable metrics."""

    data: str
    split: str
    pokesim: bool
    methods: list[str]
    options: EvalOptions
    truth: str                                               # what motion is scored against (truth.py)
    clips: list[dict] = field(default_factory=list)
    per_clip: dict[str, dict[str, list[float | None]]] = field(default_factory=dict)
    fvd: dict[str, float] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)
    real_methods: list[str] = field(default_factory=list)    # methods that replay the real clip
    oracle_methods: list[str] = field(default_factory=list)  # methods made from the case's ground truth
    flow_methods: list[str] = field(default_factory=list)    # methods that give a forward flow
    rows: dict[str, str] = field(default_factory=dict)       # method: what the row is
    per_frame: dict[str, dict[str, list[list[float] | None]]] = field(default_factory=dict)  # method: metric: per clip
    example_rows: list[str] = field(default_factory=list)    # the videos of each example, in sheet order
