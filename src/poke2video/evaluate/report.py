"""The report folder of an evaluation, written under a temporary name and renamed when complete:

    metrics.json     summaries (mean, 95% bootstrap interval, n) per method and metric, the reasons
                     for unavailable metrics, the options, and every per-clip score
    report.md        one Markdown table, a row per method, what each row is, and the metrics' definitions
    plots/*.png      a bar chart per metric (means and intervals); METRIC_per_frame.png: a line per method
    examples.png     example clips: the source frame with the poke arrow, then each method's frames and the
                     real clip (a row of its own on PokeSim, shown beside the rows elsewhere)
    examples.mp4     the same clips side by side over time
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from poke2video.evaluate.results import AGAINST_REAL, PER_FRAME, Evaluation
from poke2video.evaluate.sheets import bar_chart, example_sheet, example_video, line_chart, save_png
from poke2video.evaluate.truth import TRACKED_LARGER, TRACKED_REAL_CLIP
from poke2video.export import write_video
from poke2video.fsutil import atomic_path, remove_path
from poke2video.metrics import MOVES_PX, bootstrap_interval

REPORT_FORMAT, REPORT_VERSION = "poke2video-evaluation", 1
CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    label: str
    unit: str
    higher_is_better: bool
    digits: int
    definition: str


METRICS = {
    "psnr": MetricInfo("PSNR", "dB", True, 2, "peak signal-to-noise ratio against the expected frames, frame-averaged"),
    "ssim": MetricInfo("SSIM", "", True, 3, "structural similarity (Gaussian 11x11, sigma 1.5) against the expected "
                                            "frames, frame-averaged"),
    "lpips": MetricInfo("LPIPS", "", False, 3, "learned perceptual distance to the expected frames, frame-averaged"),
    "fvd": MetricInfo("FVD", "", False, 1, "Frechet distance of I3D features, generated vs expected clips "
                                           "(source + T frames stretched to 16 by repeating frames)"),
    "endpoint_error": MetricInfo("endpoint error", "px", False, 2, "object pokes: the poked pixel tracked through "
                                 "the video; distance at frame T to where it really is"),
    "motion_error": MetricInfo("motion error", "px", False, 2, "object pokes: tracked motion of every scored pixel vs "
                               "the true motion (PokeSim: the ground-truth flow, object pixels; other stores: the real "
                               "clip tracked the same way, every pixel), mean over frames and pixels"),
    "motion_error_moving": MetricInfo("motion error, moving", "px", False, 2, "motion error over the scored pixels "
                                      f"whose true displacement at frame T exceeds {MOVES_PX:g} px (high: the part "
                                      "that moves is missed)"),
    "motion_error_still": MetricInfo("motion error, still", "px", False, 2, "motion error over the other scored "
                                     "pixels (high: parts that stay are moved, e.g. a whole blob)"),
    "moving_iou": MetricInfo("moving IoU", "", True, 3, "object pokes: IoU of the scored pixels whose tracked "
                             f"displacement at frame T exceeds {MOVES_PX:g} px and those whose true one does (1 when "
                             "neither has any)"),
    "flow_error": MetricInfo("flow error", "px", False, 2, "PokeSim object pokes, methods that give a forward flow: "
                             "endpoint error of that flow vs the ground-truth flow, mean over frames 1..T and object "
                             "pixels (no tracker)"),
    "flow_error_moving": MetricInfo("flow error, moving", "px", False, 2, "flow error over the object pixels whose "
                                    f"true displacement at frame T exceeds {MOVES_PX:g} px"),
    "flow_error_still": MetricInfo("flow error, still", "px", False, 2, "flow error over the other object pixels"),
    "background_change": MetricInfo("background change", "of 255", False, 4, "background pokes: mean absolute change "
                                    "from the source frame (0 = still)"),
    "structure_auc": MetricInfo("structure AUC", "", True, 3, "PokeSim: AUC of the correlation map (inverse variance) "
                                "for 'on the poked segment's subtree', over object pixels; 0.5 = chance"),
    "pin_motion": MetricInfo("pinned motion", "px", False, 2, "object pokes with pins: every pinned pixel tracked "
                             "through the video, its distance at frame T from where it started, mean over pins "
                             "(the truth: 0, the simulator locks a pinned segment)"),
    "pin_flow": MetricInfo("pinned flow", "px", False, 2, "the same from the method's own forward flow at frame T "
                           "(no tracker)"),
    "ms_per_video": MetricInfo("ms per video", "ms", False, 1, "wall-clock time to make one video, batch 1"),
}


REAL_FOOTAGE_TRUTH = {
    TRACKED_REAL_CLIP: "Motion truth: the real clip (the store's frames 1..T) tracked by the same tracker, every pixel "
                       "scored; the tracker's own error is part of it. The example sheets show the real clip, but it "
                       "is no row: scored against itself it is zero by construction.",
    TRACKED_LARGER: "Motion truth: the real clip tracked by the same tracker on the larger frames its flow was "
                    "estimated on and averaged down to the store's size (`prepare --tracked-truth`), every pixel "
                    "scored; the generated videos are tracked at the store's size, and so is the real clip, a row "
                    "here: what tracking at that size costs."}
TRACKED = ("motion_error", "motion_error_moving", "motion_error_still", "moving_iou")  # every scored pixel tracked
FLOW = ("flow_error", "flow_error_moving", "flow_error_still")


def _not_applicable(evaluation: Evaluation, method: str, metric: str) -> str:
    """Why `metric` has no value for `method`."""
    real = method in evaluation.real_methods
    if real and metric in AGAINST_REAL:
        return "compares the real clip with itself"
    if real and metric in ("structure_auc", "ms_per_video"):
        return "the real clip exists for its own poke only"
    if metric in ("structure_auc", "ms_per_video") and method in evaluation.oracle_methods:
        return "the oracle exists for its clip's own poke and ground truth only"
    if (metric in FLOW or metric == "structure_auc") and not evaluation.pokesim:
        return "needs PokeSim ground truth"
    if metric == "pin_flow" and method not in evaluation.flow_methods:
        return "gives frames, no forward flow"
    if metric in ("pin_motion", "pin_flow"):
        return "no object poke with pins among the clips"
    if metric in FLOW and method not in evaluation.flow_methods:
        return "gives frames, no forward flow"
    if metric in TRACKED and not evaluation.options.motion:
        return "turned off (--no-motion)"
    if metric == "structure_auc" and evaluation.options.structure_clips == 0:
        return "turned off (--structure-clips 0)"
    if metric == "background_change":
        return "no background pokes among the clips"
    if metric == "fvd":
        return "needs at least 2 clips"
    return "no clip it applies to"


def summarize(evaluation: Evaluation) -> dict[str, dict[str, dict]]:
    """{method: {metric: entry}}: {"status": "ok", mean, low, high, n}, FVD {"status": "ok", value, n},
    {"status": "unavailable", reason} or {"status": "not applicable", reason}."""
    summary = {}
    for method in evaluation.methods:
        entries = {}
        for metric in METRICS:
            values = [v for v in evaluation.per_clip[method].get(metric, []) if v is not None]
            if metric in evaluation.unavailable:
                entries[metric] = {"status": "unavailable", "reason": evaluation.unavailable[metric]}
            elif metric == "fvd" and method in evaluation.fvd:
                entries[metric] = {"status": "ok", "value": evaluation.fvd[method], "n": len(evaluation.clips)}
            elif values:
                interval = bootstrap_interval(values, CONFIDENCE, seed=evaluation.options.seed)
                entries[metric] = {"status": "ok", "mean": interval.mean, "low": interval.low, "high": interval.high,
                                   "n": len(values)}
            else:
                entries[metric] = {"status": "not applicable", "reason": _not_applicable(evaluation, method, metric)}
        summary[method] = entries
    return summary


def summarize_per_frame(evaluation: Evaluation) -> dict[str, dict[str, dict]]:
    """{metric: {method: {"mean": [value at frame t = 1..T], "n": clips}}} over the clips that have the metric."""
    summary = {}
    for metric in PER_FRAME:
        rows = {}
        for method in evaluation.methods:
            values = [v for v in evaluation.per_frame.get(method, {}).get(metric, []) if v is not None]
            if values:
                rows[method] = {"mean": np.mean(values, axis=0).tolist(), "n": len(values)}
        summary[metric] = rows
    return summary


def motion_truth_source(evaluation: Evaluation) -> str | None:
    """What the motion metrics were scored against (`truth.py`), None when they were turned off."""
    if not evaluation.options.motion:
        return None
    return evaluation.truth


def metrics_document(evaluation: Evaluation, summary: dict, command: str | None) -> dict:
    backgrounds = sum(clip["is_background"] for clip in evaluation.clips)
    return {
        "format": REPORT_FORMAT, "version": REPORT_VERSION, "command": command,
        "data": evaluation.data, "split": evaluation.split, "pokesim": evaluation.pokesim,
        "clips": len(evaluation.clips), "object_pokes": len(evaluation.clips) - backgrounds,
        "background_pokes": backgrounds, "confidence": CONFIDENCE,
        "options": dataclasses.asdict(evaluation.options), "methods": evaluation.methods,
        "rows": evaluation.rows, "metrics": summary, "per_frame": summarize_per_frame(evaluation),
        "unavailable": evaluation.unavailable, "motion_truth": motion_truth_source(evaluation),
        "definitions": {name: info.definition for name, info in METRICS.items()},
        "per_clip": {"clips": evaluation.clips, "scores": evaluation.per_clip, "per_frame": evaluation.per_frame},
    }


def table_columns(summary: dict) -> list[str]:
    """Metrics with a value or an 'unavailable' for some method (all 'not applicable' columns are dropped)."""
    return [metric for metric in METRICS
            if any(entries[metric]["status"] != "not applicable" for entries in summary.values())]


def _cell(entry: dict, digits: int) -> str:
    if entry["status"] == "unavailable":
        return "unavailable"
    if entry["status"] == "not applicable":
        return "—"
    if "value" in entry:
        return f"{entry['value']:.{digits}f}"
    return f"{entry['mean']:.{digits}f} ({entry['low']:.{digits}f}–{entry['high']:.{digits}f})"


def _header(metric: str) -> str:
    info = METRICS[metric]
    arrow = "↑" if info.higher_is_better else "↓"
    return f"{info.label} {arrow}" + (f" ({info.unit})" if info.unit else "")


def markdown_table(summary: dict, columns: list[str] | None = None,
                   extra_columns: dict[str, dict[str, str]] | None = None) -> str:
    """One row per method: means with their 95% intervals in brackets (FVD: one value).

    `extra_columns`: {header: {method: text}} appended on the right ("—" where a method has none)."""
    columns = columns or table_columns(summary)
    extra_columns = extra_columns or {}
    headers = [_header(m) for m in columns] + list(extra_columns)
    lines = ["| method | " + " | ".join(headers) + " |", "|---|" + "---|" * len(headers)]
    for method, entries in summary.items():
        cells = [_cell(entries[m], METRICS[m].digits) for m in columns]
        cells += [texts.get(method, "—") for texts in extra_columns.values()]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report_markdown(document: dict) -> str:
    summary, options = document["metrics"], document["options"]
    columns = table_columns(summary)
    lines = [f"# Evaluation of `{document['data']}`, split `{document['split']}`", ""]
    if document["command"]:
        lines += [f"`{document['command']}`", ""]
    lines += [f"{document['clips']} clips ({document['object_pokes']} object pokes, {document['background_pokes']} "
              f"background poke{'s' * (document['background_pokes'] != 1)}); {'PokeSim: the simulator’s pokes and ground truth' if document['pokesim'] else 'the dataset’s test pokes (epoch 0)'}. "
              f"Means over clips with 95% bootstrap intervals (seed {options['seed']}); FVD is one value per set.",
              f"Pixels are tracked with `{options['tracker']}` flow chained frame to frame.",
              "", markdown_table(summary, columns), ""]
    counts = {m: max((entries[m].get("n", 0) for entries in summary.values()), default=0) for m in columns}
    lines += ["Clips behind each column: " + ", ".join(f"{METRICS[m].label} {n}" for m, n in counts.items()) + "."]
    if document["pokesim"] and "structure_auc" in columns:
        lines += [f"Structure: {options['structure_pokes']} random pokes per correlation map."]
    if document["motion_truth"] in REAL_FOOTAGE_TRUTH:
        lines += [REAL_FOOTAGE_TRUTH[document["motion_truth"]]]
    for metric, reason in document["unavailable"].items():
        lines += [f"{METRICS[metric].label} unavailable: {reason}"]
    dropped = [m for m in METRICS if m not in columns]
    if dropped:
        lines += ["Not applicable here: " + ", ".join(METRICS[m].label for m in dropped) + "."]
    rows = document.get("rows") or {}
    if any(rows.values()):
        lines += ["", "## Rows", ""] + [f"- **{name}**: {about}." for name, about in rows.items() if about]
    lines += ["", "## Metrics", ""] + [f"- **{METRICS[m].label}**: {METRICS[m].definition}." for m in columns]
    lines += ["", "Files: `metrics.json` (everything, per clip too), `plots/` (a chart per metric; "
              + ", ".join(f"`{m}_per_frame.png`" for m, r in document["per_frame"].items() if r)
              + (": the mean over clips at each frame" if any(document["per_frame"].values()) else "")
              + "), `examples.png`, `examples.mp4`.", ""]
    return "\n".join(lines)


def plots(summary: dict, per_frame: dict | None = None) -> dict[str, np.ndarray]:
    """{file name: bar chart} for each metric with values; {METRIC_per_frame.png: line chart} for each
    per-frame summary (`summarize_per_frame`) with values."""
    charts = {}
    for metric, rows in (per_frame or {}).items():
        if rows:
            info = METRICS[metric]
            arrow = "higher is better" if info.higher_is_better else "lower is better"
            charts[f"{metric}_per_frame.png"] = line_chart(f"{info.label} per frame, {arrow}",
                                                           {m: r["mean"] for m, r in rows.items()}, info.unit)
    for metric, info in METRICS.items():
        rows = [(method, e.get("mean", e.get("value")), e.get("low", e.get("value")), e.get("high", e.get("value")))
                for method, entries in summary.items() if (e := entries[metric])["status"] == "ok"]
        if rows:
            arrow = "higher is better" if info.higher_is_better else "lower is better"
            charts[f"{metric}.png"] = bar_chart(f"{info.label}, {arrow}", rows, info.unit)
    return charts


def write_report(evaluation: Evaluation, out: str | Path, overwrite: bool = False, command: str | None = None) -> Path:
    """Write the report folder `out` (see the module docstring) atomically; returns it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = summarize(evaluation)
    document = metrics_document(evaluation, summary, command)
    with atomic_path(out) as tmp:
        (tmp / "plots").mkdir(parents=True)
        (tmp / "metrics.json").write_text(json.dumps(document, indent=1, allow_nan=False))
        (tmp / "report.md").write_text(report_markdown(document))
        for name, chart in plots(summary, document["per_frame"]).items():
            save_png(tmp / "plots" / name, chart)
        if evaluation.examples:
            shown = evaluation.example_rows or evaluation.methods
            save_png(tmp / "examples.png", example_sheet(evaluation.examples, shown))
            write_video(tmp / "examples.mp4", example_video(evaluation.examples, shown), fps=4.0)
        if overwrite:
            remove_path(out)
    return out
