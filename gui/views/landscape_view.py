"""Loss landscape: the dev and train loss along random filter-normalized directions (Li et al., 2018).

For the session's current run (bold, dev solid in orange and train dashed in blue, as on the
curves) and every other shown run (ticked Show box; in its runs-table colour), the loss
around the trained weights along ``directions`` random filter-normalized directions, averaged
(:func:`engine.insight.landscape.loss_slice_1d`). Each run is measured with its own
normalization (:func:`engine.insight.landscape.eval_sets` with that model's ``norm_mean`` /
``norm_std``) on its own data. L2 and dropout tend to give wider, flatter minima: under the
plot each run's sharpness is the width in α where its dev loss stays within 0.1 of its value
at the trained weights (:func:`engine.insight.landscape.rise_width`). Optionally the 2-D
slice of the current run's dev loss as a heat map with contour lines.

Nothing is recomputed live: the Compute button starts a :class:`gui.tasks.TaskRunner` with
progress and cancel (a second press cancels). At α = 0 the dev curve is exactly the run's
evaluated dev loss.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.insight.landscape import DIRECTIONS_RANGE
from gui.panels.widgets import hint_label
from gui.tasks import TaskRunner
from gui.views.curves_view import DEV_COLOR, TRAIN_COLOR
from gui.views.insight_plots import caption, contour_segments, legend, make_plot, swatch

RISE = 0.1  # sharpness: width where the loss stays within this of its centre value
TRAIN_MAX = 5000  # training samples evaluated per point (a seeded subset of larger sets)
SEED = 0
PROGRESS_EVERY = 0.05  # seconds between progress signals from the worker


@dataclasses.dataclass(frozen=True)
class RunSlice:
    """One run's 1-D slice: slice (Slice1D), its sharpness per set, and how to draw it."""

    key: str
    name: str
    color: str
    current: bool
    slice: object  # engine.insight.landscape.Slice1D
    width: dict  # set name -> rise width (None: wider than the slice)
    n: dict  # set name -> samples evaluated


def _data_key(cfg) -> str:
    """The data a run was trained on, without its normalization (each model brings its own)."""
    d = cfg.to_dict()["data"]
    d.pop("normalize", None)
    return json.dumps(d, sort_keys=True)


