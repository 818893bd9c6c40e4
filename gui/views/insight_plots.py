"""Small helpers shared by the insight views (plots, legends, values for log axes). No math."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

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
    return "&nbsp;&nbsp; ".join(parts)  # a plain space too: a long legend may wrap between entries


class Caption(QLabel):
    """A wrapping rich-text label that reserves exactly the height its text needs at its
    current width. (Layouts asked a plain word-wrapped QLabel for its height at a guessed,
    narrower width and left blank lines above the plots.)"""

    def __init__(self, text: str = ""):
        super().__init__(text)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(60)
        self._height = 0

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt override): the height comes from sizeHint
        return False

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        width = self.width() if self.width() > 60 else 600
        return QSize(width, super().heightForWidth(width))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(60, self.sizeHint().height())

    def _refit(self) -> None:
        height = self.sizeHint().height()
        if height != self._height:
            self._height = height
            self.updateGeometry()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._refit()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        super().setText(text)
        self._refit()


def caption(text: str = "", object_name: str | None = None) -> QLabel:
    """A plot's title and legend above it: rich text that wraps instead of widening the view
    (a long pyqtgraph title would make the plot wider than its widget and clip it)."""
    label = Caption(text)
    if object_name:
        label.setObjectName(object_name)
    return label


def titled(caption_label: QLabel, plot: QWidget) -> QWidget:
    """A caption above a plot in one widget (a box layout sizes a wrapping caption to the
    width it really gets; in a grid it reserved the height of its narrowest wrap)."""
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(0)
    lay.addWidget(caption_label)
    lay.addWidget(plot, 1)
    return box


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
