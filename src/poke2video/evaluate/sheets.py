"""Pictures of an evaluation, drawn with Pillow and OpenCV: labelled image grids (example sheets,
nearest-neighbour sheets), bar charts with confidence intervals, and correlation-map figures.
Every function returns uint8 RGB arrays [H, W, 3]; `save_png` writes one atomically."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from poke2video.export import draw_poke_overlay
from poke2video.fsutil import atomic_path

WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (120, 120, 120)
BAR_RGB, INTERVAL_RGB = (70, 110, 190), (20, 20, 20)
LABEL_WIDTH = 120
PAD = 4


@lru_cache(maxsize=8)
def font(size: int = 12) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write uint8 RGB [H, W, 3] as PNG under a temporary name, then rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(tmp, format="PNG")
    return path


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of [H, W, 3] by an integer factor (keeps pixels visible): always a new,
    writable array that may be drawn on, whatever `image` is (a read-only photo, a memory-mapped frame)."""
    if factor == 1:
        return np.array(image, order="C")
    return cv2.resize(np.ascontiguousarray(image), None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def display_scale(side: int, at_least: int = 96) -> int:
    """Integer enlargement that makes a `side`-pixel image at least `at_least` pixels wide."""
    return max(1, -(-at_least // max(side, 1)))


def with_poke_arrow(frame: np.ndarray, source_xy, target_xy, scale: int) -> np.ndarray:
    """`frame` enlarged by `scale` with the poke arrow and target dot (coordinates in `frame`'s pixels)."""
    def scaled(xy):
        return tuple((float(v) + 0.5) * scale - 0.5 for v in xy)

    return draw_poke_overlay(upscale(frame, scale)[None], scaled(source_xy), scaled(target_xy))[0]


def text_image(lines: list[str], width: int, height: int, size: int = 12) -> np.ndarray:
    """A white [height, width, 3] image with `lines` of black text at the top left."""
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines):
        draw.text((PAD, PAD + k * (size + 2)), line, fill=BLACK, font=font(size))
    return np.asarray(canvas)


def grid_image(rows: list[list[np.ndarray]], row_labels: list[str], column_labels: list[str] | None = None,
               captions: list[list[str]] | None = None, title: str | None = None,
               label_width: int = LABEL_WIDTH) -> np.ndarray:
    """Cells (uint8 [h, w, 3], one size) in rows, a label left of each row (`label_width` px), optional
    column labels on top and a caption under each cell; white gaps between cells."""
    cell_h, cell_w = rows[0][0].shape[:2]
    caption_h = 16 if captions else 0
    columns = max(len(row) for row in rows)
    blocks = []
    if title:
        blocks.append(text_image([title], label_width + columns * (cell_w + PAD), 20))
    if column_labels:
        header = [text_image([], label_width, 18)] + [text_image([label], cell_w + PAD, 18) for label in column_labels]
        blocks.append(np.concatenate(_pad_row(header, label_width + columns * (cell_w + PAD), 18), axis=1))
    for r, row in enumerate(rows):
        pieces = [text_image(row_labels[r].split("\n"), label_width, cell_h + caption_h + PAD)]
        for c, cell in enumerate(row):
            caption = captions[r][c] if captions else None
            pieces.append(_cell(cell, caption, caption_h))
        blocks.append(np.concatenate(_pad_row(pieces, label_width + columns * (cell_w + PAD), cell_h + caption_h + PAD),
                                     axis=1))
    return np.concatenate(blocks, axis=0)


def _cell(image: np.ndarray, caption: str | None, caption_h: int) -> np.ndarray:
    height, width = image.shape[:2]
    cell = np.full((height + caption_h + PAD, width + PAD, 3), 255, np.uint8)
    cell[:height, :width] = image
    if caption_h:
        cell[height:height + caption_h, :width] = text_image([caption or ""], width, caption_h, size=10)
    return cell


def _pad_row(pieces: list[np.ndarray], width: int, height: int) -> list[np.ndarray]:
    used = sum(p.shape[1] for p in pieces)
    return pieces + ([np.full((height, width - used, 3), 255, np.uint8)] if used < width else [])


def bar_chart(title: str, entries: list[tuple[str, float, float, float]], unit: str = "",
              width: int = 520, bar_height: int = 22) -> np.ndarray:
    """Horizontal bars: one (name, mean, low, high) per row, the 95% interval as a whisker."""
    height = 34 + len(entries) * (bar_height + 8) + 18
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, PAD), title + (f" ({unit})" if unit else ""), fill=BLACK, font=font(14))
    left, right = LABEL_WIDTH, width - 70
    values = [v for _, mean, low, high in entries for v in (mean, low, high)] + [0.0]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0

    def x_of(value: float) -> float:
        return left + (value - lo) / span * (right - left)

    for k, (name, mean, low, high) in enumerate(entries):
        top = 34 + k * (bar_height + 8)
        middle = top + bar_height / 2
        draw.text((PAD, top + 4), name[:18], fill=BLACK, font=font(12))
        draw.rectangle([min(x_of(0.0), x_of(mean)), top, max(x_of(0.0), x_of(mean)), top + bar_height], fill=BAR_RGB)
        draw.line([x_of(low), middle, x_of(high), middle], fill=INTERVAL_RGB, width=2)
        for end in (low, high):
            draw.line([x_of(end), middle - 5, x_of(end), middle + 5], fill=INTERVAL_RGB, width=2)
        draw.text((right + 12, top + 4), f"{mean:.3g}", fill=BLACK, font=font(12))
    draw.line([x_of(0.0), 30, x_of(0.0), height - 16], fill=GREY, width=1)
    draw.text((PAD, height - 16), "bars: mean; whiskers: 95% bootstrap interval", fill=GREY, font=font(10))
    return np.asarray(canvas)