class LandscapeView(QWidget):
    """The loss landscape of the current run and the other shown runs, computed on request."""

    def __init__(self, current_model, session, runs_model, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("landscapePlot")
        self.current_model = current_model
        self.session = session
        self.runs_model = runs_model
        self.results: list[RunSlice] = []  # what is drawn (current run first)
        self.slice_2d = None
        self.skipped: list[str] = []
        self.result_key: str | None = None  # the current run the results belong to
        self._items: list[pg.PlotDataItem] = []
        self._data_cache: dict[str, object] = {}
        self._runner = TaskRunner(self)
        self._runner.progressed.connect(self._on_progress)
        self._runner.finished.connect(self._on_computed)
        self._runner.errored.connect(self._on_errored)
        self._runner.aborted.connect(self._on_aborted)

        self.span_spin = QDoubleSpinBox()
        self.span_spin.setObjectName("landscapeSpanSpin")
        self.span_spin.setRange(0.05, 5.0)
        self.span_spin.setSingleStep(0.25)
        self.span_spin.setValue(1.0)
        self.span_spin.setToolTip("α runs from −span to +span (1 = a step as long as each unit's weights)")
        self.points_spin = QSpinBox()
        self.points_spin.setObjectName("landscapePointsSpin")
        self.points_spin.setRange(5, 101)
        self.points_spin.setSingleStep(2)
        self.points_spin.setValue(21)
        self.points_spin.setToolTip("Points along each direction (odd, so α = 0 is one of them)")
        self.points_spin.editingFinished.connect(self._make_points_odd)
        self.directions_spin = QSpinBox()
        self.directions_spin.setObjectName("landscapeDirectionsSpin")
        self.directions_spin.setRange(DIRECTIONS_RANGE[0], min(DIRECTIONS_RANGE[1], 20))
        self.directions_spin.setValue(3)
        self.directions_spin.setToolTip("Random directions averaged")
        self.two_d_check = QCheckBox("2-D slice (dev)")
        self.two_d_check.setObjectName("landscape2dCheck")
        self.two_d_check.setToolTip("Also the current run's dev loss over a plane of two directions")
        self.button = QPushButton("Compute")
        self.button.setObjectName("landscapeButton")
        self.button.clicked.connect(self._on_button_clicked)
        self.progress = QProgressBar()
        self.progress.setObjectName("landscapeProgress")
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        controls = QHBoxLayout()
        for text, w in (
            ("Span ±", self.span_spin),
            ("Points", self.points_spin),
            ("Directions", self.directions_spin),
        ):
            controls.addWidget(QLabel(text))
            controls.addWidget(w)
            controls.addSpacing(6)
        controls.addWidget(self.two_d_check)
        controls.addStretch(1)
        controls.addWidget(self.progress)
        controls.addWidget(self.button)

        self.message_label = hint_label(object_name="landscapeMessage")
        self.message_label.setStyleSheet("")
        self.legend_label = caption(object_name="landscapeLegend")
        self.sharpness_label = caption(object_name="landscapeSharpnessLabel")
        self.sharpness_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.plot = make_plot(
            "landscapeSlicePlot", "", "α (step along a random filter-normalized direction d)", "loss"
        )
        self.centre_line = pg.InfiniteLine(pos=0.0, angle=90, pen=pg.mkPen("#888888", width=1))
        self.plot.addItem(self.centre_line, ignoreBounds=True)
        self.plot_2d = make_plot("landscape2dPlot", "", "α (d₁)", "β (d₂)")
        self.image_2d = pg.ImageItem()
        self.contours_2d = pg.PlotDataItem(pen=pg.mkPen("#ffffff", width=1), connect="finite")
        self.plot_2d.addItem(self.image_2d)
        self.plot_2d.addItem(self.contours_2d)
        self.plot_2d.addItem(
            pg.ScatterPlotItem([0.0], [0.0], symbol="+", size=12, pen=pg.mkPen("#ffffff", width=2))
        )
        self.plot_2d.getPlotItem().setAspectLocked(True)
        self.panel_2d = QWidget()
        box = QVBoxLayout(self.panel_2d)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(caption("<b>Current run's dev loss over two directions</b> (dark = low, + = trained)"))
        box.addWidget(self.plot_2d, 1)
        self.panel_2d.setVisible(False)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.plot)
        self.splitter.addWidget(self.panel_2d)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(controls)
        lay.addWidget(self.message_label)
        lay.addWidget(self.legend_label)
        lay.addWidget(self.splitter, 1)
        lay.addWidget(self.sharpness_label)

        session.currentChanged.connect(self._on_current_changed)
        session.stateChanged.connect(lambda _s: self._update_state())
        session.runFinished.connect(lambda _k: self._update_state())
        current_model.changed.connect(self._update_state)
        self._on_current_changed(session.current_key or "")

    # ------------------------------------------------------------ state
    def _make_points_odd(self) -> None:
        if self.points_spin.value() % 2 == 0:
            self.points_spin.setValue(self.points_spin.value() + 1)

    def is_computing(self) -> bool:
        return self._runner.is_running()

    def shutdown(self) -> None:
        self._runner.shutdown()

    def _ready_snapshot(self):
        """The current run's snapshot when its landscape can be computed, else None."""
        snap = self.current_model.snapshot()
        key = self.session.current_key
        if snap is None or snap.live or snap.key != key or snap.data is None:
            return None
        return snap

    def compared_runs(self) -> list:
        """Other runs with their Show box ticked that have a saved model."""
        key = self.session.current_key
        return [
            r
            for r in self.session.history.runs()
            if r.key != key and not r.hidden and not r.live and r.summary is not None
            and (r.path / "model.npz").is_file()
        ]  # fmt: skip

    def _on_current_changed(self, key: str) -> None:
        if key != self.result_key:
            self._runner.cancel()
            self._clear()
        self._update_state()

    def _update_state(self) -> None:
        run = self.session.current()
        busy = self._runner.is_running()
        self.button.setText("Cancel" if busy else "Compute")
        if busy:
            self.button.setEnabled(True)
            return
        snap = self._ready_snapshot()
        self.button.setEnabled(snap is not None)
        if self.results and self.result_key == self.session.current_key:
            self.message_label.setVisible(bool(self.skipped))
            self.message_label.setText("Not drawn: " + "; ".join(self.skipped) if self.skipped else "")
            return
        self.message_label.setVisible(True)
        if run is None:
            text = "Train a run (or select one) to see the loss landscape around its trained weights."
        elif run.live:
            text = (
                "The landscape is measured around a finished run's weights: wait for the run to end "
                "(or stop it)."
            )
        elif snap is None:
            text = self.current_model.error or "Loading the run's model and data…"
        else:
            n = len(self.compared_runs())
            others = f" and the {n} other shown run{'s' if n != 1 else ''}" if n else ""
            text = (
                f"Press Compute to draw the loss around the trained weights of “{run.name}”{others} "
                f"({self.directions_spin.value()} directions × {self.points_spin.value()} points)."
            )
        self.message_label.setText(text)

    def _clear(self) -> None:
        for item in self._items:
            self.plot.removeItem(item)
        self._items = []
        self.results = []
        self.slice_2d = None
        self.skipped = []
        self.result_key = None
        self.legend_label.setText("")
        self.sharpness_label.setText("")
        self.panel_2d.setVisible(False)

    # ------------------------------------------------------------ computing
    def _on_button_clicked(self) -> None:
        if self._runner.is_running():
            self._runner.cancel()
            self._on_aborted()
            return
        self.compute()

    def compute(self) -> bool:
        """Start computing the landscape of the current run and the other shown runs."""
        snap = self._ready_snapshot()
        if snap is None:
            return False
        self._make_points_odd()
        points, span = self.points_spin.value(), self.span_spin.value()
        n_dir, two_d = self.directions_spin.value(), self.two_d_check.isChecked()
        current_run = self.session.current()
        jobs = [(snap.key, current_run.name, "", True, None)]
        for r in self.compared_runs():
            jobs.append((r.key, r.name, self.runs_model.color(r.key), False, r.config))
        # prepared data by data settings: kept only for the runs of this computation (a running
        # job is the only writer; a new one starts after the old is cancelled)
        wanted = {_data_key(snap.config)} | {_data_key(cfg) for *_, cfg in jobs if cfg is not None}
        cache = {k: v for k, v in self._data_cache.items() if k in wanted}
        cache[_data_key(snap.config)] = snap.data
        self._data_cache = cache

        def job(ctx):
            from engine import blas
            from engine.errors import InputError
            from engine.insight.landscape import eval_sets, loss_slice_1d, loss_slice_2d, rise_width
            from engine.prepare import prepare_data
            from engine.runs import load_model

            total = len(jobs) * points * n_dir * 2 + (points * points if two_d else 0)
            offset = [0]
            last = [0.0]

            def progress(done, _total):
                import time

                now = time.monotonic()
                if now - last[0] >= PROGRESS_EVERY:
                    last[0] = now
                    ctx.progress((offset[0] + done, total))

            out, skipped, s2 = [], [], None
            with blas.limited(1):
                for key, name, color, current, cfg in jobs:
                    try:
                        if current:
                            net, mean, std, data, dtype = (
                                snap.net,
                                snap.norm_mean,
                                snap.norm_std,
                                snap.data,
                                snap.config.training.dtype,
                            )
                        else:
                            model = load_model(f"{key}/model.npz")
                            net, mean, std = model.net, model.norm_mean, model.norm_std
                            dtype = cfg.training.dtype
                            data = cache.get(_data_key(cfg))
                            if data is None:
                                data = prepare_data(cfg, cancel=ctx.cancelled)
                                cache[_data_key(cfg)] = data
                        sets = eval_sets(data, mean, std, dtype, names=("dev",))
                        sets.update(
                            eval_sets(data, mean, std, dtype, names=("train",), max_samples=TRAIN_MAX)
                        )
                    except InputError as exc:  # a compared run's model or data cannot be read
                        if current:
                            raise
                        skipped.append(f"“{name}”: {exc}")
                        offset[0] += points * n_dir * 2
                        continue
                    sl = loss_slice_1d(
                        net, sets, points, span, n_dir, seed=SEED, progress=progress, cancel=ctx.cancelled
                    )
                    offset[0] += points * n_dir * 2
                    widths = {k: rise_width(sl.alphas, v, RISE) for k, v in sl.loss.items()}
                    n = {k: len(v) for k, v in sets.items()}
                    out.append(RunSlice(key, name, color, current, sl, widths, n))
                    if current and two_d and "dev" in sets:
                        s2 = loss_slice_2d(
                            net, sets["dev"], points, span, seed=SEED, progress=progress, cancel=ctx.cancelled
                        )
                        offset[0] += points * points
            return snap.key, out, skipped, s2

        self._clear()
        self.result_key = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self._runner.start(job)
        self.message_label.setText("Computing the loss landscape…")
        self._update_state()
        return True

    def _on_progress(self, value) -> None:
        done, total = value
        self.progress.setRange(0, int(total))
        self.progress.setValue(int(done))

    def _on_aborted(self) -> None:
        self.progress.setVisible(False)
        self._update_state()

    def _on_errored(self, message: str) -> None:
        self.progress.setVisible(False)
        self._update_state()
        self.message_label.setVisible(True)
        self.message_label.setText(f"Cannot compute the landscape: {message.splitlines()[0]}")

    def _on_computed(self, result) -> None:
        key, slices, skipped, s2 = result
        self.progress.setVisible(False)
        if key != self.session.current_key:
            self._update_state()
            return
        self._draw(key, slices, skipped, s2)
        self._update_state()

    # ------------------------------------------------------------ drawing
    def _draw(self, key: str, slices: list[RunSlice], skipped: list[str], s2) -> None:
        self._clear()
        self.result_key, self.results, self.skipped, self.slice_2d = key, slices, skipped, s2
        dash = Qt.PenStyle.DashLine
        legend_parts, notes = [], []
        # other runs first, so the current run's bold curves are drawn on top
        for rs in sorted(slices, key=lambda r: r.current):
            for set_name in ("train", "dev"):
                if set_name not in rs.slice.loss:
                    continue
                if rs.current:
                    color = DEV_COLOR if set_name == "dev" else TRAIN_COLOR
                    pen = pg.mkPen(
                        color, width=3.5, style=Qt.PenStyle.SolidLine if set_name == "dev" else dash
                    )
                else:
                    pen = pg.mkPen(
                        rs.color, width=1.8, style=Qt.PenStyle.SolidLine if set_name == "dev" else dash
                    )
                item = pg.PlotDataItem(rs.slice.alphas, rs.slice.loss[set_name], pen=pen, connect="finite")
                item.setProperty("run_key", rs.key)
                item.setProperty("set_name", set_name)
                item.setZValue(10 if rs.current else 1)
                self.plot.addItem(item)
                self._items.append(item)
        for rs in slices:
            if rs.current:
                legend_parts.append(swatch(DEV_COLOR, f"<b>{rs.name}</b> dev (current)"))
                legend_parts.append(swatch(TRAIN_COLOR, "train", "╍╍"))
            else:
                legend_parts.append(swatch(rs.color, f"{rs.name} dev, train ╍"))
            notes.append(self._sharpness_text(rs))
        self.legend_label.setText(
            f"<b>Loss around the trained weights</b> (mean of {self.n_directions()} "
            f"directions)&nbsp;&nbsp;" + legend(*legend_parts)
            if slices
            else ""
        )
        self.sharpness_label.setText(
            f"Sharpness: the width in α over which the dev loss stays within {RISE:g} of its value at "
            f"the trained weights (wider = flatter minimum).<br>" + "<br>".join(notes)
        )
        ys = np.concatenate([np.asarray(v) for rs in slices for v in rs.slice.loss.values()] or [np.zeros(1)])
        ys = ys[np.isfinite(ys)]
        if len(ys):
            self.plot.setYRange(0.0, float(ys.max()), padding=0.05)
        if slices:
            span = float(slices[0].slice.alphas[-1])
            self.plot.setXRange(-span, span, padding=0.02)
        if s2 is not None:
            self._draw_2d(s2)

    def _sharpness_text(self, rs: RunSlice) -> str:
        centre = len(rs.slice.alphas) // 2
        dev = rs.slice.loss.get("dev")
        train = rs.slice.loss.get("train")
        name = (
            f"<b>{rs.name}</b> (current)"
            if rs.current
            else f"<span style='color:{rs.color}'>■</span> {rs.name}"
        )
        parts = []
        for set_name, values in (("dev", dev), ("train", train)):
            if values is None:
                continue
            w = rs.width.get(set_name)
            span = 2 * float(rs.slice.alphas[-1])
            width = f"{w:.3g}" if w is not None else f"&gt; {span:g} (flatter than the slice)"
            parts.append(f"{set_name} loss {float(values[centre]):.4g} at α = 0, width {width}")
        return f"{name}: " + "; ".join(parts)

    def _draw_2d(self, s2) -> None:
        loss = np.asarray(s2.loss, dtype=float)
        finite = loss[np.isfinite(loss)]
        if not len(finite):
            return
        lo, hi = float(finite.min()), float(np.quantile(finite, 0.95))
        shown = np.clip(np.nan_to_num(loss, nan=hi, posinf=hi), lo, hi)
        a, b = np.asarray(s2.alphas), np.asarray(s2.betas)
        self.image_2d.setImage(shown.T, levels=(lo, hi), autoLevels=False)  # ImageItem: data[x, y]
        self.image_2d.setColorMap(pg.colormap.get("viridis"))
        da, db = a[1] - a[0], b[1] - b[0]
        self.image_2d.setRect(a[0] - da / 2, b[0] - db / 2, da * len(a), db * len(b))
        levels = lo + (hi - lo) * np.linspace(0.05, 0.95, 9) ** 2
        xy = contour_segments(a, b, shown, levels)
        self.contours_2d.setData(xy[:, 0], xy[:, 1])
        self.panel_2d.setVisible(True)

    def n_directions(self) -> int:
        """Directions averaged in the results drawn (0 when nothing is drawn)."""
        if not self.results:
            return 0
        return int(next(iter(self.results[0].slice.per_direction.values())).shape[0])

    def items(self) -> list[pg.PlotDataItem]:
        """The drawn 1-D curves (each with properties run_key and set_name)."""
        return list(self._items)
