"""The curves of the current run, with the other shown runs as faded overlays.

:class:`CurvesView` takes the training session (the current run) and the runs table model
(run colours). It shows the current run's loss, accuracy (or error), weight norm and
per-layer gradient norms in bold, and every other run whose Show box is ticked as faded dev
curves. New epochs of a live run are taken from the run history on a ``QTimer`` tick (≤ 10 Hz
per plot, and once at the end), with ``setData`` on plot items created once per series.

Axes fit the current run: overlays are added with ``ignoreBounds``, so a diverged or much
longer overlay never stretches them (the user can still zoom out). Legends sit in the titles
and a legend line above the plots, never on the curves. No training math here: smoothing (an
EMA) and accuracy→error are display transforms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPainter, QPicture
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

# While a run trains, each timer tick redraws ONE of the four plots (round robin), so a
# plot refreshes at most every 4 x 40 ms (~6 Hz) and the event loop never holds all four
# paints at once: a stall is one plot's paint, not four.
REDRAW_MS = 40
PLOT_PARTS = ("loss", "acc", "weight", "grad")
PART_SERIES = {
    "loss": ("train_loss", "dev_loss"),
    "acc": ("train_acc", "dev_acc"),
    "weight": ("weight_norm",),
}
TRAIN_COLOR = "#1f77b4"
DEV_COLOR = "#ff7f0e"
WEIGHT_COLOR = "#2ca02c"
LAYER_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#d62728", "#7f7f7f"]
SERIES = ("train_loss", "dev_loss", "train_acc", "dev_acc", "weight_norm")
GRAD_FLOOR = 1e-12  # grad norms are shown on a log axis; zero would be -inf
OVERLAY_PART = {"dev_loss": "loss", "dev_acc": "acc", "weight_norm": "weight"}

# While a run trains the view sets each plot's range itself (pyqtgraph's auto-range would
# refit inside the paint, which schedules a second paint and regenerates both axes each
# time). The range changes only when the data leave it (then with headroom on that side)
# or fill less than 1/RANGE_SLACK of it, so most redraws reuse the cached axis pictures.
RANGE_PAD = 0.05  # fraction of the data span kept free around the curves
RANGE_HEADROOM = 0.25  # extra room, as a fraction of the span, on the side the data grew
RANGE_SLACK = 1.5  # refit when the data cover less than 1/RANGE_SLACK of the range


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average s_t = w·s_{t-1} + (1-w)·x_t, s_0 = x_0 (NaNs carry the last value)."""
    out = np.empty(len(values), dtype=float)
    s = math.nan
    for i, x in enumerate(values.tolist()):
        if math.isnan(s):
            s = x
        elif not math.isnan(x):
            s = weight * s + (1.0 - weight) * x
        out[i] = s
    return out


def follow_range(
    current: tuple[float, float] | None,
    lo: float,
    hi: float,
    pad: float = RANGE_PAD,
    headroom: float = RANGE_HEADROOM,
    slack: float = RANGE_SLACK,
) -> tuple[float, float]:
    """Range that shows data spanning [lo, hi]: ``current`` while the data stay inside it and
    fill at least 1/slack of it, otherwise [lo, hi] padded by ``pad`` of the span, with
    ``headroom`` more on each side the data left ``current`` through."""
    span = hi - lo
    if not span > 0:
        span = abs(hi) * 0.1 or 1.0
    if current is not None:
        c0, c1 = current
        if c0 <= lo and hi <= c1 and c1 - c0 <= slack * span * (1.0 + 2.0 * pad):
            return current
    new_lo, new_hi = lo - pad * span, hi + pad * span
    if current is not None:
        if hi > current[1]:
            new_hi += headroom * span
        if lo < current[0]:
            new_lo -= headroom * span
    return (new_lo, new_hi)


def _finite_extent(values: np.ndarray, log: bool = False) -> tuple[float, float] | None:
    """(min, max) of the finite values (of log10 of the positive ones when log), or None."""
    v = np.asarray(values, dtype=float)
    if log:
        v = v[v > 0]
        if not len(v):
            return None
        v = np.log10(v)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    return float(v.min()), float(v.max())


def _merge_extent(a: tuple[float, float] | None, b: tuple[float, float] | None):
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), max(a[1], b[1])


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.4g}"


def _swatch(color: str, text: str, style: str = "━━") -> str:
    return f"<span style='color:{color}; font-weight:bold'>{style}</span>&nbsp;{text}"


def legend_html(n_layers: int) -> str:
    """The legend line above the plots (the gradient plot's layers are in its own title)."""
    parts = [
        _swatch(TRAIN_COLOR, "train"),
        _swatch(DEV_COLOR, "dev"),
        _swatch(WEIGHT_COLOR, "weight norm"),
        _swatch("#2ca02c", "best epoch ★", "┆"),
        _swatch("#d62728", "early stop", "┆"),
        _swatch("#999999", "other shown runs (dev curves, in their colour)", "╌╌"),
    ]
    return "&nbsp;&nbsp;&nbsp;".join(parts)


