"""Depth lab: activation std and gradient norm through a deep, untrained network, by layer.

The numbers come from :class:`engine.insight.depthlab.DepthLab`: one instance per (depth,
width, activation, init), whose ``profile(scale)`` reruns one forward and backward pass with
the weights rescaled (~20 ms for depth 50 × width 100). Moving the scale slider submits a
profile to a :class:`gui.views.latest_runner.LatestRunner`: it runs off the GUI thread, and
moves made while one runs are coalesced into the newest, so the curves are never more than
one computation behind the slider.

For a linear activation each hidden layer multiplies the activations' std (and, going back,
the gradient norm) by ``scale · √(width · var)`` (var: the initializer's variance), drawn as
dashed theory lines: 1.5^L explodes, 0.5^L vanishes, Xavier/LeCun at scale 1 stay level.
"""

from __future__ import annotations

import math
import time
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QVBoxLayout, QWidget

from engine.activations import ACTIVATIONS
from engine.initializers import INIT_FORMULAS, init_variance
from engine.insight.depthlab import DEPTH_RANGE
from engine.insight.hints import depth_hint
from gui.panels.widgets import hint_label
from gui.views.insight_plots import (
    ACT_COLOR,
    GRAD_COLOR,
    THEORY_COLOR,
    caption,
    legend,
    make_plot,
    set_log_data,
    swatch,
)
from gui.views.latest_runner import LatestRunner

MAX_WIDTH = 256  # depth 100 × width 256: ~160 MB of float64 weights and a ~0.3 s pass
SCALE_STEPS = 100  # slider positions per unit of scale (0.01 steps)
MAX_SCALE = 3.0
# what the activation does to that factor, in words (the dashed theory lines are for linear)
ACTIVATION_NOTES = {
    "relu": "; a ReLU zeroes about half the values: ≈ factor/√2 = {half:.3g} per layer (He's 2/n_in "
    "makes up for it)",
    "leaky_relu": "; a leaky ReLU nearly zeroes half the values: ≈ factor/√2 = {half:.3g} per layer",
    "tanh": "; tanh ≈ linear while the values are small, then saturates (|tanh| < 1): its slope vanishes",
    "sigmoid": "; sigmoid's slope is at most 1/4 and its output is not centred: gradients shrink fast",
}
# A profile runs on the GUI thread while it measures under SYNC_LIMIT there (depth 50 × width 100:
# ~18 ms): in the worker thread the same profile was 4-5x slower, because every NumPy call hands
# the GIL to the GUI thread's painting and waits to get it back (measured: 25 ms alone, 124 ms in
# the worker while the plot painted; slider → redraw 32 ms against 135 ms). Larger networks, and
# this one on a machine too loaded to stay under the limit, go to the worker; after RETRY_SYNC
# worker runs the GUI thread is measured again.
SYNC_LIMIT = 0.030
SYNC_SAMPLES = 5  # profile times kept per network
SYNC_DECIDE = 3  # GUI-thread profiles measured before the worker can take over
RETRY_SYNC = 20
MIN_DECADES = 4.0  # the y axis spans at least this many powers of ten
DEFAULTS = {"depth": 50, "width": 100, "activation": "relu", "init": "he", "scale": 1.0}


class _Labs:
    """DepthLab instances by settings, built and used in the worker thread only (one job at a
    time), so a slider move costs one profile, not a new network."""

    def __init__(self, keep: int = 2):
        self._labs: dict[tuple, object] = {}
        self._keep = keep

    def has(self, settings: tuple) -> bool:
        return settings in self._labs

    def get(self, settings: tuple):
        from engine.insight.depthlab import DepthLab

        lab = self._labs.pop(settings, None)
        if lab is None:
            lab = DepthLab(*settings)
        self._labs[settings] = lab  # most recent last
        while len(self._labs) > self._keep:
            self._labs.pop(next(iter(self._labs)))
        return lab


