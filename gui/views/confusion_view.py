"""Confusion matrix of the current run on its dev set (and on its test set once evaluated).

A heat map with the counts in the cells: rows are the true class, columns the predicted
class (:func:`engine.insight.confusion.confusion_matrix` of
:func:`engine.insight.confusion.predict_raw`). A cell's colour is its share of the row (of
the true class's samples): blue on the diagonal (right), red off it (mistakes), so classes of
different sizes compare. Clicking a cell lists its samples most confident first
(:func:`engine.insight.confusion.cell_members`): image data opens a gallery of thumbnails
with the predicted probability; 2-D data rings the points on the decision-boundary plot.

The test set is read only after the run was evaluated on it (its summary has ``test_acc``):
the test set stays untouched while tuning.
"""

from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.models.current_model import CurrentModel, ModelSnapshot
from gui.models.training_session import TrainingSession
from gui.views.latest_runner import LatestJob
from gui.views.model_views import ModelView, fixed_plot, hint_text_label, snapshot_hint

GALLERY_LIMIT = 300  # thumbnails shown per cell (the most confident first)
THUMB = 72  # thumbnail size in pixels
MAX_TEXT_CLASSES = 25  # counts are written in the cells up to this many classes
DIAGONAL_RGB = np.array((31, 119, 180), dtype=np.float64)
MISTAKE_RGB = np.array((214, 39, 40), dtype=np.float64)
WHITE = np.array((255, 255, 255), dtype=np.float64)
JOB_DUTY = 0.1  # the matrix of a live run is recomputed with at most 10 % of a core
LIVE_INTERVAL = 1.0  # and at most once a second


