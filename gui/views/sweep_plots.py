"""The Sweep tab's two line plots: the validation (or learning) curve and one trial's curves.

:class:`ValidationCurvePlot` (objectName ``validationCurvePlot``) draws an
:class:`engine.sweep_results.Curve`: mean train and dev error (1 − accuracy) against the varied
setting with ± spread bars over the seeds, the best value marked (a star and a dashed line),
and the regions where the curve's own numbers show high bias or high variance
(:func:`engine.sweep_regions.bias_variance_regions`) shaded and labelled. Positions on the x
axis come from :func:`engine.sweep_regions.plot_positions`: log10 of the value on a log axis (a
0 one decade below the smallest value, labelled "0"), the value on a linear one, evenly spaced
categories for values that are not numbers. Items are created once and updated with setData.

:class:`TrialCurvePlot` (``trialCurvePlot``) shows one trial's train and dev error per epoch,
live while it runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem

from engine.sweep_regions import HIGH_BIAS, bias_variance_regions, plot_positions
from gui.models.sweep_trials import short_name, value_text

TRAIN_COLOR = "#1f77b4"  # the same train/dev colours as the Curves tab
DEV_COLOR = "#ff7f0e"
BEST_COLOR = "#2ca02c"
REGION_COLORS = {HIGH_BIAS: "#d62728", "high variance": "#9467bd"}
REGION_ALPHA = 34


class ValueAxis(pg.AxisItem):
    """An x axis in axis units (see the module docstring): decades (and 2×, 5× when few) on a
    log axis, labelled with the values; "0" where a zero sits; category names when set."""

    def __init__(self, orientation: str = "bottom"):
        super().__init__(orientation)
        self.log = False
        self.zero_at: float | None = None
        self.enableAutoSIPrefix(False)

    def configure(self, log: bool, zero_at: float | None, categories: Sequence[str] | None) -> None:
        self.log = bool(log)
        self.zero_at = zero_at
        self.setTicks([[(float(i), c) for i, c in enumerate(categories)]] if categories else None)
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph override)
        if not self.log:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = math.floor(minVal), math.ceil(maxVal)
        major = [float(d) for d in range(lo, hi + 1) if minVal <= d <= maxVal]
        minor = []
        if hi - lo <= 3:
            minor = [d + math.log10(m) for d in range(lo, hi + 1) for m in (2, 5)]
            minor = [v for v in minor if minVal <= v <= maxVal]
        if self.zero_at is not None:  # nothing between "0" and the first real value
            major = [self.zero_at] + [v for v in major if v > self.zero_at + 0.5]
            minor = [v for v in minor if v > self.zero_at + 0.5]
        return [(1.0, major), (0.5, minor)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph override)
        if not self.log:
            return super().tickStrings(values, scale, spacing)
        out = []
        for v in values:
            if self.zero_at is not None and abs(v - self.zero_at) < 1e-9:
                out.append("0")
            else:
                out.append(f"{10**v:.3g}")
        return out


def legend_html() -> str:
    """The validation curve's legend: train, dev, best."""
    sw = "&nbsp;&nbsp;".join(
        f"<span style='color:{c}; font-weight:bold'>━●</span>&nbsp;{n}"
        for c, n in ((TRAIN_COLOR, "train"), (DEV_COLOR, "dev"))
    )
    best = f"<span style='color:{BEST_COLOR}; font-weight:bold'>★</span>&nbsp;best"
    return f"{sw}&nbsp;&nbsp;{best}"