class DepthLabView(QWidget):
    """A tool, not a view of the current run: it needs no data and no training.

    Signal drawn(settings) after each redraw (settings = (depth, width, activation, init, scale))."""

    drawn = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("depthLab")
        self.profile = None  # the DepthProfile drawn
        self.shown_settings: tuple | None = None  # (depth, width, activation, init, scale) drawn
        self.last_latency: float | None = None  # seconds from the control's change to the redraw
        self.latencies: list[float] = []
        self.redraw_count = 0
        self._changed_at: dict[tuple, float] = {}
        self._labs = _Labs()
        self._pending: tuple | None = None  # settings not computed yet (hidden view, or queued)
        # network -> the last few profile times on the GUI thread (their minimum is the cost: one
        # slow profile during a load spike must not send the lab to the slower worker path)
        self._sync_seconds: dict[tuple, deque] = {}
        self._worker_runs: dict[tuple, int] = {}
        self.sync_count = 0  # profiles computed on the GUI thread (the rest ran in the worker)
        self._coalesce = QTimer(self)  # 0 ms: runs once the queued slider moves are all read
        self._coalesce.setSingleShot(True)
        self._coalesce.setInterval(0)
        self._coalesce.timeout.connect(self._run_pending)
        self._runner = LatestRunner(self)
        self._runner.finished.connect(self._on_runner_finished)
        self._runner.errored.connect(self._on_runner_errored)

        self.depth_spin = QSpinBox()
        self.depth_spin.setObjectName("depthSpin")
        self.depth_spin.setRange(*DEPTH_RANGE)
        self.depth_spin.setValue(DEFAULTS["depth"])
        self.depth_spin.setToolTip("Hidden layers of the untrained network")
        self.width_spin = QSpinBox()
        self.width_spin.setObjectName("widthSpin")
        self.width_spin.setRange(1, MAX_WIDTH)
        self.width_spin.setValue(DEFAULTS["width"])
        self.width_spin.setToolTip("Units per hidden layer (and input features)")
        for spin in (self.depth_spin, self.width_spin):
            spin.setKeyboardTracking(False)
        self.activation_combo = QComboBox()
        self.activation_combo.setObjectName("depthActivationCombo")
        self.activation_combo.addItems(list(ACTIVATIONS))
        self.activation_combo.setCurrentText(DEFAULTS["activation"])
        self.init_combo = QComboBox()
        self.init_combo.setObjectName("depthInitCombo")
        self.init_combo.addItems(list(INIT_FORMULAS))
        self.init_combo.setCurrentText(DEFAULTS["init"])
        self.scale_slider = QSlider(Qt.Orientation.Horizontal)
        self.scale_slider.setObjectName("depthScaleSlider")
        self.scale_slider.setRange(0, int(MAX_SCALE * SCALE_STEPS))
        self.scale_slider.setSingleStep(1)
        self.scale_slider.setPageStep(10)
        self.scale_slider.setValue(int(DEFAULTS["scale"] * SCALE_STEPS))
        self.scale_slider.setMinimumWidth(160)
        self.scale_slider.setToolTip("init_scale: multiplies the initial weights' standard deviation")
        self.scale_label = QLabel()
        self.scale_label.setObjectName("depthScaleLabel")
        self.scale_label.setMinimumWidth(48)

        controls = QHBoxLayout()
        for text, w in (
            ("Depth", self.depth_spin),
            ("Width", self.width_spin),
            ("Activation", self.activation_combo),
            ("Init", self.init_combo),
        ):
            controls.addWidget(QLabel(text))
            controls.addWidget(w)
            controls.addSpacing(6)
        controls.addStretch(1)
        scale_row = QHBoxLayout()  # a row of its own: the slider is what the lab is about
        scale_row.addWidget(QLabel("Scale ×"))
        scale_row.addWidget(self.scale_slider, 1)
        scale_row.addWidget(self.scale_label)

        self.formula_label = hint_label(object_name="depthFormulaLabel")
        self.formula_label.setStyleSheet("font-family: monospace;")
        self.factor_label = hint_label(object_name="depthFactorLabel")
        self.hint_label = QLabel()
        self.hint_label.setObjectName("depthHintLabel")
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet("font-weight: bold;")
        self.legend_label = caption(object_name="depthLegend")

        self.plot = make_plot(
            "depthLabPlot",
            "",
            "layer (0 = input, last = output logits)",
            "std / norm (log)",
            log_y=True,
        )
        self.act_item = pg.PlotDataItem(
            pen=pg.mkPen(ACT_COLOR, width=2), symbol="o", symbolSize=5, symbolBrush=ACT_COLOR,
            symbolPen=None, connect="finite",
        )  # fmt: skip
        self.grad_item = pg.PlotDataItem(
            pen=pg.mkPen(GRAD_COLOR, width=2), symbol="s", symbolSize=5, symbolBrush=GRAD_COLOR,
            symbolPen=None, connect="finite",
        )  # fmt: skip
        dash = Qt.PenStyle.DashLine
        self.act_theory_item = pg.PlotDataItem(
            pen=pg.mkPen(ACT_COLOR, width=1.5, style=dash), connect="finite"
        )
        self.grad_theory_item = pg.PlotDataItem(
            pen=pg.mkPen(GRAD_COLOR, width=1.5, style=dash), connect="finite"
        )
        for item in (self.act_theory_item, self.grad_theory_item, self.act_item, self.grad_item):
            self.plot.addItem(item)
        self.level_line = pg.InfiniteLine(
            pos=0.0, angle=0, movable=False, pen=pg.mkPen(THEORY_COLOR, width=1, style=Qt.PenStyle.DotLine)
        )  # log10(1) = 0: "level" at 1
        self.plot.addItem(self.level_line, ignoreBounds=True)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(controls)
        lay.addLayout(scale_row)
        lay.addWidget(self.formula_label)
        lay.addWidget(self.factor_label)
        lay.addWidget(self.hint_label)
        lay.addWidget(self.legend_label)
        lay.addWidget(self.plot, 1)

        self.depth_spin.valueChanged.connect(self._on_control_changed)
        self.width_spin.valueChanged.connect(self._on_control_changed)
        self.activation_combo.currentTextChanged.connect(self._on_control_changed)
        self.init_combo.currentTextChanged.connect(self._on_control_changed)
        self.scale_slider.valueChanged.connect(self._on_control_changed)
        # antialiased curves take ~2.5x longer to paint (49 against 20 ms on the loaded build
        # machine): off while the slider is dragged, back on when it is let go
        self.scale_slider.sliderPressed.connect(lambda: self._set_antialias(False))
        self.scale_slider.sliderReleased.connect(lambda: self._set_antialias(True))
        self._on_control_changed()

    # ------------------------------------------------------------ controls
    def settings(self) -> tuple[int, int, str, str, float]:
        """(depth, width, activation, init, scale) as the controls show them."""
        return (
            self.depth_spin.value(),
            self.width_spin.value(),
            self.activation_combo.currentText(),
            self.init_combo.currentText(),
            self.scale_slider.value() / SCALE_STEPS,
        )

    def set_settings(self, depth=None, width=None, activation=None, init=None, scale=None) -> None:
        """Set controls (lessons, tests); each change recomputes."""
        if depth is not None:
            self.depth_spin.setValue(int(depth))
        if width is not None:
            self.width_spin.setValue(int(width))
        if activation is not None:
            self.activation_combo.setCurrentText(activation)
        if init is not None:
            self.init_combo.setCurrentText(init)
        if scale is not None:
            self.scale_slider.setValue(round(float(scale) * SCALE_STEPS))

    def apply_lesson_settings(self, settings) -> None:
        """The depth lesson's network (an :class:`engine.lessons.DepthLabSettings`): its depth,
        width and activation, the first of its initializations at the first of its scales; the
        user then moves the scale slider through the others."""
        self.set_settings(
            depth=settings.hidden_layers,
            width=settings.width,
            activation=settings.activation,
            init=settings.inits[0],
            scale=settings.scales[0],
        )

    def linear_factor(self) -> float:
        """scale · √(width · var): what each layer multiplies the std by in a linear network."""
        _, width, _, init, scale = self.settings()
        return scale * math.sqrt(width * init_variance(init, width, width))

    def _on_control_changed(self, *_args) -> None:
        depth, width, activation, init, scale = settings = self.settings()
        self.scale_label.setText(f"{scale:.2f}")
        if self.isVisible():
            self._changed_at[settings] = time.perf_counter()
        self.formula_label.setText(
            INIT_FORMULAS[init].replace("init_scale", f"{scale:g}") + f"   (n_in = {width})"
        )
        var = init_variance(init, width, width)
        self.factor_label.setText(
            f"Linear network: each layer multiplies the std by scale · √(width · var) = "
            f"{scale:g} · √({width} · {var:.4g}) = {self.linear_factor():.4g}"
            + ACTIVATION_NOTES.get(activation, "").format(half=self.linear_factor() / math.sqrt(2))
        )  # fmt: skip
        self._pending = settings
        if self.isVisible():  # hidden: computed when shown (a closed tab costs nothing)
            self._coalesce.start()

    def _run_pending(self) -> None:
        """Compute the newest settings once (every move since the last turn of the event loop
        collapses into this one): on the GUI thread while a profile of this network measures under
        SYNC_LIMIT there, else (and for a network not built yet) in the worker thread."""
        if self._pending is None:
            return
        settings, self._pending = self._pending, None
        self._changed_at.setdefault(settings, time.perf_counter())
        lab_key, scale = settings[:4], settings[4]
        if not self._runner.is_busy() and self._labs.has(lab_key) and self._sync_allowed(lab_key):
            from engine import blas

            t0 = time.perf_counter()
            with blas.limited(1):  # the worker is idle: no one else uses the lab now
                profile = self._labs.get(lab_key).profile(scale)
            self._sync_seconds.setdefault(lab_key, deque(maxlen=SYNC_SAMPLES)).append(
                time.perf_counter() - t0
            )
            self.sync_count += 1
            self._on_runner_finished(settings, profile)
            return
        labs = self._labs

        def compute(_ctx):
            from engine import blas

            with blas.limited(1):  # the other core is the training process's
                return labs.get(lab_key).profile(scale)

        self._worker_runs[lab_key] = self._worker_runs.get(lab_key, 0) + 1
        self._runner.submit(settings, compute)

    def _sync_allowed(self, lab_key: tuple) -> bool:
        times = self._sync_seconds.get(lab_key)
        cost = min(times) if times is not None and len(times) >= SYNC_DECIDE else None
        if cost is not None and cost >= SYNC_LIMIT and self._worker_runs.get(lab_key, 0) >= RETRY_SYNC:
            self._sync_seconds.pop(lab_key)  # the machine may be quieter now: measure again
            self._worker_runs[lab_key] = 0
            cost = None
        return SYNC_LIMIT > 0 and (cost is None or cost < SYNC_LIMIT)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._pending is not None:
            self._coalesce.start()

    def is_computing(self) -> bool:
        return self._pending is not None or self._runner.is_busy()

    def shutdown(self) -> None:
        self._coalesce.stop()
        self._runner.shutdown()

    # ------------------------------------------------------------ results
    def _on_runner_finished(self, settings: tuple, profile) -> None:
        self._draw(settings, profile)
        started = self._changed_at.pop(settings, None)
        # moves that were coalesced into a newer one are never drawn: forget them
        for key in [k for k, t in self._changed_at.items() if started is not None and t < started]:
            del self._changed_at[key]
        if started is not None:
            self.last_latency = time.perf_counter() - started
            self.latencies.append(self.last_latency)

    def _set_antialias(self, on: bool) -> None:
        for item in (self.act_item, self.grad_item, self.act_theory_item, self.grad_theory_item):
            if item.opts.get("antialias") != on:
                item.opts["antialias"] = on
                item.updateItems()

    def _fit_y(self, values: np.ndarray) -> None:
        """At least MIN_DECADES on the log axis, so a level profile looks level instead of its
        noise being stretched over the whole plot."""
        v = values[np.isfinite(values) & (values > 0)]
        if not len(v):
            return
        lo, hi = np.log10(v.min()), np.log10(v.max())
        if hi - lo < MIN_DECADES:
            mid = (lo + hi) / 2
            lo, hi = mid - MIN_DECADES / 2, mid + MIN_DECADES / 2
        self.plot.setYRange(lo, hi, padding=0.05)  # log10 units on a log axis

    def _on_runner_errored(self, settings: tuple, message: str) -> None:
        self._changed_at.pop(settings, None)
        self.hint_label.setText(f"Cannot compute this network: {message.splitlines()[0]}")

    def _draw(self, settings: tuple, profile) -> None:
        depth, width, activation, init, scale = settings
        x = np.arange(len(profile.layers), dtype=float)
        act = np.asarray(profile.activation_std, dtype=float)
        grad = np.asarray(profile.grad_norm, dtype=float)
        set_log_data(self.act_item, x, act)
        set_log_data(self.grad_item, x, grad)
        if activation == "linear":
            hidden = np.arange(depth + 1, dtype=float)  # the input and the hidden layers
            f = profile.factor
            set_log_data(self.act_theory_item, hidden, act[0] * f**hidden)
            set_log_data(self.grad_theory_item, hidden, grad[depth] * f ** (depth - hidden))
        else:
            self.act_theory_item.setData([], [])
            self.grad_theory_item.setData([], [])
        self.legend_label.setText(
            "<b>Untrained network, by layer</b>&nbsp;&nbsp;"
            + legend(
                swatch(ACT_COLOR, "activation std (forward)", "━●"),
                swatch(GRAD_COLOR, "gradient norm ‖dL/dA‖ (backward)", "━■"),
                swatch(THEORY_COLOR, "linear theory: × factor per layer", "╌╌")
                if activation == "linear"
                else swatch(THEORY_COLOR, "1 (level)", "┈┈"),
            )
        )
        self.hint_label.setText(depth_hint(profile.activation_std, profile.grad_norm))
        self._fit_y(np.concatenate([act, grad]))
        self.profile = profile
        self.shown_settings = settings
        self.redraw_count += 1
        self.drawn.emit(settings)
