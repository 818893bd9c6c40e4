"""Inside the network: per-layer activations and gradients of the current run on a fixed batch.

Where vanishing, exploding and dead units become visible. The numbers are
:func:`engine.insight.layers.layer_statistics` on the same 256 training samples
(:func:`engine.insight.layers.fixed_batch`, seed 0) every time:

- while the current run trains, the training process measures them at epoch ends (within 5 %
  of the training time) as long as this view is visible (``current_model.want(view,
  stats=True)``) and they arrive through ``CurrentModel.statsArrived``; the view keeps them
  per run, so the over-epoch plot keeps its history after the run ends;
- for a finished run, they are computed once from its final weights (the CurrentModel
  snapshot) in a :class:`gui.tasks.TaskRunner`.

Per layer: the activation distribution as bands (p5–p95, p25–p75, median, p1/p99 whiskers;
the output layer's logits in grey), the share of dead ReLUs or saturated tanh/sigmoid units,
and the activation std with the gradient norms on a log axis; over epochs: each layer's
activation std or gradient norm. A bold line says what the numbers mean
(:func:`engine.insight.hints.layers_hint`).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.insight.hints import layers_hint
from engine.insight.layers import PERCENTILES
from gui.views.curves_view import LAYER_COLORS
from gui.views.insight_plots import (
    ACT_COLOR,
    GRAD_COLOR,
    caption,
    legend,
    make_plot,
    set_log_data,
    swatch,
    titled,
)

REDRAW_MS = 100  # live statistics are drawn at most 10 times a second
KEEP_RUNS = 8  # live histories and final statistics kept for this many runs
BATCH = 256
OUTPUT_COLOR = "#7f7f7f"
DEAD_COLOR = "#d62728"
SATURATED_COLOR = "#ff7f0e"
EPOCH_SERIES = {
    "activation std": "act_std",
    "gradient norm ‖dL/dW‖": "weight_grad_norm",
    "dL/dZ std": "grad_std",
}
WGRAD_COLOR = "#8c564b"
_P = {f"p{p:g}": i for i, p in enumerate(PERCENTILES)}


def _percentile(stats: dict, name: str) -> float:
    p = stats["act_percentiles"]
    return float(p[name]) if isinstance(p, dict) else float(p[_P[name]])


def _bounded_put(d: OrderedDict, key, value) -> None:
    d[key] = value
    d.move_to_end(key)
    while len(d) > KEEP_RUNS:
        d.popitem(last=False)


class ActivationsView(QWidget):
    """Per-layer statistics of the session's current run (live epochs, or the final weights)."""

    def __init__(self, current_model, session, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("activationsView")
        self.current_model = current_model
        self.session = session
        self.live_history: OrderedDict[str, list[tuple[int, list[dict]]]] = OrderedDict()
        self.final_stats: OrderedDict[str, tuple[int | None, list[dict]]] = OrderedDict()
        self.shown: list[dict] | None = None  # the per-layer statistics drawn
        self.shown_key: str | None = None
        self.shown_what = ""  # "final" or "live"
        self.redraw_count = 0
        self._computing: str | None = None  # key whose final statistics are being computed
        self._errors: dict[str, str] = {}  # key -> why its statistics could not be computed
        from gui.tasks import TaskRunner

        self._runner = TaskRunner(self)
        self._runner.finished.connect(self._on_final_computed)
        self._runner.errored.connect(self._on_final_errored)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.refresh)

        self.source_label = QLabel()
        self.source_label.setObjectName("activationsSourceLabel")
        self.source_label.setWordWrap(True)
        self.hint_label = QLabel()
        self.hint_label.setObjectName("activationsHintLabel")
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet("font-weight: bold;")

        self.bands_plot = make_plot("activationBandsPlot", "", "", "value")  # the row below names the layers
        self.bands_caption = caption(
            "<b>Activations</b>&nbsp;&nbsp; "
            + legend(
                swatch("#9ecae1", "p5–p95", "█"),
                swatch("#3182bd", "p25–p75", "█"),
                swatch("#000000", "median", "━"),
                swatch("#888888", "p1–p99", "┬"),
                swatch(OUTPUT_COLOR, "output logits", "█"),
            )
        )
        self.outer_bars = pg.BarGraphItem(x=[], y0=[], y1=[], width=0.6, brush="#9ecae1", pen=None)
        self.inner_bars = pg.BarGraphItem(x=[], y0=[], y1=[], width=0.6, brush="#3182bd", pen=None)
        self.whiskers = pg.ErrorBarItem(
            x=np.zeros(0), y=np.zeros(0), pen=pg.mkPen("#888888", width=1), beam=0.2
        )
        self.medians = pg.ScatterPlotItem(
            symbol="_", size=20, pen=pg.mkPen(None), brush=pg.mkBrush("#000000")
        )
        for item in (self.whiskers, self.outer_bars, self.inner_bars, self.medians):
            self.bands_plot.addItem(item)
        self.bands_plot.addItem(pg.InfiniteLine(pos=0.0, angle=0, pen=pg.mkPen("#888888", width=1)))
        # the y range fits the hidden layers; the logits' band may go past it: say how far
        self.logits_note = pg.TextItem("", color="#444444", anchor=(0.5, 0.0))
        self.bands_plot.addItem(self.logits_note, ignoreBounds=True)

        self.dead_plot = make_plot("deadUnitsPlot", "", "", "% of units")
        self.dead_bars = pg.BarGraphItem(x=[], height=[], width=0.6, brush=DEAD_COLOR)
        self.dead_plot.addItem(self.dead_bars)
        self.dead_plot.setYRange(0, 100, padding=0.02)
        self.dead_plot.getPlotItem().getViewBox().setMouseEnabled(y=False)
        self.dead_note = pg.TextItem("", color="#888888", anchor=(0.5, 0.5))
        self.dead_plot.addItem(self.dead_note, ignoreBounds=True)

        self.scale_plot = make_plot("layerGradPlot", "", "layer", "log scale", log_y=True)
        self.scale_caption = caption(
            "<b>Scale per layer</b>&nbsp;&nbsp; "
            + legend(
                swatch(ACT_COLOR, "activation std", "━●"),
                swatch(GRAD_COLOR, "dL/dZ std", "━■"),
                swatch(WGRAD_COLOR, "‖dL/dW‖", "╍▲"),
            )
        )
        sym = {"symbolSize": 6, "symbolPen": None, "connect": "finite"}
        self.std_item = pg.PlotDataItem(
            pen=pg.mkPen(ACT_COLOR, width=2), symbol="o", symbolBrush=ACT_COLOR, **sym
        )
        self.grad_item = pg.PlotDataItem(
            pen=pg.mkPen(GRAD_COLOR, width=2), symbol="s", symbolBrush=GRAD_COLOR, **sym
        )
        self.wgrad_item = pg.PlotDataItem(
            pen=pg.mkPen(WGRAD_COLOR, width=1.5, style=Qt.PenStyle.DashLine), symbol="t",
            symbolBrush=WGRAD_COLOR, **sym,
        )  # fmt: skip
        for item in (self.std_item, self.grad_item, self.wgrad_item):
            self.scale_plot.addItem(item)

        self.epoch_plot = make_plot("layerEpochPlot", "", "epoch", "log scale", log_y=True)
        self.epoch_combo = QComboBox()
        self.epoch_combo.setObjectName("layerEpochCombo")
        self.epoch_combo.addItems(list(EPOCH_SERIES))
        self.epoch_combo.setToolTip(
            "What the over-epochs plot shows for each layer (recorded while a run trains with this view open)"
        )
        self.epoch_combo.currentTextChanged.connect(lambda _t: self.refresh())
        self._epoch_items: list[pg.PlotDataItem] = []
        self.epoch_note = pg.TextItem("", color="#888888", anchor=(0.5, 0.5))
        self.epoch_plot.addItem(self.epoch_note, ignoreBounds=True)

        plots = QWidget()
        grid = QGridLayout(plots)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        self.dead_caption = caption("<b>Dead / saturated units</b>")
        self.epoch_caption = caption("<b>Over epochs</b>")
        for row, col, cap, plot in (
            (0, 0, self.bands_caption, self.bands_plot),
            (0, 1, self.dead_caption, self.dead_plot),
            (1, 0, self.scale_caption, self.scale_plot),
            (1, 1, self.epoch_caption, self.epoch_plot),
        ):
            grid.addWidget(titled(cap, plot), row, col)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)

        self.message_label = QLabel()
        self.message_label.setObjectName("activationsMessage")
        self.message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message_label.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message_label)
        self.stack.addWidget(plots)

        head = QHBoxLayout()
        head.addWidget(self.source_label, 1)
        head.addWidget(QLabel("Over epochs:"))
        head.addWidget(self.epoch_combo)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(head)
        lay.addWidget(self.hint_label)
        lay.addWidget(self.stack, 1)

        current_model.statsArrived.connect(self._on_stats_arrived)
        current_model.changed.connect(self._on_model_changed)
        session.currentChanged.connect(lambda _key: self.refresh())
        session.history.subscribe(self._on_history_event)
        self.refresh()

    # ------------------------------------------------------------ visibility: live statistics only while seen
    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self.current_model.want(self, weights=False, stats=True)
        self._on_model_changed()

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().hideEvent(event)
        self.current_model.want(self, weights=False, stats=False)

    def shutdown(self) -> None:
        self._timer.stop()
        self._runner.shutdown()

    # ------------------------------------------------------------ inputs
    def _on_history_event(self, event: str, key: str) -> None:
        if event == "removed":
            self.live_history.pop(key, None)
            self.final_stats.pop(key, None)
            self._errors.pop(key, None)

    def _on_stats_arrived(self, key: str, epoch: int, stats: list) -> None:
        if key not in self.session.history:
            return
        hist = self.live_history.get(key)
        if hist is None:
            hist = []
            _bounded_put(self.live_history, key, hist)
        if hist and hist[-1][0] == epoch:
            hist[-1] = (epoch, stats)
        else:
            hist.append((epoch, stats))
        if key == self.session.current_key and not self._timer.isActive():
            self._timer.start()

    def _on_model_changed(self) -> None:
        """A finished run's model is available: compute its statistics once (off the GUI thread)."""
        snap = self.current_model.snapshot()
        if snap is None or snap.live or snap.key != self.session.current_key:
            self.refresh()
            return
        if (
            snap.key in self.final_stats
            or snap.key in self._errors
            or self._computing == snap.key
            or not self.isVisible()
        ):
            self.refresh()
            return
        if snap.data is None or len(snap.data.train) == 0:
            self.refresh()
            return
        self._computing = snap.key
        train = snap.data.train

        def compute(_ctx):
            from engine import blas
            from engine.insight.layers import fixed_batch, layer_statistics

            with blas.limited(1):
                X, y = fixed_batch(
                    train, train.y, snap.norm_mean, snap.norm_std, n=BATCH, dtype=snap.net.dtype
                )
                return snap.key, snap.epoch, [s.to_dict() for s in layer_statistics(snap.net, X, y)]

        self._runner.start(compute)
        self.refresh()

    def _on_final_computed(self, result) -> None:
        key, epoch, stats = result
        self._computing = None
        _bounded_put(self.final_stats, key, (epoch, stats))
        self.refresh()
        self._on_model_changed()  # the current run may have changed meanwhile

    def _on_final_errored(self, message: str) -> None:
        if self._computing is not None:
            self._errors[self._computing] = message.splitlines()[0]
        self._computing = None
        self.refresh()

    def is_computing(self) -> bool:
        return self._computing is not None

    # ------------------------------------------------------------ drawing
    def refresh(self) -> None:
        """Show the current run's newest statistics: its final weights' once they are known,
        else the latest live epoch's."""
        self._timer.stop()
        key = self.session.current_key
        run = self.session.current()
        history = self.live_history.get(key, []) if key else []
        final = self.final_stats.get(key) if key else None
        if run is None:
            return self._show_message("Train a run (or select one) to see inside the network.")
        if final is not None and not run.live:
            epoch, stats = final
            when = f"final weights (epoch {epoch})" if epoch else "final weights"
            self._draw(key, stats, "final", f"“{run.name}”: {when}, on {BATCH} fixed training samples")
        elif history:
            epoch, stats = history[-1]
            state = "training" if run.live else "last epoch seen"
            source = f"“{run.name}”: {state}, epoch {epoch}, on {BATCH} fixed training samples"
            self._draw(key, stats, "live", source)
        elif run.live:
            return self._show_message(
                "Waiting for the first layer statistics of the live run (measured at epoch ends, "
                "at most 5 % of the training time)…"
            )
        else:
            snap = self.current_model.snapshot()
            loading = (snap is None or snap.key != key) and self.current_model.error is None
            why = self._errors.get(key) or self.current_model.error
            if snap is not None and snap.key == key and snap.data is None:
                why = "its training data are not available"
            if why is None and (loading or self._computing == key or self.isVisible()):
                return self._show_message("Computing the layer statistics of the final weights…")
            why = f": {why}" if why else "."
            return self._show_message(f"No layer statistics for “{run.name}”{why}")
        self._draw_epochs(history)

    def _show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.source_label.setText("")
        self.hint_label.setText("")
        self.stack.setCurrentIndex(0)
        self.shown = None
        self.shown_key = None

    def _draw(self, key: str, stats: list[dict], what: str, source: str) -> None:
        self.stack.setCurrentIndex(1)
        self.source_label.setText(source)
        self.hint_label.setText(layers_hint(stats))
        L = len(stats)
        x = np.arange(1, L + 1, dtype=float)
        ticks = [(i + 1, "out" if i == L - 1 else str(i + 1)) for i in range(L)]
        for plot in (self.bands_plot, self.dead_plot, self.scale_plot):
            plot.getPlotItem().getAxis("bottom").setTicks([ticks])
            plot.setXRange(0.4, L + 0.6, padding=0)
        # a diverged layer (NaN, ∞) is drawn as nothing at 0; the hint line names it
        p = {
            name: np.nan_to_num(
                np.array([_percentile(s, name) for s in stats]), nan=0.0, posinf=0.0, neginf=0.0
            )
            for name in _P
        }
        out = L - 1
        outer = [pg.mkBrush("#9ecae1")] * L
        inner = [pg.mkBrush("#3182bd")] * L
        outer[out], inner[out] = pg.mkBrush("#d9d9d9"), pg.mkBrush(OUTPUT_COLOR)
        none = [pg.mkPen(None)] * L
        self.outer_bars.setOpts(x=x, y0=p["p5"], y1=p["p95"], width=0.6, brushes=outer, pens=none)
        self.inner_bars.setOpts(x=x, y0=p["p25"], y1=p["p75"], width=0.6, brushes=inner, pens=none)
        self.medians.setData(x=x, y=p["p50"])
        mid = (p["p1"] + p["p99"]) / 2
        self.whiskers.setData(x=x, y=mid, top=p["p99"] - mid, bottom=mid - p["p1"])
        # the range fits the hidden layers: trained logits spread much wider and would flatten them
        rows = slice(0, L - 1) if L > 1 else slice(0, L)
        finite = np.concatenate([p["p1"][rows], p["p99"][rows]])
        finite = finite[np.isfinite(finite)]
        self.logits_note.setText("")
        if len(finite):
            lo, hi = min(finite.min(), 0.0), max(finite.max(), 0.0)
            self.bands_plot.setYRange(lo, hi, padding=0.05)
            if L > 1:
                pad = 0.05 * (hi - lo)  # what padding=0.05 adds on each side
                beyond = [f"p99 {p['p99'][out]:.3g}"] if p["p99"][out] > hi + pad else []
                beyond += [f"p1 {p['p1'][out]:.3g}"] if p["p1"][out] < lo - pad else []
                if beyond:
                    self.logits_note.setText("logits beyond the axis:\n" + ", ".join(beyond))
                    self.logits_note.setPos(L, hi + pad)

        hidden = stats[:-1]
        dead = [s.get("dead_share") for s in hidden]
        sat = [s.get("saturated_share") for s in hidden]
        share, color, title = None, DEAD_COLOR, "Dead / saturated units per layer"
        if any(d is not None for d in dead):
            share, title = dead, "Dead ReLUs (never active on the batch)"
        elif any(s is not None for s in sat):
            share, color, title = sat, SATURATED_COLOR, "Saturated values (f′ < 5 % of its max)"
        self.dead_caption.setText(f"<b>{title}</b>")
        if share is None:
            self.dead_bars.setOpts(x=[], height=[], brush=color)
            self.dead_note.setText(
                "no hidden layer" if not hidden else "linear units: none can die or saturate"
            )
        else:
            self.dead_bars.setOpts(
                x=x[:-1], height=100 * np.array(share, dtype=float), width=0.6, brush=color
            )
            self.dead_note.setText("")
        self.dead_note.setPos((L + 1) / 2, 50)

        set_log_data(self.std_item, x, [s["act_std"] for s in stats])
        set_log_data(self.grad_item, x, [s["grad_std"] for s in stats])
        set_log_data(self.wgrad_item, x, [s["weight_grad_norm"] for s in stats])

        self.shown = stats
        self.shown_key = key
        self.shown_what = what
        self.redraw_count += 1

    def _draw_epochs(self, history: list[tuple[int, list[dict]]]) -> None:
        field = EPOCH_SERIES[self.epoch_combo.currentText()]
        L = len(history[-1][1]) if history else 0
        while len(self._epoch_items) > L:
            self.epoch_plot.removeItem(self._epoch_items.pop())
        while len(self._epoch_items) < L:
            i = len(self._epoch_items)
            item = pg.PlotDataItem(
                pen=pg.mkPen(LAYER_COLORS[i % len(LAYER_COLORS)], width=2), connect="finite"
            )
            self.epoch_plot.addItem(item)
            self._epoch_items.append(item)
        rows = [(e, s) for e, s in history if len(s) == L]
        epochs = np.array([e for e, _ in rows], dtype=float)
        for i, item in enumerate(self._epoch_items):
            set_log_data(item, epochs, [s[i][field] for _, s in rows])
        layers = " ".join(
            f"<span style='color:{LAYER_COLORS[i % len(LAYER_COLORS)]}'>"
            f"━{'out' if i == L - 1 else i + 1}</span>"
            for i in range(L)
        )
        self.epoch_caption.setText(f"<b>{self.epoch_combo.currentText()} over epochs</b>&nbsp;&nbsp;{layers}")
        self.epoch_note.setText(
            "" if rows else "Statistics per epoch are recorded\nwhile a run trains with this tab open."
        )
        if not rows:
            vb = self.epoch_plot.getPlotItem().getViewBox()
            (x0, x1), (y0, y1) = vb.viewRange()
            self.epoch_note.setPos((x0 + x1) / 2, (y0 + y1) / 2)

    def epoch_series(self, layer: int, field: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) drawn for a layer (0-based) on the over-epochs plot; values as drawn
        (log10 on the log axis)."""
        saved = self.epoch_combo.currentText()
        name = next(k for k, v in EPOCH_SERIES.items() if v == field)
        if saved != name:
            self.epoch_combo.setCurrentText(name)
        x, y = self._epoch_items[layer].getData()
        return np.asarray(x), np.asarray(y)
