"""Parallel coordinates of a sweep: one vertical axis per varied field and one for dev error.

Draws :func:`engine.sweep_results.parallel_coordinates`: one line per point (its seeds
averaged), coloured by its dev error (the colour bar on the right). Each axis runs from its
smallest value (bottom) to its largest (top), on a log scale where the engine says the field is
logarithmic (a 0 there sits one decade below the smallest value); values that are not numbers
(architectures, names) are spread evenly in the order they first appear.

Brushing: drag along an axis to keep the lines inside that range (a band shows it); brushes on
several axes combine (a line must pass through every band); a click on an axis removes its
band. ``brushChanged(trial ids | None)`` says which trials remain (None: no brush), so the
trials table can follow. Hovering a line highlights it and emits ``hovered(trial ids)``.

The scaling to [0, 1] per axis is a display transform; the numbers come from the engine.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsRectItem, QVBoxLayout, QWidget

from gui.models.sweep_trials import short_name, value_text

AXIS_GRAB = 0.18  # how near an axis (in axis spacings) a drag must start to brush it
HOVER_PX = 6.0  # how near the mouse must be to a line to hover it
FADED = QColor(150, 150, 150, 60)
COLORMAP = "viridis"
MAX_VALUE_TICKS = 8  # an axis with at most this many values labels every one


class _BrushViewBox(pg.ViewBox):
    """No pan or zoom: a drag along an axis brushes it, a click on an axis clears its brush."""

    def __init__(self, owner: ParallelCoordinatesView):
        super().__init__(enableMenu=False)
        self.setMouseEnabled(False, False)
        self._owner = owner
        self._axis: int | None = None

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 (pyqtgraph override)
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        ev.accept()
        p0 = self.mapSceneToView(ev.buttonDownScenePos())
        p1 = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self._axis = self._owner.axis_near(p0.x())
        if self._axis is not None:
            self._owner.set_brush(self._axis, p0.y(), p1.y())
        if ev.isFinish():
            self._axis = None

    def mouseClickEvent(self, ev):  # noqa: N802 (pyqtgraph override)
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        axis = self._owner.axis_near(self.mapSceneToView(ev.scenePos()).x())
        if axis is not None:
            ev.accept()
            self._owner.clear_brush(axis)


class ParallelCoordinatesView(QWidget):
    """See the module docstring. ``set_data(pc)`` takes the engine's dict."""

    brushChanged = Signal(object)  # frozenset of trial ids, or None when nothing is brushed
    hovered = Signal(object)  # tuple of trial ids under the mouse (empty: none)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("parallelCoordinatesView")
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setObjectName("parallelCoordinatesPlot")
        self.graphics.setMinimumSize(280, 110)
        self.view = _BrushViewBox(self)
        self.plot = self.graphics.addPlot(row=0, col=0, viewBox=self.view)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setMenuEnabled(False)
        self.cmap = pg.colormap.get(COLORMAP)
        self.color_bar = pg.ColorBarItem(
            values=(0.0, 1.0), colorMap=self.cmap, interactive=False, label="dev error", width=14
        )
        self.color_bar.setMenuEnabled(False) if hasattr(self.color_bar, "setMenuEnabled") else None
        self.graphics.addItem(self.color_bar, row=0, col=1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.graphics)

        self.axes: list[dict] = []
        self.lines: list[dict] = []
        self.best: int | None = None
        self.norm = np.zeros((0, 0))  # (n_lines, n_axes) positions in [0, 1]
        self.brushes: dict[int, tuple[float, float]] = {}
        self.kept = np.zeros(0, dtype=bool)
        self.hovered_line: int | None = None
        self._marked: set[int] = set()  # lines of the selected trials (highlighted)
        self._line_items: list[pg.PlotCurveItem] = []
        self._axis_items: list[pg.PlotCurveItem] = []
        self._labels: list[pg.TextItem] = []
        self._bands: dict[int, QGraphicsRectItem] = {}
        self._colors: list[QColor] = []
        self._axes_signature: tuple | None = None
        self._proxy = pg.SignalProxy(
            self.graphics.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved
        )

    # ------------------------------------------------------------ data
    def set_data(self, pc: dict | None) -> None:
        """Draw the engine's ``parallel_coordinates`` dict (None clears). Brushes are kept when
        the axes are the same (new trials arrive while brushing)."""
        axes = list(pc["axes"]) if pc else []
        same_axes = [a["field"] for a in axes] == [a["field"] for a in self.axes]
        self.axes = axes
        self.lines = list(pc["lines"]) if pc else []
        self.best = pc.get("best") if pc else None
        if not same_axes:
            self.brushes.clear()
        self.norm = self._normalize()
        self._draw_axes()
        self._draw_lines()
        self._apply_brushes(emit=True)

    def _normalize(self) -> np.ndarray:
        n, k = len(self.lines), len(self.axes)
        out = np.full((n, k), 0.5)
        self._ticks: list[list[tuple[float, str]]] = []
        for j, ax in enumerate(self.axes):
            col = [ln["values"][j] for ln in self.lines]
            ticks: list[tuple[float, str]] = []
            if not ax.get("numeric", True):
                cats = list(dict.fromkeys(col))
                step = 1.0 / max(1, len(cats) - 1)
                pos = {c: (i * step if len(cats) > 1 else 0.5) for i, c in enumerate(cats)}
                out[:, j] = [pos[c] for c in col]
                ticks = [(pos[c], _category_text(c)) for c in cats]
            elif col:
                v = np.array(col, dtype=float)
                t = v
                zero_at = None
                if ax.get("log") and np.any(v > 0):
                    positive = v[v > 0]
                    if np.any(v <= 0):
                        zero_at = math.floor(math.log10(positive.min()) + 1e-9) - 1.0
                    t = np.where(
                        v > 0, np.log10(np.where(v > 0, v, 1.0)), zero_at if zero_at is not None else 0.0
                    )
                lo, hi = float(t.min()), float(t.max())
                out[:, j] = (t - lo) / (hi - lo) if hi > lo else 0.5
                distinct = sorted(set(zip(t.tolist(), v.tolist())))
                if len(distinct) <= MAX_VALUE_TICKS:  # a few values (a grid): label each
                    marks = distinct
                else:  # many (random sampling): the ends, and the decades between on a log axis
                    marks = [distinct[0], distinct[-1]]
                    if ax.get("log") and hi - lo > 1:
                        marks += [
                            (float(d), 10.0**d)
                            for d in range(math.ceil(lo + 1e-9), math.floor(hi - 1e-9) + 1)
                        ]
                for u, val in marks:
                    y = (u - lo) / (hi - lo) if hi > lo else 0.5
                    ticks.append((y, "0" if val == 0 else _num_text(val)))
            self._ticks.append(ticks)
        return out

    def _draw_axes(self) -> None:
        signature = (
            tuple((a["field"], bool(a.get("log"))) for a in self.axes),
            tuple(map(tuple, self._ticks)),
        )
        if signature == self._axes_signature:
            return  # the same axes and tick labels: keep the items
        self._axes_signature = signature
        for it in self._axis_items + self._labels:
            self.plot.removeItem(it)
        self._axis_items, self._labels = [], []
        fg = self.palette().color(self.foregroundRole())
        bg = QColor(pg.getConfigOption("background"))
        bg.setAlpha(190)
        self._veil = pg.mkBrush(bg)
        for j, ax in enumerate(self.axes):
            line = pg.PlotCurveItem([j, j], [0, 1], pen=pg.mkPen(fg, width=1.5))
            line.setZValue(-5)
            self.plot.addItem(line)
            self._axis_items.append(line)
            name = "dev error" if j == len(self.axes) - 1 else short_name(ax["field"])
            if ax.get("log"):
                name += " (log)"
            title = pg.TextItem(name, color=fg, anchor=(0.5, 0.0))
            title.setPos(j, 1.2)
            self.plot.addItem(title)
            self._labels.append(title)
            for y, text in self._ticks[j]:
                # left of the axis, on a veil of the background so lines never hide the numbers
                label = pg.TextItem(text, color=fg, anchor=(1.0, 0.5), fill=self._veil)
                label.setPos(j, y)
                label.setZValue(40)
                self.plot.addItem(label)
                self._labels.append(label)
        k = len(self.axes)
        self.plot.setXRange(-0.45, max(1, k - 1) + 0.25, padding=0)
        self.plot.setYRange(-0.05, 1.2, padding=0)

    def _draw_lines(self) -> None:
        n = len(self.lines)
        while len(self._line_items) < n:
            item = pg.PlotCurveItem()
            self.plot.addItem(item)
            self._line_items.append(item)
        while len(self._line_items) > n:
            self.plot.removeItem(self._line_items.pop())
        devs = np.array([ln["dev_error"] for ln in self.lines], dtype=float)
        if n:
            lo, hi = float(devs.min()), float(devs.max())
            if not hi > lo:
                hi = lo + 1e-9
            self.color_bar.setLevels((lo, hi))
            rel = (devs - lo) / (hi - lo)
            self._colors = [self.cmap.map(float(r), mode="qcolor") for r in rel]
        else:
            self._colors = []
        xs = np.arange(len(self.axes), dtype=float)
        for i, item in enumerate(self._line_items):
            item.setData(xs, self.norm[i])
        self.kept = np.ones(n, dtype=bool)
        self.hovered_line = None

    def _restyle(self) -> None:
        for i, item in enumerate(self._line_items):
            hot = i == self.hovered_line or i in self._marked
            if not self.kept[i]:
                item.setPen(pg.mkPen(FADED, width=1))
                item.setZValue(0)
            else:
                width = 4 if hot else (2.5 if i == self.best else 1.6)
                item.setPen(pg.mkPen(self._colors[i], width=width))
                item.setZValue(20 if hot else (10 if i == self.best else 5))

    # ------------------------------------------------------------ brushing
    def axis_near(self, x: float) -> int | None:
        """The axis a position on the x axis is on (within AXIS_GRAB), or None."""
        if not self.axes:
            return None
        j = int(round(x))
        if 0 <= j < len(self.axes) and abs(x - j) <= AXIS_GRAB:
            return j
        return None

    def set_brush(self, axis: int, y0: float, y1: float) -> None:
        """Keep the lines whose value on ``axis`` lies in [y0, y1] (axis units, 0 = bottom)."""
        lo, hi = sorted((max(0.0, min(1.0, y0)), max(0.0, min(1.0, y1))))
        self.brushes[axis] = (lo, hi)
        self._apply_brushes(emit=True)

    def set_brush_values(self, axis: int, v0: float, v1: float) -> None:
        """Brush by values in the axis's own units (tests and automation)."""
        self.set_brush(axis, self.value_to_y(axis, v0), self.value_to_y(axis, v1))

    def value_to_y(self, axis: int, value: float) -> float:
        col = np.array([ln["values"][axis] for ln in self.lines], dtype=float)
        ys = self.norm[:, axis]
        order = np.argsort(col)
        return float(np.interp(value, col[order], ys[order]))

    def clear_brush(self, axis: int | None = None) -> None:
        if axis is None:
            self.brushes.clear()
        else:
            self.brushes.pop(axis, None)
        self._apply_brushes(emit=True)

    def _apply_brushes(self, emit: bool) -> None:
        n = len(self.lines)
        kept = np.ones(n, dtype=bool)
        for axis, (lo, hi) in self.brushes.items():
            if axis < self.norm.shape[1]:
                kept &= (self.norm[:, axis] >= lo - 1e-9) & (self.norm[:, axis] <= hi + 1e-9)
        self.kept = kept
        for axis in list(self._bands):
            if axis not in self.brushes:
                self.plot.removeItem(self._bands.pop(axis))
        for axis, (lo, hi) in self.brushes.items():
            band = self._bands.get(axis)
            if band is None:
                band = QGraphicsRectItem()
                band.setBrush(pg.mkBrush(255, 200, 60, 90))
                band.setPen(pg.mkPen(200, 140, 0, 200, width=1))
                band.setZValue(30)
                self.plot.addItem(band)
                self._bands[axis] = band
            band.setRect(QRectF(axis - 0.07, lo, 0.14, max(hi - lo, 0.004)))
        self._restyle()
        if emit:
            self.brushChanged.emit(self.kept_trials())

    def kept_trials(self) -> frozenset[str] | None:
        """Trial ids of the lines the brushes keep; None when nothing is brushed."""
        if not self.brushes:
            return None
        return frozenset(t for i, ln in enumerate(self.lines) if self.kept[i] for t in ln["trial_ids"])

    # ------------------------------------------------------------ hover and highlight
    def line_at(self, x: float, y: float, tolerance_y: float) -> int | None:
        """The kept line nearest to (x, y) in view units, if within tolerance_y vertically."""
        k = len(self.axes)
        if not self.lines or k < 2 or not -0.05 <= x <= k - 1 + 0.05:
            return None
        seg = min(max(int(math.floor(x)), 0), k - 2)
        f = min(max(x - seg, 0.0), 1.0)
        ys = self.norm[:, seg] + (self.norm[:, seg + 1] - self.norm[:, seg]) * f
        d = np.abs(ys - y)
        d[~self.kept] = np.inf
        i = int(np.argmin(d))
        return i if d[i] <= tolerance_y else None

    def _on_mouse_moved(self, args) -> None:
        pos = args[0]
        if not self.view.sceneBoundingRect().contains(pos):
            self._hover(None)
            return
        p = self.view.mapSceneToView(pos)
        px = self.view.viewPixelSize()[1]
        self._hover(self.line_at(p.x(), p.y(), HOVER_PX * px))

    def _hover(self, index: int | None) -> None:
        if index == self.hovered_line:
            return
        self.hovered_line = index
        self._restyle()
        self.hovered.emit(tuple(self.lines[index]["trial_ids"]) if index is not None else ())

    def mark_trials(self, trial_ids) -> None:
        """Highlight the lines of these trials (the rows selected in the trials table)."""
        ids = set(trial_ids or ())
        self._marked = {i for i, ln in enumerate(self.lines) if ids & set(ln["trial_ids"])}
        self._restyle()

    def line_pen_width(self, index: int) -> float:
        return float(self._line_items[index].opts["pen"].widthF())


def _num_text(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e5 else f"{v:.2e}"


def _category_text(json_text: str) -> str:
    import json

    try:
        return value_text(json.loads(json_text))
    except (ValueError, TypeError):
        return str(json_text)