def grad_title(n_layers: int) -> str:
    layers = " ".join(
        f"<span style='color:{LAYER_COLORS[i % len(LAYER_COLORS)]}'>━{i + 1}</span>" for i in range(n_layers)
    )
    return "Gradient norm per layer ‖dW‖" + (f"&nbsp;&nbsp;{layers}" if layers else "")


class LogAxis(pg.AxisItem):
    """Log-mode axis that labels only decades and the 2× / 5× minor ticks (no crowded labels)."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph override)
        strings = super().logTickStrings(values, scale, spacing)
        if spacing is not None:
            return strings
        out = []
        for v, s in zip(values, strings):
            mantissa = 10 ** (float(v) - math.floor(float(v) + 1e-9))
            out.append(s if round(mantissa) in (1, 2, 5) else "")
        return out


@dataclass
class _Overlay:
    color: str
    epochs: np.ndarray
    values: dict[str, np.ndarray]
    items: dict[str, pg.PlotDataItem] = field(default_factory=dict)
    visible: bool = True


class CurvesView(QWidget):
    """Four plots of the current run: loss, accuracy (or error), weight norm, per-layer gradient norms.

    session: the TrainingSession whose current run is shown (None: a bare view driven through
    begin_run/add_record/end_run and add_overlay, as tests do); runs: the RunsTableModel that
    gives each run its colour.
    """

    def __init__(self, session=None, runs=None, parent: QWidget | None = None):
        super().__init__(parent)
        self._session = session
        self._runs = runs
        self._shown_key: str | None = None  # the run drawn in bold
        self._consumed = 0  # epochs of the shown run already taken from the history
        self._live = False
        self._overlay_dirty: set[str] = set()  # live overlays with new epochs to draw
        self._final_parts: list[str] = []  # plots still to be drawn for the end of a run
        self._dirty_parts: set[str] = set()
        self._next_part = 0
        self._epochs: list[int] = []
        self._hist: dict[str, list[float]] = {k: [] for k in SERIES}
        self._grad_hist: list[list[float]] = []  # floored at GRAD_FLOOR for the log plot
        self._grad_raw: list[list[float]] = []  # the recorded values (CSV export, hover)
        self._grad_array = np.empty((0, 0))  # _grad_hist as a matrix, extended at each redraw
        self._ema_cache: dict[str, tuple[float, bool, np.ndarray]] = {}
        self._best_epoch: int | None = None
        self._stop_epoch: int | None = None
        self._stop_reason: str | None = None
        self._dirty = False
        self._overlays: dict[str, _Overlay] = {}
        self.redraw_count = 0  # how many times curves were redrawn (tests check it is bounded)
        # live range handling: parts whose range the view sets, and the range it last set
        self._managed: set[str] = set()
        self._ranges: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
        self._marker_state: dict[int, tuple] = {}  # what the markers of each plot show
        self._pen_faint: dict[str, bool] = {}  # raw curve drawn with the faint pen
        self._hover_epoch: int | None = None

        # view options
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setObjectName("smoothingSlider")
        self.smoothing_slider.setRange(0, 95)
        self.smoothing_slider.setValue(0)
        self.smoothing_slider.setMaximumWidth(160)
        self.smoothing_slider.setToolTip(
            "Exponential moving average of the curves; the raw curve stays faint"
        )
        self.smoothing_label = QLabel("smoothing 0.00")
        self.log_check = QCheckBox("log loss")
        self.log_check.setObjectName("logScaleCheck")
        self.error_check = QCheckBox("show error (1 − accuracy)")
        self.error_check.setObjectName("showErrorCheck")
        self.hover_label = QLabel("Hover a plot to read exact values")
        self.hover_label.setObjectName("hoverLabel")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        opts = QHBoxLayout()
        opts.addWidget(QLabel("Smoothing"))
        opts.addWidget(self.smoothing_slider)
        opts.addWidget(self.smoothing_label)
        opts.addSpacing(12)
        opts.addWidget(self.log_check)
        opts.addWidget(self.error_check)
        opts.addStretch(1)

        self.loss_plot = self._make_plot("lossPlot", "Loss (cross-entropy)", "loss")
        self.acc_plot = self._make_plot("accuracyPlot", "Accuracy", "accuracy")
        self.weight_plot = self._make_plot("weightNormPlot", "Weight norm √Σ‖W‖²", "‖W‖")
        self.grad_plot = self._make_plot("gradNormPlot", "Gradient norm per layer ‖dW‖", "‖dW‖")
        self.grad_plot.getPlotItem().setLogMode(y=True)
        self._plots = {
            "loss": self.loss_plot,
            "acc": self.acc_plot,
            "weight": self.weight_plot,
            "grad": self.grad_plot,
        }
        for part, plot in self._plots.items():  # the user zoomed, panned or pressed "A"
            plot.getPlotItem().sigRangeChangedManually.connect(
                lambda _mask, part=part: self._managed.discard(part)
            )
            plot.getPlotItem().getViewBox().sigResized.connect(
                lambda vb, part=part: part in self._managed and vb.updateMatrix()
            )

        self._raw: dict[str, pg.PlotDataItem] = {}
        self._smooth: dict[str, pg.PlotDataItem] = {}
        plots = {
            "train_loss": self.loss_plot,
            "dev_loss": self.loss_plot,
            "train_acc": self.acc_plot,
            "dev_acc": self.acc_plot,
            "weight_norm": self.weight_plot,
        }
        colors = {
            "train_loss": TRAIN_COLOR,
            "dev_loss": DEV_COLOR,
            "train_acc": TRAIN_COLOR,
            "dev_acc": DEV_COLOR,
            "weight_norm": WEIGHT_COLOR,
        }
        for key, plot in plots.items():
            name = key.split("_")[0] if key != "weight_norm" else "weight norm"
            raw = pg.PlotDataItem(pen=pg.mkPen(colors[key], width=2), connect="finite", name=name)
            faint = QColor(colors[key])
            faint.setAlpha(70)
            smooth = pg.PlotDataItem(pen=pg.mkPen(colors[key], width=2), connect="finite")
            for item in (raw, smooth):  # long runs: draw at most ~a point per pixel
                item.setDownsampling(auto=True, method="peak")
                item.setClipToView(True)
            raw.setZValue(10)
            smooth.setZValue(11)
            plot.addItem(raw)
            plot.addItem(smooth)
            smooth.setVisible(False)
            self._raw[key], self._smooth[key] = raw, smooth
            raw.setProperty("faint_pen", pg.mkPen(faint, width=1.5))
            raw.setProperty("full_pen", pg.mkPen(colors[key], width=2))
        self._grad_items: list[pg.PlotDataItem] = []

        # best epoch and early-stop markers, crosshairs
        self._best_lines = []
        self._stop_lines = []
        self._cross_lines = []
        for plot in (self.loss_plot, self.acc_plot, self.weight_plot, self.grad_plot):
            best = pg.InfiniteLine(
                angle=90,
                movable=False,
                pen=pg.mkPen("#2ca02c", width=1.5, style=Qt.PenStyle.DashLine),
            )
            stop = pg.InfiniteLine(
                angle=90,
                movable=False,
                pen=pg.mkPen("#d62728", width=1.5, style=Qt.PenStyle.DotLine),
            )
            cross = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((128, 128, 128, 150), width=1))
            for line in (best, stop, cross):
                line.setVisible(False)
                plot.addItem(line, ignoreBounds=True)
            self._best_lines.append(best)
            self._stop_lines.append(stop)
            self._cross_lines.append(cross)
        self._best_symbols = []
        for plot in (self.loss_plot, self.acc_plot):
            sym = pg.ScatterPlotItem(
                size=14, symbol="star", brush=pg.mkBrush("#2ca02c"), pen=pg.mkPen("k", width=0.5)
            )
            sym.setZValue(20)
            plot.addItem(sym, ignoreBounds=True)
            self._best_symbols.append(sym)

        self._proxies = [
            pg.SignalProxy(
                p.scene().sigMouseMoved, rateLimit=30, slot=lambda ev, p=p: self._on_plot_mouse_moved(p, ev)
            )
            for p in (self.loss_plot, self.acc_plot, self.weight_plot, self.grad_plot)
        ]

        # the legend lives above the plots, where it can never cover a curve or a marker
        self.legend_label = QLabel(legend_html(0))
        self.legend_label.setObjectName("curvesLegend")
        self.legend_label.setWordWrap(True)
        self.plots_widget = QWidget()  # what Export curves as PNG pictures: the plots and their legend
        self.plots_widget.setObjectName("curvesPlots")
        grid = QGridLayout(self.plots_widget)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        grid.addWidget(self.legend_label, 0, 0, 1, 2)
        grid.addWidget(self.loss_plot, 1, 0)
        grid.addWidget(self.acc_plot, 1, 1)
        grid.addWidget(self.weight_plot, 2, 0)
        grid.addWidget(self.grad_plot, 2, 1)
        grid.setRowStretch(1, 1)
        grid.setRowStretch(2, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(opts)
        lay.addWidget(self.plots_widget, 1)
        lay.addWidget(self.hover_label)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.smoothing_slider.valueChanged.connect(self._on_smoothing_changed)
        self.log_check.toggled.connect(self._on_log_toggled)
        self.error_check.toggled.connect(self._on_error_toggled)
        if session is not None:
            session.currentChanged.connect(self._on_session_current_changed)
            session.history.subscribe(self._on_history_event)
            for run in session.history.runs():
                self._on_history_event("added", run.key)
            self._on_session_current_changed(session.current_key or "")

    # ------------------------------------------------------------ construction helpers
    def _make_plot(self, object_name: str, title: str, ylabel: str) -> pg.PlotWidget:
        w = pg.PlotWidget(axisItems={"left": LogAxis("left")})
        w.setObjectName(object_name)
        item = w.getPlotItem()
        item.setTitle(title)
        item.setLabel("bottom", "epoch")
        item.setLabel("left", ylabel)
        item.showGrid(x=True, y=True, alpha=0.2)
        for axis in ("left", "bottom"):
            item.getAxis(axis).enableAutoSIPrefix(False)  # "loss (x0.001)" confuses readers
            # major and minor ticks/grid lines only: the faint sub-minor grid (~40 lines per
            # axis) made replaying the axis pictures cost ~2 ms per paint
            item.getAxis(axis).setStyle(maxTickLevel=1, maxTextLevel=1)
        item.setMenuEnabled(True)
        w.setMinimumSize(220, 120)  # fits a 1366x768 laptop screen with the rest
        return w

    # ------------------------------------------------------------ the session's current run
    def shown_key(self) -> str | None:
        """The run drawn in bold (the session's current run)."""
        return self._shown_key

    def _color(self, key: str) -> str:
        return self._runs.color(key) if self._runs is not None else "#7f7f7f"

    def _on_session_current_changed(self, key: str) -> None:
        """Draw the new current run in bold and put the previous one back among the overlays."""
        history = self._session.history
        old = self._shown_key
        self._shown_key = key or None
        if old and old != self._shown_key:
            run = history.get(old)
            if run is not None:
                self.add_overlay(old, run.metrics, self._color(old), not run.hidden)
        run = history.get(self._shown_key)
        self.remove_overlay(self._shown_key or "")
        self._hover_epoch = None
        for line in self._cross_lines:
            line.setVisible(False)
        self.hover_label.setText("Hover a plot to read exact values")
        if run is None:
            self._live = False
            self.begin_run()
            self.end_run()
            return
        self.begin_run()
        self._consumed = 0
        self._take_new_epochs(run)
        self._live = run.live
        if run.live:
            self._timer.start()
        else:
            self._finish_shown(run)

    def _take_new_epochs(self, run) -> None:
        """Epochs of the shown run not drawn yet: O(new epochs), never the whole history."""
        for m in run.metrics[self._consumed :]:
            self.add_record(_DictRecord(m))
        self._consumed = len(run.metrics)
        if run.live and self._session is not None and self._session.live_key == run.key:
            self._best_epoch = self._session.live_best_epoch or self._best_epoch

    def _finish_shown(self, run) -> None:
        summary = run.summary or {}
        best = summary.get("best_epoch")
        if isinstance(best, int) and best > 0:
            self._best_epoch = best
        reason = summary.get("stop_reason")
        if isinstance(reason, str):
            self._stop_reason = reason
            self._stop_epoch = self._epochs[-1] if self._epochs else None
        self._live = False
        self.end_run()

    def _on_history_event(self, event: str, key: str) -> None:
        history = self._session.history
        run = history.get(key)
        if event == "removed":
            self.remove_overlay(key)
            return
        if run is None:
            return
        if key == self._shown_key:
            if event == "records":
                self._dirty = True  # taken on the next timer tick
            elif event == "changed" and self._live and not run.live:
                self._take_new_epochs(run)  # the run ended: draw its last epochs and markers
                self._finish_shown(run)
            elif event == "changed" and not run.live:
                self._best_epoch = (run.summary or {}).get("best_epoch") or self._best_epoch
            return
        if event == "added" or (event == "changed" and key not in self._overlays):
            self.add_overlay(key, run.metrics, self._color(key), not run.hidden)
        elif event == "changed":
            if run.live or len(run.metrics) != len(self._overlays[key].epochs):
                self.add_overlay(key, run.metrics, self._color(key), not run.hidden)
            else:
                self.set_overlay_visible(key, not run.hidden)
        elif event == "records":
            self._overlay_dirty.add(key)

    def _refresh_live_overlays(self) -> None:
        history = self._session.history if self._session is not None else None
        for key in list(self._overlay_dirty):
            run = history.get(key) if history is not None else None
            if run is not None and key in self._overlays:
                self.add_overlay(key, run.metrics, self._color(key), not run.hidden)
        self._overlay_dirty.clear()

    # ------------------------------------------------------------ export
    def export_image(self, path: str, min_width: int = 1600) -> bool:
        """Save the plots and their legend (no controls, no hover line) as a PNG, rendered at a
        resolution where the text stays readable."""
        crosshairs = [line.isVisible() for line in self._cross_lines]
        for line in self._cross_lines:
            line.setVisible(False)
        widget = self.plots_widget
        try:
            scale = max(1.0, min_width / max(1, widget.width()))
            size = widget.size() * scale
            image = QImage(size, QImage.Format.Format_ARGB32)
            image.setDevicePixelRatio(scale)
            image.fill(widget.palette().window().color())
            painter = QPainter(image)
            try:
                widget.render(painter, QPoint())
            finally:
                painter.end()
            return image.save(str(path), "PNG")
        finally:
            for line, shown in zip(self._cross_lines, crosshairs):
                line.setVisible(shown)

    # ------------------------------------------------------------ live run
    def begin_run(self) -> None:
        """Clear the live curves for a new run and start the redraw timer."""
        self._epochs.clear()
        for v in self._hist.values():
            v.clear()
        self._grad_hist.clear()
        self._grad_raw.clear()
        self._grad_array = np.empty((0, 0))
        self._ema_cache.clear()
        self._best_epoch = self._stop_epoch = self._stop_reason = None
        for item in self._grad_items:  # kept: creating items and legend rows costs ~30 ms
            item.setData([], [])
        for line in self._best_lines + self._stop_lines:
            line.setVisible(False)
        for sym in self._best_symbols:
            sym.clear()
        self._marker_state.clear()
        self._dirty = True
        self._final_parts = []
        self._set_antialias(False)
        # the view follows the data itself while live (see RANGE_SLACK)
        self._managed = set(PLOT_PARTS)
        self._ranges.clear()
        for plot in self._plots.values():
            plot.getPlotItem().getViewBox().disableAutoRange()
        self._redraw()
        self._timer.start()

    def add_record(self, rec: Any) -> None:
        """Store one EpochRecord; drawing happens on the timer."""
        self._epochs.append(int(rec.epoch))
        for key in SERIES:
            v = getattr(rec, key)
            self._hist[key].append(math.nan if v is None else float(v))
        self._grad_hist.append(
            [GRAD_FLOOR if (g is None or not g > GRAD_FLOOR) else float(g) for g in rec.grad_norms]
        )
        self._grad_raw.append([math.nan if g is None else float(g) for g in rec.grad_norms])
        self._best_epoch = (
            int(rec.best_epoch) if rec.best_epoch is not None and rec.best_epoch > 0 else self._best_epoch
        )
        if rec.stop_reason:
            self._stop_reason = rec.stop_reason
            self._stop_epoch = int(rec.epoch)
        self._dirty = True

    def end_run(self) -> None:
        """The final curves, ranges and antialiasing. While the view is on screen this is done one
        plot per timer tick (a few ticks; :meth:`is_redrawing` says when it is complete), so the
        end of a run is never one long paint of four plots; otherwise at once."""
        self._final_parts = list(PLOT_PARTS)
        if self.isVisible():
            self._timer.start()
            return
        while self._final_parts:
            self._finish_part(self._final_parts.pop(0))
        self._timer.stop()

    def _finish_part(self, part: str) -> None:
        vb = self._plots[part].getPlotItem().getViewBox()
        released = part in self._managed
        if released:  # pyqtgraph's auto-range again; a user's zoom is kept
            self._managed.discard(part)
            self._ranges.pop(part, None)
            vb.enableAutoRange()
        self._dirty_parts.discard(part)
        self.redraw_count += 1
        self._redraw_part(part)
        self._set_antialias(True, part)
        if released:
            vb.updateAutoRange()  # now, on the final curves: the range describes the run as it ends

    def show_history(self, metrics: list[dict], summary: dict | None) -> None:
        """Show a stored run's metrics as the live curves (e.g. the last run after a restart)."""
        self._timer.stop()
        self.begin_run()
        self._timer.stop()
        for m in metrics:
            self.add_record(_DictRecord(m))
        if summary:
            self._best_epoch = summary.get("best_epoch") or self._best_epoch
            reason = summary.get("stop_reason")
            if reason:
                self._stop_reason = reason
                self._stop_epoch = self._epochs[-1] if self._epochs else None
        self.end_run()

    def is_redrawing(self) -> bool:
        return self._timer.isActive()

    def epochs(self) -> list[int]:
        return list(self._epochs)

    def history(self) -> dict[str, list]:
        """Copy of the live history: epoch, the SERIES keys and grad_norms (list per epoch)."""
        out: dict[str, list] = {"epoch": list(self._epochs)}
        for k in SERIES:
            out[k] = list(self._hist[k])
        out["grad_norms"] = [list(g) for g in self._grad_raw]
        return out

    def follows_data(self, part: str) -> bool:
        """True while the view sets this plot's range itself (a live run the user has not zoomed)."""
        return part in self._managed

    def best_epoch(self) -> int | None:
        return self._best_epoch

    def stop_marker_epoch(self) -> int | None:
        """Epoch of the early-stop marker, or None when the run did not stop early."""
        return self._stop_epoch if self._stop_reason == "early_stopping" else None

    def series_item(self, key: str, smoothed: bool = False) -> pg.PlotDataItem:
        return (self._smooth if smoothed else self._raw)[key]

    def grad_items(self) -> list[pg.PlotDataItem]:
        return list(self._grad_items)

    # ------------------------------------------------------------ overlays
    def add_overlay(self, key: str, metrics: list[dict], color: str, visible: bool = True) -> None:
        """A finished run as faded dev-loss, dev-accuracy and weight-norm curves."""
        self.remove_overlay(key)
        epochs = np.array([m.get("epoch", i + 1) for i, m in enumerate(metrics)], dtype=float)
        values = {
            k: np.array([math.nan if m.get(k) is None else float(m[k]) for m in metrics], dtype=float)
            for k in ("dev_loss", "dev_acc", "weight_norm")
        }
        ov = _Overlay(color=color, epochs=epochs, values=values, visible=visible)
        self._overlays[key] = ov
        # a hidden run gets its plot items when it is first shown: a sweep adds dozens of runs
        # with Show unticked, and three items each cost ~10 ms of the window's time per run
        if visible:
            self._make_overlay_items(ov)
            self._draw_overlay(ov)

    def _make_overlay_items(self, ov: _Overlay) -> None:
        faded = QColor(ov.color)
        faded.setAlpha(120)
        for k, plot in (
            ("dev_loss", self.loss_plot),
            ("dev_acc", self.acc_plot),
            ("weight_norm", self.weight_plot),
        ):
            item = pg.PlotDataItem(
                pen=pg.mkPen(faded, width=1.5, style=Qt.PenStyle.DashLine), connect="finite"
            )
            item.setZValue(1)
            plot.addItem(item, ignoreBounds=True)  # axes fit the current run, never an overlay
            ov.items[k] = item

    def remove_overlay(self, key: str) -> None:
        ov = self._overlays.pop(key, None)
        if ov is None:
            return
        for k, item in ov.items.items():
            self._plots[OVERLAY_PART[k]].removeItem(item)

    def set_overlay_visible(self, key: str, visible: bool) -> None:
        ov = self._overlays.get(key)
        if ov is not None:
            ov.visible = visible
            if visible and not ov.items:
                self._make_overlay_items(ov)
                self._draw_overlay(ov)
            for item in ov.items.values():
                item.setVisible(visible)

    def overlay_keys(self) -> list[str]:
        return list(self._overlays)

    def overlay_visible(self, key: str) -> bool:
        ov = self._overlays.get(key)
        return bool(ov and ov.visible)

    def _draw_overlay(self, ov: _Overlay) -> None:
        if not ov.items:  # hidden and never shown: nothing drawn yet
            return
        acc = ov.values["dev_acc"]
        ov.items["dev_loss"].setData(ov.epochs, ov.values["dev_loss"])
        ov.items["dev_acc"].setData(ov.epochs, 1.0 - acc if self.error_check.isChecked() else acc)
        ov.items["weight_norm"].setData(ov.epochs, ov.values["weight_norm"])
        for item in ov.items.values():
            item.setVisible(ov.visible)

    # ------------------------------------------------------------ drawing
    def _on_timer_timeout(self) -> None:
        if self._final_parts and not self._live:  # after a run: one plot per tick
            self._finish_part(self._final_parts.pop(0))
            if not self._final_parts:
                self._timer.stop()
            return
        if self._overlay_dirty:
            self._refresh_live_overlays()
        if self._dirty and self._live and self._session is not None:
            run = self._session.history.get(self._shown_key)
            if run is not None:
                self._take_new_epochs(run)
        if self._dirty:  # a new record: every plot needs a refresh
            self._dirty = False
            self._dirty_parts.update(PLOT_PARTS)
        for _ in PLOT_PARTS:  # the next dirty plot in rotation, one per tick
            part = PLOT_PARTS[self._next_part]
            self._next_part = (self._next_part + 1) % len(PLOT_PARTS)
            if part in self._dirty_parts:
                self._dirty_parts.discard(part)
                self.redraw_count += 1
                self._redraw_part(part)
                return

    def smoothing_weight(self) -> float:
        return self.smoothing_slider.value() / 100.0

    def _redraw(self) -> None:
        """Redraw every plot now (start, end, option changes)."""
        self._dirty = False
        self._dirty_parts.clear()
        self.redraw_count += 1
        for part in PLOT_PARTS:
            self._redraw_part(part)

    def _redraw_part(self, part: str) -> None:
        x = np.asarray(self._epochs, dtype=float)
        drawn: list[np.ndarray] = []  # the y arrays drawn (before a log axis maps them)
        if part == "grad":
            g = self._redraw_grad(x)
            if g is not None:
                drawn.append(g)
        else:
            w = self.smoothing_weight()
            show_error = self.error_check.isChecked()
            for key in PART_SERIES[part]:
                y = np.asarray(self._hist[key], dtype=float)
                if show_error and key.endswith("_acc"):
                    y = 1.0 - y
                drawn.append(y)
                raw, smooth = self._raw[key], self._smooth[key]
                raw.setData(x, y)
                faint = bool(w > 0 and len(y))
                if faint:  # an EMA stays inside the raw curve's range
                    smooth.setData(x, self._smoothed(key, y, w, show_error))
                smooth.setVisible(faint)
                if self._pen_faint.get(key) is not faint:  # setPen re-runs updateItems
                    self._pen_faint[key] = faint
                    raw.setPen(raw.property("faint_pen" if faint else "full_pen"))
        self._draw_markers(PLOT_PARTS.index(part))
        if part in self._managed:
            self._follow_data(part, drawn)

    def _data_extent(self, part: str, drawn: list[np.ndarray]):
        """((x0, x1), (y0, y1)) of what a plot shows, in view units (log10 on a log axis):
        the live curves and the visible overlays. None when there is nothing to show."""
        if not self._epochs:
            return None
        log = part == "grad" or (part == "loss" and self.log_check.isChecked())
        xs = (float(min(self._epochs)), float(max(self._epochs)))
        ys = None
        for y in drawn:  # the current run only: overlays never stretch the axes
            ys = _merge_extent(ys, _finite_extent(y, log))
        return None if ys is None else (xs, ys)

    def _follow_data(self, part: str, drawn: list[np.ndarray]) -> None:
        """Live: set the plot's range to follow the data (hysteresis: see follow_range)."""
        vb = self._plots[part].getPlotItem().getViewBox()
        last = self._ranges.get(part)
        if any(vb.autoRangeEnabled()) or (last is not None and not _same_range(vb.targetRange(), last)):
            self._managed.discard(part)  # someone else (menu, "A" button, a zoom) set the range
            return
        ext = self._data_extent(part, drawn)
        if ext is None:
            return
        (x0, x1), (y0, y1) = ext
        xr = follow_range(last and last[0], x0 - 0.5, x1 + 0.5, pad=0.0)
        yr = follow_range(last and last[1], y0, y1)
        if (xr, yr) != last:
            vb.setRange(xRange=xr, yRange=yr, padding=0)
            # apply the new transform now: inside the paint (pyqtgraph's default) the items
            # it moves (marker labels, clipped curves) would schedule a second paint
            vb.updateMatrix()
            self._ranges[part] = (xr, yr)
            if last is None or yr != last[1]:  # the left axis changes with the y range only
                _prepare_axis_picture(self._plots[part].getPlotItem())

    def _redraw_grad(self, x: np.ndarray) -> np.ndarray | None:
        """Draw the per-layer gradient norms; returns the (epochs, layers) matrix drawn."""
        if not self._grad_hist:
            return None
        n_layers = len(self._grad_hist[-1])
        if n_layers != len(self._grad_items):
            self.grad_plot.getPlotItem().setTitle(grad_title(n_layers))
        while len(self._grad_items) > n_layers:  # fewer layers than the previous run
            item = self._grad_items.pop()
            self.grad_plot.removeItem(item)
        while len(self._grad_items) < n_layers:
            i = len(self._grad_items)
            item = pg.PlotDataItem(
                pen=pg.mkPen(LAYER_COLORS[i % len(LAYER_COLORS)], width=1.5),
                connect="finite",
                name=f"layer {i + 1}",
                antialias=not self._timer.isActive(),
            )
            self.grad_plot.addItem(item)
            self._grad_items.append(item)
        g = self._grad_matrix(n_layers)
        for i, item in enumerate(self._grad_items):
            item.setData(x, g[:, i])
        return g

    def _set_antialias(self, on: bool, part: str | None = None) -> None:
        """Antialiased curves cost several times more to paint: off while live, on at rest.
        part: only the curves of one plot ("loss", "acc", "weight", "grad")."""
        items = [*self._raw.values(), *self._smooth.values(), *self._grad_items]
        for ov in self._overlays.values():
            items.extend(ov.items.values())
        if part is not None:
            plot_item = self._plots[part].getPlotItem()
            items = [item for item in items if item.getViewBox() is plot_item.getViewBox()]
        for item in items:
            if item.opts.get("antialias") != on:
                item.opts["antialias"] = on
                item.updateItems()

    def _smoothed(self, key: str, y: np.ndarray, weight: float, show_error: bool) -> np.ndarray:
        """EMA of y, extended incrementally: only epochs new since the last redraw are computed."""
        cached = self._ema_cache.get(key)
        if cached is None or cached[0] != weight or cached[1] != show_error or len(cached[2]) > len(y):
            cached = (weight, show_error, np.empty(0))
        done = cached[2]
        if len(done) < len(y):
            if len(done):  # continue from the last smoothed value
                head = ema(np.concatenate([[done[-1]], y[len(done) :]]), weight)[1:]
            else:
                head = ema(y, weight)
            done = np.concatenate([done, head])
        self._ema_cache[key] = (weight, show_error, done)
        return done

    def _grad_matrix(self, n_layers: int) -> np.ndarray:
        """(n_epochs, n_layers) gradient norms, converting only rows new since the last redraw."""
        rows = self._grad_hist
        have = self._grad_array
        if have.shape[1] != n_layers or have.shape[0] > len(rows):
            have = np.empty((0, n_layers))
        if have.shape[0] < len(rows):
            new = np.full((len(rows) - have.shape[0], n_layers), math.nan)
            for r, row in enumerate(rows[have.shape[0] :]):
                new[r, : len(row)] = row[:n_layers]
            have = np.concatenate([have, new])
        self._grad_array = have
        return have

    def _draw_markers(self, index: int) -> None:
        """Best-epoch and early-stop markers of one plot (0 loss, 1 accuracy, 2 weight, 3 grad)."""
        best = self._best_epoch
        stop = self.stop_marker_epoch()
        star = None
        if best is not None and best in self._epochs and index < 2:
            i = self._epochs.index(best)
            if index == 0:
                dev_loss = self._hist["dev_loss"][i]
                star = math.log10(dev_loss) if self.log_check.isChecked() and dev_loss > 0 else dev_loss
            else:
                star = self._hist["dev_acc"][i]
                if self.error_check.isChecked():
                    star = 1.0 - star
        shown = (best if best in self._epochs else None, star, stop)
        if self._marker_state.get(index) == shown:
            return  # unchanged: touching the items would still re-layout and repaint them
        self._marker_state[index] = shown
        if shown[0] is not None:
            self._best_lines[index].setValue(best)
            self._best_lines[index].setVisible(True)
            if index < 2:
                self._best_symbols[index].setData([best], [star])
        line = self._stop_lines[index]
        if stop is not None:
            line.setValue(stop)
        line.setVisible(stop is not None)

    def _on_smoothing_changed(self, value: int) -> None:
        self.smoothing_label.setText(f"smoothing {value / 100:.2f}")
        self._redraw()

    def _on_log_toggled(self, checked: bool) -> None:
        self.loss_plot.getPlotItem().setLogMode(y=checked)  # this re-enables auto-range
        if "loss" in self._managed:  # live: keep following the data, now in log10 units
            self.loss_plot.getPlotItem().getViewBox().disableAutoRange()
            self._ranges.pop("loss", None)
        self._redraw()

    def _on_error_toggled(self, checked: bool) -> None:
        self.acc_plot.getPlotItem().setTitle("Error (1 − accuracy)" if checked else "Accuracy")
        self.acc_plot.getPlotItem().setLabel("left", "error" if checked else "accuracy")
        for ov in self._overlays.values():
            self._draw_overlay(ov)
        self._redraw()

    # ------------------------------------------------------------ hover
    def nearest_epoch(self, x: float) -> int | None:
        if not self._epochs:
            return None
        arr = np.asarray(self._epochs, dtype=float)
        return int(self._epochs[int(np.argmin(np.abs(arr - x)))])

    def hover_text(self, epoch: int) -> str:
        """Exact values at one epoch of the live run, e.g. for the crosshair label."""
        if epoch not in self._epochs:
            return ""
        i = self._epochs.index(epoch)
        h = self._hist
        parts = [
            f"epoch {epoch}",
            f"train loss {_fmt(h['train_loss'][i])}",
            f"dev loss {_fmt(h['dev_loss'][i])}",
            f"train acc {_fmt(h['train_acc'][i])}",
            f"dev acc {_fmt(h['dev_acc'][i])}",
            f"‖W‖ {_fmt(h['weight_norm'][i])}",
        ]
        grads = self._grad_raw[i]
        if grads:
            parts.append("‖dW‖ " + ", ".join(_fmt(g) for g in grads))
        return "   ".join(parts)

    def _on_plot_mouse_moved(self, plot: pg.PlotWidget, event: Any) -> None:
        pos = event[0]
        vb = plot.getPlotItem().getViewBox()
        if not plot.sceneBoundingRect().contains(pos):
            return
        x = vb.mapSceneToView(pos).x()
        self.show_hover(x)

    def show_hover(self, x: float) -> None:
        epoch = self.nearest_epoch(x)
        if epoch is None:
            return
        if epoch != self._hover_epoch or not self._cross_lines[0].isVisible():
            self._hover_epoch = epoch  # a new epoch: move the crosshairs (repaints four plots)
            for line in self._cross_lines:
                line.setValue(epoch)
                line.setVisible(True)
        self.hover_label.setText(self.hover_text(epoch))


def _prepare_axis_picture(plot_item: pg.PlotItem) -> None:
    """Build the left axis picture now, as AxisItem.paint would, so that labels needing a
    wider axis re-lay the plot out before its paint, not after it (two more paints)."""
    axis = plot_item.getAxis("left")
    width = getattr(axis, "textWidth", None)
    if width is None:  # not the pyqtgraph AxisItem this mirrors: let the paint build it
        return
    specs = None
    picture = QPicture()
    painter = QPainter(picture)
    try:
        if axis.style["tickFont"]:
            painter.setFont(axis.style["tickFont"])
        specs = axis.generateDrawSpecs(painter)
        if specs is not None:
            axis.drawPicture(painter, *specs)
    finally:
        painter.end()
    if specs is None:  # not laid out / not on screen yet: leave it to the paint
        return
    if axis.textWidth == width:
        axis.picture = picture
    else:  # resize the axis and view box now; the paint draws the axis at its new size
        plot_item.layout.activate()


def _same_range(target: list, ranges: tuple) -> bool:
    """A ViewBox's targetRange still equals the ranges the view set (up to rounding)."""
    for (a0, a1), (b0, b1) in zip(target, ranges):
        tol = 1e-9 * max(1.0, abs(b1 - b0))
        if abs(a0 - b0) > tol or abs(a1 - b1) > tol:
            return False
    return True


class _DictRecord:
    """Adapter so a metrics.jsonl dict can be fed to add_record like an EpochRecord."""

    def __init__(self, m: dict):
        self._m = m

    def __getattr__(self, name: str) -> Any:
        if name == "grad_norms":
            return tuple(self._m.get("grad_norms") or ())
        if name in ("best_epoch", "stop_reason", "message"):
            return self._m.get(name)
        return self._m.get(name)
