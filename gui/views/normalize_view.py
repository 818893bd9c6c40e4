"""Why normalize: cost contours over two weights, raw inputs next to standardized ones.

Two inputs on very different scales (feature 2 is ``scale`` times larger) make the cost a
long, narrow valley: gradient descent at the largest stable learning rate zig-zags across it
and crawls along it. Standardized, the contours are round and descent heads for the minimum.
The numbers come from :func:`engine.insight.normalize_demo.normalization_demo`; the contour
lines are marching-squares contours of its cost grid (contourpy, via
:func:`gui.views.insight_plots.contour_segments`), computed with the demo off the GUI thread
(a :class:`gui.views.latest_runner.LatestRunner`).

Each path is drawn with a dot per step up to the step where it first gets within 1 % of the
starting distance from the minimum (:func:`engine.insight.normalize_demo.steps_to_within`);
the step counts are written under the plots.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from gui.panels.widgets import hint_label
from gui.views.insight_plots import caption, contour_segments, legend, make_plot, swatch
from gui.views.latest_runner import LatestRunner

STEPS = 3000  # long enough for the raw problem to get within 1 % at scale 20 (~900 steps)
WITHIN = 0.01
# contour levels: these shares of the window lie below them. From 1 %: the raw problem's thinner
# ellipses would be narrower than a grid cell, and marching squares would draw them out of place
LEVEL_QUANTILES = np.geomspace(0.01, 0.8, 9)
MAX_DOTS = 400  # a path longer than this is drawn as a line with a dot every few steps
CONTOUR_COLOR = "#9e9e9e"
PATH_COLOR = "#d62728"
OWN_COLOR = "#2ca02c"
MIN_COLOR = "#000000"


def _compute(scale: float, lr_fraction: float) -> dict:
    """Worker side: the demo, its step counts, contour levels and segments."""
    from engine.insight.normalize_demo import normalization_demo, steps_to_within

    demo = normalization_demo(scale=scale, steps=STEPS, lr_fraction=lr_fraction)
    out = {"demo": demo, "steps": {}, "levels": {}, "contours": {}}
    for name in ("raw", "normalized", "normalized_own_lr"):
        out["steps"][name] = steps_to_within(getattr(demo, name), WITHIN)
    for name in ("raw", "normalized"):
        pic = getattr(demo, name)
        levels = np.quantile(pic.cost, LEVEL_QUANTILES)
        out["levels"][name] = levels
        out["contours"][name] = contour_segments(pic.w1, pic.w2, pic.cost, levels)
    return out


def drawn_steps(count: int | None) -> int:
    """How many steps of a path to draw: up to the step within 1 % (all of them when never)."""
    return STEPS if count is None else count


class NormalizeView(QWidget):
    """Two cost pictures with their descent paths; controls for the scale and the learning rate."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("normalizeView")
        self.result: dict | None = None  # what is drawn: the demo, step counts, levels, contours
        self.redraw_count = 0
        self._pending: tuple | None = None  # settings waiting for the view to be shown
        self._runner = LatestRunner(self)
        self._runner.finished.connect(self._on_runner_finished)
        self._runner.errored.connect(lambda _tag, msg: self.summary_label.setText(msg.splitlines()[0]))

        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setObjectName("normalizeScaleSpin")
        self.scale_spin.setRange(1.0, 100.0)
        self.scale_spin.setDecimals(0)
        self.scale_spin.setValue(20.0)
        self.scale_spin.setSuffix(" ×")
        self.scale_spin.setKeyboardTracking(False)
        self.scale_spin.setToolTip("How many times larger feature 2's standard deviation is than feature 1's")
        self.lr_slider = QSlider(Qt.Orientation.Horizontal)
        self.lr_slider.setObjectName("normalizeLrSlider")
        self.lr_slider.setRange(5, 99)
        self.lr_slider.setValue(90)
        self.lr_slider.setMinimumWidth(140)
        self.lr_slider.setToolTip(
            "Learning rate as a fraction of the raw problem's limit 2/λ_max (at 1 it oscillates forever)"
        )
        self.lr_label = QLabel()
        self.lr_label.setMinimumWidth(120)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Feature 2 is"))
        controls.addWidget(self.scale_spin)
        controls.addWidget(QLabel("larger.   Learning rate"))
        controls.addWidget(self.lr_slider, 1)
        controls.addWidget(self.lr_label)

        self.raw_plot = make_plot("normalizeRawPlot", "", "w₁", "w₂")
        self.norm_plot = make_plot("normalizeScaledPlot", "", "w₁", "w₂")
        self.raw_caption = caption("<b>Raw inputs</b>", "normalizeRawCaption")
        self.norm_caption = caption("<b>Standardized inputs</b>", "normalizeScaledCaption")
        self.contour_items, self.path_items, self.min_items = {}, {}, {}
        for name, plot in (("raw", self.raw_plot), ("normalized", self.norm_plot)):
            plot.getPlotItem().setAspectLocked(True)
            contour = pg.PlotDataItem(pen=pg.mkPen(CONTOUR_COLOR, width=1), connect="finite")
            path = pg.PlotDataItem(
                pen=pg.mkPen(PATH_COLOR, width=1.5), symbol="o", symbolSize=4, symbolBrush=PATH_COLOR,
                symbolPen=None,
            )  # fmt: skip
            start = pg.ScatterPlotItem(symbol="s", size=9, brush=pg.mkBrush(PATH_COLOR), pen=pg.mkPen("k"))
            minimum = pg.ScatterPlotItem(
                symbol="star", size=16, brush=pg.mkBrush("#ffd700"), pen=pg.mkPen(MIN_COLOR)
            )
            for item in (contour, path, start, minimum):
                plot.addItem(item)
            path.setZValue(5)
            minimum.setZValue(10)
            self.contour_items[name], self.path_items[name], self.min_items[name] = contour, path, minimum
            self.path_items[name + "_start"] = start
        self.own_item = pg.PlotDataItem(
            pen=pg.mkPen(OWN_COLOR, width=2.5, style=Qt.PenStyle.DashLine), symbol="o", symbolSize=10,
            symbolBrush=OWN_COLOR, symbolPen=pg.mkPen("k", width=1),
        )  # fmt: skip
        self.own_item.setZValue(6)
        self.norm_plot.addItem(self.own_item)

        self.raw_label = hint_label(object_name="normalizeRawLabel")
        self.norm_label = hint_label(object_name="normalizeScaledLabel")
        for label in (self.raw_label, self.norm_label):
            label.setStyleSheet("")
        self.summary_label = QLabel()
        self.summary_label.setObjectName("normalizeSummaryLabel")
        self.summary_label.setWordWrap(True)
        self.summary_label.setStyleSheet("font-weight: bold;")
        self.legend_label = caption(
            legend(
                swatch(CONTOUR_COLOR, "cost contours", "━"),
                swatch(PATH_COLOR, "gradient descent, a dot per step", "━●"),
                swatch(OWN_COLOR, "standardized at its own best rate", "╌●"),
                swatch("#c9a800", "minimum", "★"),
            )
        )
        # the explanation is a tooltip: on a 1024×768 screen its three lines were the plots' room
        explanation = (
            "Linear regression on two centred features, cost J(w) = (1/2n)·‖Xw − y‖². With feature 2 "
            "much larger, the cost is a long narrow valley: a learning rate small enough for its steep "
            "side crawls along its floor. Standardizing (each feature / its std) makes it round. "
            "κ = λ_max/λ_min, the condition number of the cost's curvature."
        )
        self.setToolTip(explanation)
        self.summary_label.setToolTip(explanation)

        grid = QGridLayout()
        grid.addWidget(self.raw_caption, 0, 0)
        grid.addWidget(self.norm_caption, 0, 1)
        grid.addWidget(self.raw_plot, 1, 0)
        grid.addWidget(self.norm_plot, 1, 1)
        grid.addWidget(self.raw_label, 2, 0)
        grid.addWidget(self.norm_label, 2, 1)
        grid.setRowStretch(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(controls)
        lay.addWidget(self.summary_label)
        lay.addWidget(self.legend_label)
        lay.addLayout(grid, 1)

        self.scale_spin.valueChanged.connect(self.recompute)
        self.lr_slider.valueChanged.connect(self.recompute)
        self.recompute()

    def settings(self) -> tuple[float, float]:
        """(scale, lr_fraction) as the controls show them."""
        return float(self.scale_spin.value()), self.lr_slider.value() / 100

    def recompute(self, *_args) -> None:
        scale, lr_fraction = settings = self.settings()
        self.lr_label.setText(f"{lr_fraction:.2f} × 2/λ_max (raw)")
        self._pending = settings
        if self.isVisible():  # hidden: computed when shown (a closed tab costs nothing)
            self._submit_pending()

    def _submit_pending(self) -> None:
        if self._pending is not None:
            scale, lr_fraction = settings = self._pending
            self._pending = None
            self._runner.submit(settings, lambda _ctx: _compute(scale, lr_fraction))

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self._submit_pending()

    def is_computing(self) -> bool:
        return self._runner.is_busy()

    def shutdown(self) -> None:
        self._runner.shutdown()

    def _on_runner_finished(self, settings: tuple, result: dict) -> None:
        if settings != self.settings():
            return  # a newer request is pending; it will draw
        demo = result["demo"]
        steps = result["steps"]
        for name in ("raw", "normalized"):
            pic = getattr(demo, name)
            xy = result["contours"][name]
            self.contour_items[name].setData(xy[:, 0], xy[:, 1])
            self._draw_path(self.path_items[name], pic.path, steps[name])
            self.path_items[name + "_start"].setData([pic.path[0, 0]], [pic.path[0, 1]])
            self.min_items[name].setData([pic.minimum[0]], [pic.minimum[1]])
            plot = self.raw_plot if name == "raw" else self.norm_plot
            plot.setXRange(pic.w1[0], pic.w1[-1], padding=0.02)
            plot.setYRange(pic.w2[0], pic.w2[-1], padding=0.02)
        own = demo.normalized_own_lr
        self._draw_path(self.own_item, own.path, steps["normalized_own_lr"], dot=10)
        raw, norm = demo.raw, demo.normalized
        s1, s2 = demo.feature_std
        self.raw_caption.setText(
            f"<b>Raw (feature stds {s1:.2g} and {s2:.3g}): κ = {raw.condition_number:.0f}</b>"
        )
        self.norm_caption.setText(f"<b>Standardized (stds 1 and 1): κ = {norm.condition_number:.2f}</b>")
        self.raw_label.setText(
            f"α = {raw.lr:.3g} ({raw.lr / raw.lr_limit:.2f} of the limit 2/λ_max = {raw.lr_limit:.3g}): "
            f"{self._steps_text(steps['raw'])}"
        )
        self.norm_label.setText(
            f"Same α = {norm.lr:.3g}: {self._steps_text(steps['normalized'])} — a straight path.\n"
            f"Its own best α = 2/(λ_min + λ_max) = {own.lr:.3g} (green): "
            f"{self._steps_text(steps['normalized_own_lr'])}"
        )
        self.summary_label.setText(self._summary(steps))
        self.result = result
        self.redraw_count += 1

    @staticmethod
    def _draw_path(item: pg.PlotDataItem, path: np.ndarray, count: int | None, dot: int = 4) -> None:
        shown = path[: drawn_steps(count) + 1]
        item.setData(shown[:, 0], shown[:, 1])
        # past MAX_DOTS the dots merge into a line anyway: smaller ones keep the redraw quick
        item.setSymbolSize(dot if len(shown) <= MAX_DOTS else 2)

    @staticmethod
    def _steps_text(count: int | None) -> str:
        within = f"within {100 * WITHIN:g} % of the minimum"
        if count is None:
            return f"not {within} after {STEPS} steps"
        return f"{count} step{'s' if count != 1 else ''} to get {within}"

    @staticmethod
    def _summary(steps: dict) -> str:
        raw, own = steps["raw"], steps["normalized_own_lr"]
        if raw is not None and own is not None and own > 0:
            return (
                f"Raw: {raw} steps; standardized at its own best learning rate: {own}: "
                f"{raw / own:.0f}× fewer steps."
            )
        if raw is None and own is not None:
            return f"Raw: not there after {STEPS} steps; standardized: {own} steps."
        return ""
