"""Decision boundary of the current run on 2-D data, live while it trains.

A filled map of the predicted class over the data's range (TensorFlow Playground's look:
the colour is the most probable class, its intensity the confidence), with the training
points (filled dots) and the dev points (ringed dots) on top, in raw feature units. The map
is :func:`engine.insight.boundary.boundary_rgba` of
:meth:`engine.insight.boundary.BoundaryGrid.compute` on the current model's snapshot,
computed off the GUI thread with one BLAS thread (the training process has the other core).

Another finished run can be picked as a comparison: its 0.5-probability boundary (for two
classes: p(class 1) = 0.5; for more: each class's p = 0.5) is drawn as a dashed line in the
run's colour, computed once from its ``model.npz`` over the same range.

The confusion-matrix view highlights the points of a clicked cell here (:meth:`highlight`).
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine.insight.colors import class_palette
from gui.models.current_model import CurrentModel, ModelSnapshot
from gui.models.runs_table import RunsTableModel
from gui.models.training_session import TrainingSession
from gui.views.latest_runner import LatestJob
from gui.views.model_views import ModelView, bring_to_front, fixed_plot, hint_text_label, snapshot_hint

RESOLUTION = 200
POINT_SIZE = 7
# a live picture may keep a core busy at most this share of the time (wall time of the niced job,
# so on a busy machine, where it waits longer, the view refreshes less often: 5 Hz when idle)
JOB_DUTY = 0.15
# the map's full-confidence colour is the class colour this far towards white, so the points
# (drawn in the full class colour) stay visible on their own class's region, as in Playground
MAP_LIGHTEN = 0.45


def map_colors(n_classes: int) -> np.ndarray:
    """uint8 ``(C, 3)``: the class colours of the map (lighter than the points' colours)."""
    pal = class_palette(n_classes).astype(np.float64)
    return np.rint(pal + MAP_LIGHTEN * (255.0 - pal)).astype(np.uint8)


def describe_input(snapshot: ModelSnapshot) -> str:
    shape = tuple(snapshot.input_shape)
    if len(shape) == 3:
        h, w, c = shape
        return f"{h}×{w} {'colour' if c == 3 else 'grey'} images"
    n = int(np.prod(shape))
    return f"{n} input feature{'s' if n != 1 else ''}"


def probability_contour(probs: np.ndarray, xs: np.ndarray, ys: np.ndarray, level: float = 0.5):
    """The level-``level`` lines of a boundary grid, in data coordinates, for drawing.

    probs ``(res, res, C)`` with ``probs[i, j]`` at ``(xs[j], ys[i])``. Two classes: the line
    p(class 1) = level (the decision boundary at 0.5); more classes: each class's line. Returns
    ``(x, y)`` float arrays with NaN between separate lines (``connect="finite"``).
    """
    probs = np.asarray(probs, dtype=np.float64)
    c = probs.shape[-1]
    fields = [probs[..., 1]] if c == 2 else [probs[..., k] for k in range(c)]
    dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
    dy = (ys[-1] - ys[0]) / max(len(ys) - 1, 1)
    xs_out: list[np.ndarray] = []
    ys_out: list[np.ndarray] = []
    for field in fields:
        for line in pg.isocurve(field, level, connected=True):
            pts = np.asarray(line, dtype=np.float64)
            # pyqtgraph's isocurve gives (row + 0.5, column + 0.5) for a crossing at pixel centre (row, column)
            xs_out += [xs[0] + (pts[:, 1] - 0.5) * dx, [np.nan]]
            ys_out += [ys[0] + (pts[:, 0] - 0.5) * dy, [np.nan]]
    if not xs_out:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(xs_out), np.concatenate(ys_out)


def _css(rgb) -> str:
    return f"rgb({int(rgb[0])},{int(rgb[1])},{int(rgb[2])})"


class BoundaryView(ModelView):
    """The decision boundary of the session's current run (2-D data), with train/dev points."""

    def __init__(
        self,
        model: CurrentModel,
        session: TrainingSession,
        runs: RunsTableModel,
        parent: QWidget | None = None,
    ):
        super().__init__(model, session, parent)
        self.setObjectName("boundaryView")
        self.runs = runs
        self._grid = None  # engine.insight.boundary.BoundaryGrid, made on first use
        self._luts: dict[int, np.ndarray] = {}
        self._job = LatestJob(self, duty=JOB_DUTY)
        self._job.finished.connect(self._on_job_finished)
        self._job.errored.connect(self._on_job_errored)
        self._compare_job = LatestJob(self)
        self._compare_job.finished.connect(self._on_compare_finished)
        self._compare_job.errored.connect(self._on_compare_errored)
        self._data_id: object = None  # id of the PreparedData the scatter shows
        self._data_ref = None  # keeps that object alive, so its id cannot be reused
        self.x_range: tuple[float, float] | None = None
        self.y_range: tuple[float, float] | None = None
        self.shown_snapshot: ModelSnapshot | None = None  # whose boundary the image shows
        self.compute_ms: list[float] = []  # BoundaryGrid.compute times of this view (benchmarks read it)
        self._compare_shown: tuple | None = None  # (key, x_range, y_range) of the drawn comparison
        self._compare_wanted: tuple | None = None
        self._highlight_key: str | None = None
        self._highlight_text = ""
        self._compare_error: str | None = None

        # header: legend and comparison
        self.legend_label = QLabel("")
        self.legend_label.setObjectName("boundaryLegend")
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.compare_combo = QComboBox()
        self.compare_combo.setObjectName("boundaryCompareCombo")
        self.compare_combo.setToolTip(
            "Draw another finished run's decision boundary (p = 0.5) as a dashed line in its colour"
        )
        self.compare_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.compare_combo.addItem("none", None)
        self.compare_combo.currentIndexChanged.connect(lambda _i: self._update_comparison())
        self.legend_label.setWordWrap(True)

        self.hint = hint_text_label("boundaryHint")
        self.status = hint_text_label("boundaryStatus")
        self.clear_highlight_button = QPushButton("Clear highlight")
        self.clear_highlight_button.setObjectName("clearHighlightButton")
        self.clear_highlight_button.clicked.connect(self.clear_highlight)
        self.clear_highlight_button.setVisible(False)
        footer = QHBoxLayout()
        footer.addWidget(self.status, 1)
        footer.addWidget(self.clear_highlight_button)
        self.compare_label = QLabel("Compare with")
        footer.addWidget(self.compare_label)
        footer.addWidget(self.compare_combo)

        self.plot, item = fixed_plot("decisionBoundaryPlot")
        item.setLabel("bottom", "x₁ (raw feature units)")
        item.setLabel("left", "x₂ (raw feature units)")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(-10)
        item.addItem(self.image)
        self.compare_curve = pg.PlotDataItem(connect="finite")
        self.compare_curve.setZValue(5)
        item.addItem(self.compare_curve)
        self.train_scatter = pg.ScatterPlotItem(size=POINT_SIZE, pen=pg.mkPen(255, 255, 255, 230, width=1))
        self.train_scatter.setZValue(10)
        self.dev_scatter = pg.ScatterPlotItem(size=POINT_SIZE + 1)
        self.dev_scatter.setZValue(11)
        self.highlight_scatter = pg.ScatterPlotItem(
            size=18, pen=pg.mkPen(0, 0, 0, 255, width=2.5), brush=None, symbol="o"
        )
        self.highlight_scatter.setZValue(20)
        for it in (self.train_scatter, self.dev_scatter, self.highlight_scatter):
            item.addItem(it)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.legend_label)
        lay.addWidget(self.hint)
        lay.addWidget(self.plot, 1)
        lay.addLayout(footer)

        session.currentChanged.connect(self._on_current_changed)
        session.history.subscribe(self._on_history_event)
        self._rebuild_compare_combo()
        self.refresh()

    # ---------------------------------------------------------------- public
    def is_busy(self) -> bool:
        """A boundary or comparison computation is running or waiting."""
        return self._job.is_busy() or self._compare_job.is_busy()

    def train_points(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.train_scatter.getData()
        return np.asarray(x), np.asarray(y)

    def dev_points(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.dev_scatter.getData()
        return np.asarray(x), np.asarray(y)

    def image_rgba(self) -> np.ndarray | None:
        """The boundary picture as shown: uint8 (res, res, 4), row 0 at the lowest x₂."""
        return self.image.image

    def comparison_key(self) -> str | None:
        return self.compare_combo.currentData()

    def set_comparison(self, key: str | None) -> None:
        i = self.compare_combo.findData(key)
        self.compare_combo.setCurrentIndex(max(i, 0))

    def highlight(self, set_name: str, indices: np.ndarray, text: str) -> None:
        """Ring the points ``indices`` of the current run's ``set_name`` set ("dev" or "test")
        and bring this view to the front (a click on a confusion-matrix cell)."""
        snap = self.snapshot()
        if snap is None or snap.data is None or not snap.is_2d:
            return
        bring_to_front(self)  # first: a view shown for the first time draws its data (and clears old rings)
        self._set_data(snap)
        points = np.asarray(getattr(snap.data, set_name).take(np.asarray(indices, dtype=np.int64)), float)
        if len(points):
            self.highlight_scatter.setData(x=points[:, 0], y=points[:, 1])
        else:
            self.highlight_scatter.clear()
        self._highlight_key = snap.key
        self._highlight_text = text
        self.clear_highlight_button.setVisible(True)
        self._update_status()

    def highlighted_points(self) -> np.ndarray:
        x, y = self.highlight_scatter.getData()
        return np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)]).reshape(-1, 2)

    def clear_highlight(self) -> None:
        self.highlight_scatter.clear()
        self._highlight_key = None
        self.clear_highlight_button.setVisible(False)
        self._update_status()

    # ---------------------------------------------------------------- following the model
    def _on_current_changed(self, _key: str) -> None:
        self.clear_highlight()
        self._rebuild_compare_combo()

    def _on_history_event(self, event: str, key: str) -> None:
        if event in ("added", "removed", "changed"):
            self._rebuild_compare_combo()

    def refresh(self) -> None:
        super().refresh()
        snap = self.snapshot()
        if snap is None:
            self._show_hint(snapshot_hint(self.model, self.session, "its decision boundary"))
            return
        if not snap.is_2d:
            self._show_hint(
                f"The decision boundary needs 2-D data (two input features, e.g. builtin:moons); "
                f"“{self._run_name(snap.key)}” has {describe_input(snap)}. "
                "The Weights tab shows what its first layer looks for."
            )
            return
        self.hint.setVisible(False)
        self.plot.setVisible(True)
        self.compare_label.setVisible(True)
        self.compare_combo.setVisible(True)
        self._set_data(snap)
        self._submit(snap)
        self._update_comparison()

    def _run_name(self, key: str) -> str:
        run = self.session.history.get(key)
        return run.name if run is not None else Path(key).name

    def _show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(True)
        self.plot.setVisible(False)
        self.compare_label.setVisible(False)
        self.compare_combo.setVisible(False)
        self.status.setText("")
        self.legend_label.setText("")
        self.clear_highlight_button.setVisible(False)
        self.shown_snapshot = None

    def _set_data(self, snap: ModelSnapshot) -> None:
        """Scatter, range and legend: only when the run's data object changes."""
        data = snap.data
        data_id = id(data) if data is not None else ("no data", snap.key)
        if data_id == self._data_id:
            return
        n_classes = len(snap.classes)
        palette = class_palette(n_classes)
        brushes = [pg.mkBrush(*rgb, 255) for rgb in palette]
        pens = [pg.mkPen(*rgb, 255, width=2.2) for rgb in palette]
        if data is not None:
            from engine.insight.boundary import data_range

            train, dev = np.asarray(data.train.X, dtype=float), np.asarray(data.dev.X, dtype=float)
            ty, dy = np.asarray(data.train.y), np.asarray(data.dev.y)
            self.train_scatter.setData(
                x=train[:, 0], y=train[:, 1], brush=[brushes[c] for c in ty], symbol="o"
            )
            self.dev_scatter.setData(
                x=dev[:, 0],
                y=dev[:, 1],
                pen=[pens[c] for c in dy],
                brush=pg.mkBrush(255, 255, 255, 235),
                symbol="o",
            )
            both = np.concatenate([train, dev]) if len(dev) else train
            self.x_range, self.y_range = data_range(both)
        else:  # the run's data could not be prepared: ±3 std around the training mean
            self.train_scatter.clear()
            self.dev_scatter.clear()
            mean, std = np.asarray(snap.norm_mean, float), np.asarray(snap.norm_std, float)
            self.x_range = (mean[0] - 3 * std[0], mean[0] + 3 * std[0])
            self.y_range = (mean[1] - 3 * std[1], mean[1] + 3 * std[1])
        self._data_id = data_id
        self._data_ref = data
        self.clear_highlight()
        # the map fills the plot (features keep their raw units; no 1:1 aspect, no empty margins)
        self.plot.getPlotItem().getViewBox().setRange(xRange=self.x_range, yRange=self.y_range, padding=0)
        self._set_legend(snap.classes, palette)

    def _set_legend(self, classes: list[str], palette: np.ndarray) -> None:
        parts = [
            f"<span style='color:{_css(rgb)}; font-size:14pt'>■</span>&nbsp;{html.escape(str(name))}"
            for name, rgb in zip(classes, palette)
        ]
        parts.append("●&nbsp;train&nbsp;&nbsp;◯&nbsp;dev")
        parts.append("shade = confidence")
        key = self.comparison_key()
        if key is not None:
            color = self.runs.color(key)
            parts.append(
                f"<span style='color:{color}; font-weight:bold'>╌╌</span>&nbsp;"
                f"{html.escape(self._run_name(key))} (p = 0.5)"
            )
        text = "&nbsp;&nbsp;&nbsp;".join(parts)
        if text != self.legend_label.text():  # called on every live picture: relayout only on change
            self.legend_label.setText(text)

    def _lut(self, n_classes: int) -> np.ndarray:
        if n_classes not in self._luts:
            from engine.insight.boundary import confidence_lut

            self._luts[n_classes] = confidence_lut(n_classes, map_colors(n_classes))
        return self._luts[n_classes]

    def _submit(self, snap: ModelSnapshot) -> None:
        from engine.insight.boundary import BoundaryGrid

        if self._grid is None:
            self._grid = BoundaryGrid(RESOLUTION)
        grid, lut = self._grid, self._lut(len(snap.classes))
        x_range, y_range = self.x_range, self.y_range

        def compute(_ctx):
            from engine import blas
            from engine.insight.boundary import boundary_rgba, pixel_rect

            with blas.limited(1):  # the training process has the other core
                t0 = time.perf_counter()
                probs, xs, ys = grid.compute(snap.net, snap.norm_mean, snap.norm_std, x_range, y_range)
                ms = 1000.0 * (time.perf_counter() - t0)
                rgba = boundary_rgba(probs, lut=lut)
            return snap, rgba, pixel_rect(xs, ys), ms

        self._job.submit(compute, spaced=snap.live)

    def _on_job_finished(self, result) -> None:
        snap, rgba, rect, ms = result
        current = self.snapshot()
        if current is None or current.key != snap.key or not current.is_2d:
            return
        self.image.setImage(rgba, autoLevels=False, levels=None)
        self.image.setRect(QRectF(*rect))
        self.shown_snapshot = snap
        self.compute_ms.append(ms)
        del self.compute_ms[:-2000]
        self._update_status()

    def _on_job_errored(self, message: str) -> None:
        self.status.setText(f"Cannot compute the boundary: {message.splitlines()[0]}")

    def _update_status(self) -> None:
        snap = self.shown_snapshot
        if snap is None:
            return
        when = f"epoch {snap.epoch}" if snap.epoch is not None else "saved weights"
        text = f"“{self._run_name(snap.key)}”, {when}{' (training)' if snap.live else ''}"
        if self.compute_ms:
            text += f" · {RESOLUTION}×{RESOLUTION} grid in {self.compute_ms[-1]:.1f} ms"
        if self._highlight_key is not None:
            text += f" · ringed: {self._highlight_text}"
        if self._compare_error:
            text += f" · comparison: {self._compare_error}"
        self.status.setText(text)

    # ---------------------------------------------------------------- comparison
    def _rebuild_compare_combo(self) -> None:
        current = self.session.current_key
        keep = self.compare_combo.currentData()
        runs = [
            r
            for r in self.session.history.runs()
            if not r.hidden
            and not r.live
            and r.key != current
            and not r.is_image()
            and (r.path / "model.npz").exists()
        ]
        wanted = [(r.name, r.key) for r in runs]
        combo = self.compare_combo
        have = [(combo.itemText(i), combo.itemData(i)) for i in range(1, combo.count())]
        if wanted == have:
            return
        self.compare_combo.blockSignals(True)
        self.compare_combo.clear()
        self.compare_combo.addItem("none", None)
        for name, key in wanted:
            self.compare_combo.addItem(name, key)
        self.compare_combo.setCurrentIndex(max(self.compare_combo.findData(keep), 0))
        self.compare_combo.blockSignals(False)
        self._update_comparison()

    def _update_comparison(self) -> None:
        key = self.comparison_key()
        self._compare_error = None
        snap = self.snapshot()
        if snap is not None and snap.is_2d and snap.data is not None:
            self._set_legend(snap.classes, class_palette(len(snap.classes)))
        if key is None or self.x_range is None or snap is None or not snap.is_2d:
            self.compare_curve.clear()
            self._compare_shown = self._compare_wanted = None
            self._update_status()
            return
        wanted = (key, self.x_range, self.y_range)
        if wanted in (self._compare_shown, self._compare_wanted):
            return
        self._compare_wanted = wanted
        path = Path(key) / "model.npz"
        name = self._run_name(key)
        x_range, y_range = self.x_range, self.y_range

        def compute(_ctx):
            from engine import blas
            from engine.errors import DataError
            from engine.insight.boundary import boundary_grid
            from engine.runs import load_model

            model = load_model(path)
            if model.net.layer_sizes[0] != 2:
                raise DataError(f"“{name}” was not trained on 2-D data")
            with blas.limited(1):
                probs, xs, ys = boundary_grid(
                    model.net, model.norm_mean, model.norm_std, x_range, y_range, RESOLUTION
                )
                x, y = probability_contour(probs, xs, ys, 0.5)
            return wanted, x, y

        self._compare_job.submit(compute)

    def _on_compare_finished(self, result) -> None:
        wanted, x, y = result
        if wanted != self._compare_wanted:
            return
        self._compare_wanted = None
        self._compare_shown = wanted
        color = self.runs.color(wanted[0])
        self.compare_curve.setData(x, y, connect="finite")
        self.compare_curve.setPen(pg.mkPen(color, width=2.5, style=Qt.PenStyle.DashLine))
        self._update_status()

    def _on_compare_errored(self, message: str) -> None:
        self._compare_wanted = None
        self.compare_curve.clear()
        self._compare_error = message.splitlines()[0]
        self._update_status()

    def shutdown(self) -> None:
        self._job.shutdown()
        self._compare_job.shutdown()