LINE_RGB = [(70, 110, 190), (220, 120, 30), (60, 160, 80), (200, 50, 60), (140, 90, 180), (120, 120, 120),
            (30, 170, 190), (190, 150, 20)]


def line_chart(title: str, series: dict[str, list[float]], unit: str = "", width: int = 520,
               plot_height: int = 220) -> np.ndarray:
    """One line per name over x = 1..len(values) (frames), a legend of the names below; y from 0 to the top."""
    legend_rows = -(-len(series) // 3)
    height = 34 + plot_height + 24 + legend_rows * 16 + PAD
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    draw.text((PAD, PAD), title + (f" ({unit})" if unit else ""), fill=BLACK, font=font(14))
    left, right, top, bottom = 48, width - 16, 34, 34 + plot_height
    steps = max((len(values) for values in series.values()), default=1)
    top_value = max((v for values in series.values() for v in values), default=0.0) or 1.0

    def point(k: int, value: float) -> tuple[float, float]:
        x = left + (k / max(steps - 1, 1)) * (right - left)
        return x, bottom - value / top_value * (bottom - top)

    draw.line([left, top, left, bottom, right, bottom], fill=GREY, width=1)
    for value in (0.0, top_value / 2, top_value):
        draw.text((PAD, point(0, value)[1] - 6), f"{value:.3g}", fill=GREY, font=font(10))
    for k in range(steps):
        draw.text((point(k, 0.0)[0] - 3, bottom + 4), str(k + 1), fill=GREY, font=font(10))
    draw.text((right - 40, top - 14), "x: frame", fill=GREY, font=font(10))
    for n, (name, values) in enumerate(series.items()):
        colour = LINE_RGB[n % len(LINE_RGB)]
        if len(values) > 1:
            draw.line([point(k, v) for k, v in enumerate(values)], fill=colour, width=2)
        for k, v in enumerate(values):
            x, y = point(k, v)
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        legend_x, legend_y = PAD + (n % 3) * (width // 3), bottom + 22 + (n // 3) * 16
        draw.line([legend_x, legend_y + 6, legend_x + 16, legend_y + 6], fill=colour, width=3)
        draw.text((legend_x + 20, legend_y), name[:22], fill=BLACK, font=font(11))
    return np.asarray(canvas)


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """uint8 RGB [H, W, 3] of `heat` [H, W] in [0, 1] (OpenCV's inferno: dark = low, yellow = high)."""
    levels = np.clip(np.nan_to_num(heat) * 255, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO)[..., ::-1]


def correlation_figure(image: np.ndarray, inverse_variance: np.ndarray, at_xy) -> np.ndarray:
    """The image with the poked location, and log inverse variance (min -> max) laid over it."""
    log_score = np.log(inverse_variance)
    heat = (log_score - log_score.min()) / max(float(np.ptp(log_score)), 1e-12)
    gray = np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2).astype(np.float32)
    blended = (0.35 * gray + 0.65 * heat_colours(heat)).astype(np.uint8)
    scale = display_scale(max(image.shape[:2]), 256)
    marked = []
    for panel in (image, blended):
        big = upscale(panel, scale)
        centre = tuple(int(round((float(v) + 0.5) * scale - 0.5)) for v in at_xy)
        cv2.circle(big, centre, max(3, scale // 2 + 1), (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(big, centre, max(2, scale // 2), (40, 220, 255), -1, cv2.LINE_AA)
        marked.append(big)
    labels = ["image, poked location", "inverse variance (log, min to max)"]
    return grid_image([marked], [""], column_labels=labels, label_width=PAD)


class Example:
    """One example clip for the sheet: its source frame, poke and every method's video [T, H, W, 3], the real
    clip's among them (a method on PokeSim; added beside the methods on other stores)."""

    def __init__(self, label: str, source_frame: np.ndarray, poke_source, poke_target):
        self.label, self.source_frame = label, source_frame
        self.poke_source, self.poke_target = poke_source, poke_target
        self.videos: dict[str, np.ndarray] = {}


def example_sheet(examples: list[Example], names: list[str]) -> np.ndarray:
    """Per example, one row per video (`names` order): the source frame with the poke arrow, then frames 1..T."""
    scale = display_scale(examples[0].source_frame.shape[1])
    rows, labels = [], []
    for example in examples:
        arrow = with_poke_arrow(example.source_frame, example.poke_source, example.poke_target, scale)
        for k, name in enumerate(names):
            rows.append([arrow] + [upscale(frame, scale) for frame in example.videos[name]])
            labels.append(f"{example.label}\n{name}" if k == 0 else f"\n\n{name}")
    frames = len(examples[0].videos[names[0]])
    return grid_image(rows, labels, column_labels=["poke"] + [f"t = {t}" for t in range(1, frames + 1)])


def example_video(examples: list[Example], names: list[str]) -> np.ndarray:
    """uint8 [T+1, H, W, 3]: frame t shows, per example (rows), the poke and every video at t (columns)."""
    scale = display_scale(examples[0].source_frame.shape[1])
    frames = len(examples[0].videos[names[0]])
    sheets = []
    for t in range(frames + 1):
        rows = []
        for example in examples:
            arrow = with_poke_arrow(example.source_frame, example.poke_source, example.poke_target, scale)
            shown = [example.source_frame if t == 0 else example.videos[name][t - 1] for name in names]
            rows.append([arrow] + [upscale(frame, scale) for frame in shown])
        sheets.append(grid_image(rows, [e.label for e in examples], column_labels=["poke"] + names,
                                 title=f"frame {t} of {frames}"))
    return np.stack(sheets)