class ValidationCurvePlot(pg.PlotWidget):
    """Train and dev error against one varied setting (see the module docstring)."""

    def __init__(self, parent=None):
        self.x_axis = ValueAxis("bottom")
        super().__init__(parent, axisItems={"bottom": self.x_axis})
        self.setObjectName("validationCurvePlot")
        self.curve = None  # the engine Curve drawn
        self.positions = None
        self.regions: list = []
        self.human_error = 0.0
        self.tolerance = 0.02
        item = self.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setLabel("left", "error (1 − accuracy)")
        _light_axes(item)
        item.setMenuEnabled(False)
        self.setMinimumSize(240, 110)
        self._region_items: list[tuple[pg.LinearRegionItem, pg.TextItem]] = []
        self._ranges: tuple | None = None
        self._drawn: tuple | None = None
        self._title: tuple | None = None
        self.kind = "Validation curve"
        self.subtitle = ""
        self._regions_shown: tuple | None = None
        self.train_item = pg.PlotDataItem(
            pen=pg.mkPen(TRAIN_COLOR, width=2),
            symbol="o",
            symbolSize=7,
            symbolBrush=TRAIN_COLOR,
            name="train",
        )
        self.dev_item = pg.PlotDataItem(
            pen=pg.mkPen(DEV_COLOR, width=2), symbol="o", symbolSize=7, symbolBrush=DEV_COLOR, name="dev"
        )
        self.train_bars = pg.ErrorBarItem(pen=pg.mkPen(TRAIN_COLOR, width=1.2))
        self.dev_bars = pg.ErrorBarItem(pen=pg.mkPen(DEV_COLOR, width=1.2))
        self.best_line = pg.InfiniteLine(
            angle=90,
            movable=False,
            pen=pg.mkPen(BEST_COLOR, width=1.5, style=Qt.PenStyle.DashLine),
            label="",
            labelOpts={
                "position": 0.3,  # below the region labels at the top
                "color": BEST_COLOR,
                "fill": (255, 255, 255, 170),
                "anchors": [(0, 0), (0, 0)],
            },
        )
        self.best_star = pg.ScatterPlotItem(
            size=18, symbol="star", brush=pg.mkBrush(BEST_COLOR), pen=pg.mkPen("k", width=0.6)
        )
        # hover a point: its numbers as a tooltip
        self.tips = pg.ScatterPlotItem(
            size=14, pen=None, brush=pg.mkBrush(0, 0, 0, 1), hoverable=True, tip=self._tip
        )
        for it, z in (
            (self.train_bars, 5),
            (self.dev_bars, 5),
            (self.train_item, 10),
            (self.dev_item, 10),
            (self.best_star, 20),
            (self.tips, 30),
        ):
            it.setZValue(z)
            item.addItem(it)
        item.addItem(self.best_line, ignoreBounds=True)
        self.best_line.setVisible(False)
        self._set_title("Validation curve", "")

    # ------------------------------------------------------------ drawing
    def set_curve(self, curve, human_error: float = 0.0, tolerance: float = 0.02, subtitle: str = "") -> None:
        """Draw a Curve (None clears); the regions use the human-level error and tolerance."""
        key = (curve, float(human_error), float(tolerance), subtitle)
        if key == self._drawn:
            return  # the same picture: nothing to redo
        self._drawn = key
        self.curve = curve
        self.human_error, self.tolerance = float(human_error), float(tolerance)
        points = curve.points if curve is not None else ()
        if not points:
            for it in (self.train_item, self.dev_item):
                it.setData([], [])
            for bars in (self.train_bars, self.dev_bars):
                bars.setData(x=np.zeros(0), y=np.zeros(0), height=np.zeros(0))
            self.best_star.clear()
            self.tips.clear()
            self.best_line.setVisible(False)
            self._show_regions([])
            self.positions = None
            self.regions = []
            return
        pos = plot_positions(curve)
        self.positions = pos
        x = np.array(pos.x, dtype=float)
        order = np.argsort(x, kind="stable")
        train = np.array([p.train_error for p in points], dtype=float)
        dev = np.array([p.dev_error for p in points], dtype=float)
        train_sd = np.array([p.train_error_spread for p in points], dtype=float)
        dev_sd = np.array([p.dev_error_spread for p in points], dtype=float)
        self.train_item.setData(x[order], train[order])
        self.dev_item.setData(x[order], dev[order])
        span = float(x.max() - x.min()) or 1.0
        beam = 0.025 * span
        self.train_bars.setData(x=x, y=train, height=2 * train_sd, beam=beam)
        self.dev_bars.setData(x=x, y=dev, height=2 * dev_sd, beam=beam)
        self.tips.setData(
            x=np.concatenate([x, x]), y=np.concatenate([train, dev]), data=list(range(2 * len(points)))
        )
        categories = [value_text(p.value) for p in points] if pos.categorical else None
        self.x_axis.configure(pos.log, pos.zero_at, categories)
        field = short_name(curve.field)
        self.getPlotItem().setLabel(
            "bottom", "training examples used" if curve.field == "data.train_limit" else curve.field
        )
        best_i = points.index(curve.best) if curve.best is not None else None
        if best_i is not None:
            bx, by = float(x[best_i]), float(dev[best_i])
            self.best_star.setData([bx], [by])
            self.best_line.setValue(bx)
            self.best_line.label.setFormat(f"best {field}={value_text(curve.best.value)}")
            self.best_line.setVisible(True)
        else:
            self.best_star.clear()
            self.best_line.setVisible(False)
        # the view: all points with their bars, 0 at the bottom, room above for the labels
        top = float(np.nanmax(np.concatenate([train + train_sd, dev + dev_sd]))) if len(points) else 1.0
        top = max(top, 1e-3) * 1.32
        pad = 0.06 * span if len(points) > 1 else 0.5
        # set only when it changed: a new range regenerates both axis pictures (the costly part
        # of a repaint)
        ranges = ((float(x.min()) - pad, float(x.max()) + pad), (0.0, top))
        if ranges != self._ranges:
            self._ranges = ranges
            self.getPlotItem().setRange(xRange=ranges[0], yRange=ranges[1], padding=0)
        self.regions = bias_variance_regions(curve, self.human_error, self.tolerance)
        self._show_regions(self.regions, top)
        title = "Learning curve" if curve.field == "data.train_limit" else "Validation curve"
        self._set_title(title, subtitle)

    def _show_regions(self, regions, top: float = 1.0) -> None:
        key = (tuple(regions), top)
        if key == self._regions_shown:
            return
        self._regions_shown = key
        item = self.getPlotItem()
        while len(self._region_items) < len(regions):
            region = pg.LinearRegionItem(orientation="vertical", movable=False)
            for line in region.lines:
                line.setPen(pg.mkPen(None))
                line.setHoverPen(pg.mkPen(None))
            region.setZValue(-10)
            label = pg.TextItem(anchor=(0.5, 0))
            label.setZValue(25)
            item.addItem(region, ignoreBounds=True)
            item.addItem(label, ignoreBounds=True)
            self._region_items.append((region, label))
        for k, (region, label) in enumerate(self._region_items):
            if k >= len(regions):
                region.setVisible(False)
                label.setVisible(False)
                continue
            r = regions[k]
            color = QColor(REGION_COLORS[r.kind])
            fill = QColor(color)
            fill.setAlpha(REGION_ALPHA)
            region.setBrush(pg.mkBrush(fill))
            region.setRegion((r.x0, r.x1))
            region.setVisible(True)
            label.setColor(color)
            label.setHtml(
                f"<span style='color:{color.name()}; font-weight:bold'>{r.kind}</span>"
                f"<br><span style='color:{color.name()}'>{'train' if r.kind == HIGH_BIAS else 'dev − train'}"
                f" +{100 * r.gap:.1f} pts</span>"
            )
            # bias labels at the top, variance labels a little lower: they never overlap
            label.setPos((r.x0 + r.x1) / 2, top * (0.99 if r.kind == HIGH_BIAS else 0.86))
            label.setVisible(True)

    def _set_title(self, title: str, subtitle: str) -> None:
        """No title inside the plot (every pixel of height goes to the curve): ``kind`` names the
        tab (validation / learning curve), :func:`legend_html` goes beside the tabs, and the
        values the other fields are held at are the best point's, said beside the plot."""
        self._title = (title, subtitle)
        self.kind = title
        self.subtitle = subtitle

    def _tip(self, x, y, data) -> str:
        if self.curve is None:
            return ""
        n = len(self.curve.points)
        i = int(data)
        p = self.curve.points[i % n]
        which = "train" if i < n else "dev"
        mean = p.train_error if which == "train" else p.dev_error
        sd = p.train_error_spread if which == "train" else p.dev_error_spread
        seeds = f" over {p.n} seeds" if p.n > 1 else ""
        return f"{short_name(self.curve.field)}={value_text(p.value)}\n{which} error {mean:.4f} ± {sd:.4f}{seeds}"

    # ------------------------------------------------------------ for tests and automation
    def plotted(self) -> dict[str, np.ndarray]:
        """What the plot holds, in data units: x of each point (the values; n_train for a
        learning curve), train and dev error means and spreads, in curve order."""
        if self.curve is None or not self.curve.points:
            return {k: np.zeros(0) for k in ("x", "train", "dev", "train_spread", "dev_spread")}
        tx, ty = self.train_item.getData()
        dx, dy = self.dev_item.getData()
        pos = self.positions
        values = np.array([self.to_value(v) for v in tx], dtype=float)
        return {
            "x": values,
            "train": np.asarray(ty, dtype=float),
            "dev": np.asarray(dy, dtype=float),
            "train_spread": np.asarray(self.train_bars.opts["height"], dtype=float)[
                np.argsort(pos.x, kind="stable")
            ]
            / 2,
            "dev_spread": np.asarray(self.dev_bars.opts["height"], dtype=float)[
                np.argsort(pos.x, kind="stable")
            ]
            / 2,
        }

    def to_value(self, position: float) -> float:
        """An axis position back in data units (categorical: the index)."""
        pos = self.positions
        if pos is None or not pos.log:
            return float(position)
        if pos.zero_at is not None and abs(position - pos.zero_at) < 1e-12:
            return 0.0
        return float(10**position)

    def best_marker(self) -> tuple[float, float] | None:
        """(value, dev error) of the star, in data units; None when no best is marked."""
        xs, ys = self.best_star.getData()
        if not len(xs):
            return None
        return self.to_value(float(xs[0])), float(ys[0])

    def region_labels(self) -> list[tuple[str, float, float]]:
        """(kind, x0, x1) of each shown region, in axis units."""
        return [(r.kind, r.x0, r.x1) for r in self.regions]