def heat_rgb(counts: np.ndarray) -> np.ndarray:
    """uint8 ``(C, C, 3)``: each cell blended from white by the square root of its share of the
    row (blue on the diagonal, red off it), so a few mistakes among many still show; an empty
    row stays white."""
    counts = np.asarray(counts, dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    c = len(counts)
    target = np.where(np.eye(c, dtype=bool)[..., None], DIAGONAL_RGB, MISTAKE_RGB)
    return np.rint(WHITE + np.sqrt(share)[..., None] * (target - WHITE)).astype(np.uint8)


def thumbnail(image: np.ndarray, size: int = THUMB) -> QPixmap:
    """A uint8 ``(H, W, C)`` image (C = 1 or 3) scaled up by an integer factor (nearest) to about ``size``."""
    img = np.asarray(image, dtype=np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    h, w, c = img.shape
    k = max(1, size // max(h, w))
    big = np.ascontiguousarray(np.repeat(np.repeat(img, k, axis=0), k, axis=1))
    fmt = QImage.Format.Format_Grayscale8 if c == 1 else QImage.Format.Format_RGB888
    q = QImage(big.data, big.shape[1], big.shape[0], big.strides[0], fmt).copy()
    return QPixmap.fromImage(q)


class ConfusionGallery(QDialog):
    """The samples of one confusion-matrix cell: thumbnails with p(predicted class) and the true class."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("confusionGallery")
        self.setModal(False)
        self.resize(640, 480)
        self.title = QLabel("")
        self.title.setObjectName("galleryTitle")
        self.title.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("galleryList")
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setGridSize(QSize(THUMB + 48, THUMB + 48))
        self.list.setUniformItemSizes(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addWidget(self.list, 1)
        lay.addWidget(buttons)
        self.indices = np.zeros(0, dtype=np.int64)

    def show_cell(
        self, title: str, indices: np.ndarray, texts: list[str], tips: list[str], images=None
    ) -> None:
        """Fill the gallery (images: uint8 (k, H, W, C) or None for non-image data) and show it."""
        self.setWindowTitle(title)
        self.title.setText(title)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.list.clear()
        for k, (text, tip) in enumerate(zip(texts, tips)):
            item = QListWidgetItem(text)
            item.setToolTip(tip)
            if images is not None:
                item.setIcon(QIcon(thumbnail(images[k])))
            self.list.addItem(item)
        self.list.setCurrentRow(-1)  # no item looks picked before the user picks one
        self.show()  # a dialog with a parent stays above the window; no raise_ needed

    def texts(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]


def _short(name: str, n: int = 12) -> str:
    name = str(name)
    return name if len(name) <= n else name[: n - 1] + "…"


class ConfusionView(ModelView):
    """The confusion matrix of the current run on its dev (or evaluated test) set.

    boundary: the BoundaryView whose points are ringed when a cell of a 2-D run is clicked.
    """

    def __init__(
        self,
        model: CurrentModel,
        session: TrainingSession,
        boundary=None,
        parent: QWidget | None = None,
    ):
        super().__init__(model, session, parent)
        self.setObjectName("confusionView")
        self.boundary = boundary
        self._job = LatestJob(self, duty=JOB_DUTY, min_interval=LIVE_INTERVAL)
        self._job.finished.connect(self._on_job_finished)
        self._job.errored.connect(self._on_job_errored)
        self.shown_snapshot: ModelSnapshot | None = None
        self.set_name: str | None = None  # "dev" or "test": what the shown matrix is of
        self.counts: np.ndarray | None = None  # int64 (C, C), rows true
        self.probs: np.ndarray | None = None  # (n, C) of the shown set
        self.y: np.ndarray | None = None
        self.selected = None  # CellMembers of the last clicked cell
        self._n_classes = 0
        self._texts: list[pg.TextItem] = []

        self.set_combo = QComboBox()
        self.set_combo.setObjectName("confusionSetCombo")
        self.set_combo.addItem("dev set", "dev")
        self.set_combo.addItem("test set", "test")
        self.set_combo.setToolTip(
            "The test set is available once the run was evaluated on it (Evaluate on test)"
        )
        self.set_combo.currentIndexChanged.connect(lambda _i: self.request_refresh())
        self.summary = QLabel("")
        self.summary.setObjectName("confusionSummary")
        self.summary.setWordWrap(True)
        header = QHBoxLayout()
        header.addWidget(QLabel("Set"))
        header.addWidget(self.set_combo)
        header.addWidget(self.summary, 1)
        self.hint = hint_text_label("confusionHint")
        self.note = hint_text_label("confusionNote")
        self.note.setText(
            "Rows: true class; columns: predicted class. Numbers = counts; colour = share of the row "
            "(blue: right, red: mistakes; stronger = more). Click a cell to see its samples."
        )

        self.plot, item = fixed_plot("confusionMatrix")
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("bottom", "predicted class")
        item.setLabel("left", "true class")
        vb = item.getViewBox()
        vb.invertY(True)
        vb.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        item.addItem(self.image)
        self.cell_box = pg.PlotDataItem(pen=pg.mkPen(0, 0, 0, 255, width=3))
        self.cell_box.setZValue(20)
        item.addItem(self.cell_box)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)

        self.gallery = ConfusionGallery(self)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(header)
        lay.addWidget(self.hint)
        # square cells: the plot is kept about as wide as it is tall (plus its axis), centred,
        # instead of a small matrix in the middle of a wide plot with its axis far to the left
        lay.addWidget(self.plot, 1, Qt.AlignmentFlag.AlignHCenter)
        self.plot.installEventFilter(self)  # its height decides its width
        lay.addWidget(self.note)
        session.currentChanged.connect(self._on_current_changed)
        session.history.subscribe(self._on_history_event)
        self._update_set_combo()
        self.refresh()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if watched is self.plot and event.type() == QEvent.Type.Resize:
            self._fit_plot_width()
        return super().eventFilter(watched, event)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_plot_width()

    def _fit_plot_width(self) -> None:
        item = self.plot.getPlotItem()
        # the view box square: its height plus the left axis (labels) and a small margin
        side = self.plot.height() - item.getAxis("bottom").height() - 12
        want = side + item.getAxis("left").width() + 24
        self.plot.setFixedWidth(max(240, min(self.width() - 8, int(want))))

    # ---------------------------------------------------------------- public
    def is_busy(self) -> bool:
        return self._job.is_busy()

    def cell_text(self, true_class: int, pred_class: int) -> str:
        return self._texts[true_class * self._n_classes + pred_class].textItem.toPlainText()

    def cell_center(self, true_class: int, pred_class: int):
        """Where cell (true, predicted) is, in the plot widget's coordinates (for a real click)."""
        vb = self.plot.getPlotItem().getViewBox()
        from PySide6.QtCore import QPointF

        scene = vb.mapViewToScene(QPointF(pred_class + 0.5, true_class + 0.5))
        return self.plot.mapFromScene(scene)

    def select_cell(self, true_class: int, pred_class: int):
        """Show the samples of cell (true, predicted): a gallery, or ringed points for 2-D data.
        Returns the engine's CellMembers (None when no matrix is shown)."""
        snap = self.shown_snapshot
        if snap is None or self.probs is None or self.set_name is None:
            return None
        from engine.insight.confusion import cell_members

        members = cell_members(self.y, self.probs, true_class, pred_class)
        self.selected = members
        c = self._n_classes
        x = [pred_class, pred_class + 1, pred_class + 1, pred_class, pred_class]
        y = [true_class, true_class, true_class + 1, true_class + 1, true_class]
        self.cell_box.setData(x, y)
        classes = snap.classes
        true_name, pred_name = str(classes[true_class]), str(classes[pred_class])
        n = len(members.indices)
        kind = "right" if true_class == pred_class else "mistakes"
        title = (
            f"True {true_name}, predicted {pred_name} ({kind}): {n} {self.set_name} sample{'s' if n != 1 else ''}"
            + (
                f", the {GALLERY_LIMIT} most confident shown"
                if n > GALLERY_LIMIT
                else ", most confident first"
            )
        )
        if snap.is_2d and self.boundary is not None:
            points = f"{n} {self.set_name} point{'s' if n != 1 else ''}"
            self.boundary.highlight(
                self.set_name, members.indices, f"{points}, true {true_name}, predicted {pred_name}"
            )
            return members
        shown = members.indices[:GALLERY_LIMIT]
        texts = [
            f"p({_short(pred_name)})={p:.2f}\ntrue: {_short(true_name)}"
            for p in members.confidence[:GALLERY_LIMIT]
        ]
        tips = [
            f"{self.set_name} sample {int(i)}: "
            + ", ".join(f"p({classes[k]})={members.probs[j, k]:.3f}" for k in range(c))
            for j, i in enumerate(shown)
        ]
        images = None
        if snap.is_image and snap.data is not None:
            images = getattr(snap.data, self.set_name).take(shown)
        self.gallery.show_cell(title, shown, texts, tips, images)
        return members

    def shutdown(self) -> None:
        self._job.shutdown()
        self.gallery.close()

    # ---------------------------------------------------------------- following the model
    def _test_allowed(self) -> bool:
        run = self.session.current()
        return run is not None and not run.live and run.test_acc() is not None

    def _update_set_combo(self) -> None:
        allowed = self._test_allowed()
        model = self.set_combo.model()
        model.item(1).setEnabled(allowed)
        if not allowed and self.set_combo.currentData() == "test":
            self.set_combo.setCurrentIndex(0)  # refreshes

    def _on_current_changed(self, _key: str) -> None:
        self.cell_box.setData([], [])
        self.selected = None
        self.gallery.hide()
        self._update_set_combo()

    def _on_history_event(self, event: str, key: str) -> None:
        if event == "changed" and key == self.session.current_key:
            self._update_set_combo()

    def refresh(self) -> None:
        super().refresh()
        snap = self.snapshot()
        if snap is None:
            self._show_hint(snapshot_hint(self.model, self.session, "its confusion matrix"))
            return
        if snap.data is None:
            self._show_hint("The run's data could not be loaded, so there is nothing to count.")
            return
        set_name = self.set_combo.currentData()
        if set_name == "test" and not self._test_allowed():
            set_name = "dev"  # never touch the test set before the run was evaluated on it
        dataset = getattr(snap.data, set_name)
        if len(dataset) == 0:
            self._show_hint(f"The run has no {set_name} set: choose a split with one.")
            return
        net, mean, std, n_classes = snap.net, snap.norm_mean, snap.norm_std, len(snap.classes)

        def compute(_ctx):
            from engine import blas
            from engine.insight.confusion import confusion_matrix, predict_raw, predicted_classes

            with blas.limited(1):
                probs = predict_raw(net, dataset, mean, std)
                y = np.asarray(dataset.y, dtype=np.int64)
                counts = confusion_matrix(y, predicted_classes(probs), n_classes)
            return snap, set_name, probs, y, counts

        self._job.submit(compute, spaced=snap.live)

    def _show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(True)
        self.plot.setVisible(False)
        self.note.setVisible(False)
        self.summary.setText("")
        self.shown_snapshot = None
        self.counts = self.probs = self.y = None

    def _on_job_finished(self, result) -> None:
        snap, set_name, probs, y, counts = result
        current = self.snapshot()
        if current is None or current.key != snap.key:
            return
        changed_set = (
            set_name != self.set_name or (self.shown_snapshot is None) or snap.key != self.shown_snapshot.key
        )
        self.shown_snapshot, self.set_name = snap, set_name
        self.probs, self.y, self.counts = probs, y, counts
        self.hint.setVisible(False)
        self.plot.setVisible(True)
        self.note.setVisible(True)
        self._draw(snap.classes, counts)
        total, right = int(counts.sum()), int(np.trace(counts))
        when = f"epoch {snap.epoch}" if snap.epoch is not None else "saved weights"
        run = self.session.history.get(snap.key)
        name = run.name if run is not None else snap.key
        self.summary.setText(
            f"“{html.escape(name)}”, {when}{' (training)' if snap.live else ''}: {right:,} of {total:,} "
            f"{set_name} samples right ({100 * right / max(total, 1):.1f} %)"
        )
        if changed_set:
            self.cell_box.setData([], [])
            self.selected = None

    def _on_job_errored(self, message: str) -> None:
        self.summary.setText(f"Cannot compute the confusion matrix: {message.splitlines()[0]}")

    def _draw(self, classes: list[str], counts: np.ndarray) -> None:
        c = len(counts)
        item = self.plot.getPlotItem()
        if c != self._n_classes:
            for t in self._texts:
                item.removeItem(t)
            self._texts = []
            if c <= MAX_TEXT_CLASSES:
                for i in range(c):
                    for j in range(c):
                        t = pg.TextItem("", anchor=(0.5, 0.5))
                        t.setPos(j + 0.5, i + 0.5)
                        t.setZValue(10)
                        item.addItem(t)
                        self._texts.append(t)
            self._n_classes = c
            ticks = [(k + 0.5, _short(name)) for k, name in enumerate(classes)]
            item.getAxis("bottom").setTicks([ticks])
            item.getAxis("left").setTicks([ticks])
            item.getViewBox().setRange(xRange=(0, c), yRange=(0, c), padding=0.02)
        rgb = heat_rgb(counts)
        self.image.setImage(rgb, autoLevels=False, levels=None)
        self.image.setRect(QRectF(0, 0, c, c))  # after setImage: the rect maps the image's pixels
        if self._texts:
            rows = counts.sum(axis=1)
            for i in range(c):
                for j in range(c):
                    share = counts[i, j] / rows[i] if rows[i] else 0.0
                    t = self._texts[i * c + j]
                    t.setText(f"{int(counts[i, j]):,}")
                    t.setColor((255, 255, 255) if share > 0.3 else (30, 30, 30))

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.counts is None:
            return
        vb = self.plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        p = vb.mapSceneToView(event.scenePos())
        col, row = math.floor(p.x()), math.floor(p.y())
        if 0 <= row < self._n_classes and 0 <= col < self._n_classes:
            self.select_cell(row, col)
