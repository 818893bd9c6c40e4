"""Small helpers shared by the insight views (plots, legends, values for log axes). No math."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy

from gui.views.curves_view import LogAxis

ACT_COLOR = "#1f77b4"  # activations
GRAD_COLOR = "#d62728"  # gradients
THEORY_COLOR = "#7f7f7f"


def make_plot(object_name: str, title: str, xlabel: str, ylabel: str, log_y: bool = False) -> pg.PlotWidget:
    """A PlotWidget with a grid, no SI prefixes and, for log_y, decade-only tick labels."""
    w = pg.PlotWidget(axisItems={"left": LogAxis("left")})
    w.setObjectName(object_name)
    item = w.getPlotItem()
    item.setTitle(title or None)  # None: no title row (captions above the plot carry it)
    if xlabel:
        item.setLabel("bottom", xlabel)
    if ylabel:
        item.setLabel("left", ylabel)
    item.showGrid(x=True, y=True, alpha=0.2)
    for axis in ("left", "bottom"):
        item.getAxis(axis).enableAutoSIPrefix(False)
    if log_y:
        item.setLogMode(y=True)
    w.setMinimumSize(200, 90)
    # a long title must not widen the view past the window: the layout shares width by stretch
    w.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Expanding)
    return w


def positive_or_nan(values) -> np.ndarray:
    """float64 copy with every value that a log axis cannot show (≤ 0, NaN, ±∞) as NaN."""
    v = np.array(values, dtype=np.float64)
    v[~(np.isfinite(v) & (v > 0))] = np.nan
    return v


def set_log_data(item: pg.PlotDataItem, x, y) -> None:
    """setData for a log axis: values it cannot show become gaps; none at all clears the item
    (pyqtgraph warns about an all-NaN series)."""
    v = positive_or_nan(y)
    if np.isnan(v).all():
        item.setData([], [])
    else:
        item.setData(np.asarray(x, dtype=float), v)


def swatch(color: str, text: str, style: str = "━━") -> str:
    """A coloured line sample and its label, for legend lines in rich-text labels."""
    return f"<span style='color:{color}; font-weight:bold'>{style}</span>&nbsp;{text}"


def legend(*parts: str) -> str:
    return "&nbsp;&nbsp;&nbsp;".join(parts)


def caption(text: str = "", object_name: str | None = None) -> QLabel:
    """A plot's title and legend above it: rich text that wraps instead of widening the view
    (a long pyqtgraph title would make the plot wider than its widget and clip it)."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setMinimumWidth(60)
    if object_name:
        label.setObjectName(object_name)
    return label


def contour_segments(x: np.ndarray, y: np.ndarray, z: np.ndarray, levels) -> np.ndarray:
    """Contour lines of ``z`` (z[i, j] at (x[j], y[i])) at ``levels`` as one ``(k, 2)`` array of
    points, lines separated by NaN rows (for one PlotDataItem with connect="finite").

    Marching squares by contourpy (matplotlib's contour code): linear interpolation within
    each grid cell. Safe to call from a worker thread (no Qt)."""
    import contourpy

    gen = contourpy.contour_generator(x, y, z, line_type=contourpy.LineType.ChunkCombinedNan)
    gap = np.full((1, 2), np.nan)
    pieces = []
    for (chunks,) in gen.multi_lines([float(v) for v in levels]):
        for points in chunks:
            if points is not None and len(points):
                pieces.extend([points, gap])
    return np.concatenate(pieces) if pieces else np.zeros((0, 2))