class TrialCurvePlot(pg.PlotWidget):
    """One trial's train and dev error per epoch (live while it runs)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("trialCurvePlot")
        item = self.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setLabel("bottom", "epoch")
        item.setLabel("left", "error")
        item.setMenuEnabled(False)
        _light_axes(item)
        self.setMinimumSize(180, 90)
        self.train_item = pg.PlotDataItem(pen=pg.mkPen(TRAIN_COLOR, width=2))
        self.dev_item = pg.PlotDataItem(pen=pg.mkPen(DEV_COLOR, width=2))
        item.addItem(self.train_item)
        item.addItem(self.dev_item)
        self.trial_id: str | None = None
        self.set_history(None, "Click a trial to see its curves", [])

    def set_history(self, trial_id: str | None, title: str, records: Sequence[dict]) -> None:
        """Draw a trial's metrics.jsonl-style records (train/dev error per epoch)."""
        self.trial_id = trial_id
        epochs = np.array([r.get("epoch", i + 1) for i, r in enumerate(records)], dtype=float)
        self.train_item.setData(epochs, _errors(records, "train_acc"))
        self.dev_item.setData(epochs, _errors(records, "dev_acc"))
        # the colours are the validation curve's (train blue, dev orange): the title names the trial
        self.getPlotItem().setTitle(title, size="9pt")

    def epochs(self) -> list[int]:
        x, _ = self.dev_item.getData()
        return [] if x is None else [int(v) for v in x]


def _light_axes(item: pg.PlotItem) -> None:
    """Major and minor ticks only (as the Curves tab: the sub-minor grid made every replay of
    an axis picture several milliseconds), cached; no SI prefixes ("error (x0.001)" confuses)."""
    for axis in ("left", "bottom"):
        ax = item.getAxis(axis)
        ax.enableAutoSIPrefix(False)
        ax.setStyle(maxTickLevel=1, maxTextLevel=1)
        # the axis draws the grid across the whole plot, so any change inside the plot repainted
        # it (replaying its picture: ~3-9 ms); cached as a pixmap it is redrawn only when it changes
        ax.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def _errors(records: Sequence[dict], key: str) -> np.ndarray:
    return np.array([math.nan if r.get(key) is None else 1.0 - float(r[key]) for r in records], dtype=float)
