"""Weights as pictures: first-layer tiles (image data) or the network drawn (2-D data), a
histogram of all weights with the share near zero, and the gradient check.

- Image data: each first-layer unit's incoming weights as a small tile
  (:func:`engine.insight.weights.weight_tiles` → :func:`engine.insight.weights.tile_mosaic`):
  blue negative, white 0, red positive, symmetric about 0, with one scale for all tiles or
  each tile at its own; colour images as colour (each channel ``0.5 + 0.5·w/vmax``, mid-grey
  = 0), as the channel mean, or one channel at a time. L1 makes tiles sparse, L2 smooth and
  small.
- 2-D data: the network Playground-style (:func:`engine.insight.weights.network_diagram`):
  line thickness and colour = weight size and sign, nodes coloured by their bias, and for
  small networks each hidden unit's activation over the input plane
  (:func:`engine.insight.boundary.unit_maps`) inside its node.
- Always: :func:`engine.insight.weights.weight_histogram` of every weight (biases are not
  weights here) with the near-zero band and share.

Everything is computed off the GUI thread from the current model's snapshot, live while the
run trains.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.insight.colors import DIVERGING_LUT, diverging_rgb
from gui.models.current_model import CurrentModel, ModelSnapshot
from gui.models.training_session import TrainingSession
from gui.views.boundary_view import describe_input
from gui.views.gradcheck_panel import GradCheckPanel
from gui.views.latest_runner import LatestJob
from gui.views.model_views import ModelView, fixed_plot, hint_text_label, snapshot_hint

EDGE_LEVELS = 5  # edges are drawn in this many thickness classes per sign (one plot item each)
MAX_DIAGRAM_EDGES = 20_000  # beyond this the drawing is a grey blur: show a hint instead
UNIT_MAP_MAX_WIDTH = 12  # unit maps inside the nodes when every hidden layer is this narrow or less
UNIT_MAP_RES = 24
DIAGRAM_ASPECT = 1.4  # width : height the diagram is laid out for
NODE_SHADES = 8  # bias colour steps per sign
DENSE_EDGES = 400  # above this many edges in a thickness class, its lines get fainter
LAYER_SPREAD = 0.5  # a narrow layer spans at least half the tallest layer's height
COLOR_MODES = {  # combo text -> what tile_mosaic gets (rgb mode, or a channel index)
    "colour": "color",
    "channel mean": "mean",
    "red channel": 0,
    "green channel": 1,
    "blue channel": 2,
}
JOB_DUTY = 0.2  # the pictures of a live run take at most 20 % of a core
LIVE_INTERVAL = 1.0  # and come at most once a second
SCALE_MODES = {"one scale for all tiles": "global", "each tile its own scale": "tile"}


def edge_pen(level: int, positive: bool, levels: int = EDGE_LEVELS, count: int = 0):
    """The pen of the ``count`` edges in thickness class ``level`` (0 = smallest |w|) of one sign.

    A class with many edges (a 128×128 layer has 16,384) is drawn fainter, in proportion, so
    thousands of thin lines do not pile up into a solid block of one colour, and one pixel wide:
    wide semi-transparent lines cost Qt's raster engine ~15× more to paint (2-64-64-2: 255 ms
    against 17 ms a picture)."""
    strength = (level + 1) / levels
    rgb = diverging_rgb(np.array([max(0.45, strength) * (1 if positive else -1)]), 1.0)[0]
    alpha = (70 + 185 * strength) * min(1.0, DENSE_EDGES / max(count, 1))
    width = 1.0 if count > DENSE_EDGES else 0.6 + 5.4 * strength
    return pg.mkPen(int(rgb[0]), int(rgb[1]), int(rgb[2]), max(3, int(alpha)), width=width)


def layout_positions(diagram, x_spacing: float, spread: float = LAYER_SPREAD) -> np.ndarray:
    """Node positions ``(N, 2)`` for drawing: layers ``x_spacing`` apart, and a narrow layer
    spread over at least ``spread`` of the tallest layer's height (the engine's layout packs
    every layer at unit spacing, which puts two inputs next to each other)."""
    pos = diagram.positions.astype(np.float64).copy()
    pos[:, 0] *= x_spacing
    sizes = np.bincount(diagram.layer)
    tallest = int(sizes.max())
    for layer, n in enumerate(sizes):
        if n > 1 and tallest > 1:
            stretch = min((tallest - 1) / (n - 1), max(1.0, spread * (tallest - 1) / (n - 1)))
            pos[diagram.layer == layer, 1] *= stretch
    return pos


def edge_groups(
    diagram, positions: np.ndarray, levels: int = EDGE_LEVELS
) -> dict[tuple[int, bool], np.ndarray]:
    """The diagram's edges split by thickness class and sign: ``{(level, positive): segments (2k, 2)}``.

    Level = ``floor(levels · |w| / max|w|)`` (the largest weights in the top class); end points
    from ``positions`` (N, 2). Every key is present (empty groups are ``(0, 2)``).
    """
    seg = positions[diagram.edges.reshape(-1)].reshape(-1, 2, 2)
    w = np.nan_to_num(diagram.weights)
    mags = np.abs(w) / diagram.max_abs if diagram.max_abs > 0 else np.zeros(len(w))
    level = np.minimum(levels - 1, np.floor(mags * levels)).astype(int)
    out = {}
    for lv in range(levels):
        for positive in (False, True):
            sel = (level == lv) & ((w >= 0) == positive)
            out[(lv, positive)] = seg[sel].reshape(-1, 2)
    return out


def _lut_pixmap(width: int = 160, height: int = 12) -> QPixmap:
    row = np.ascontiguousarray(np.repeat(DIVERGING_LUT[None, :, :], height, axis=0))
    image = QImage(row.data, row.shape[1], height, row.strides[0], QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(width, height)


class WeightsView(ModelView):
    """Weight tiles or the network diagram, the weight histogram and the gradient check."""

    def __init__(self, model: CurrentModel, session: TrainingSession, parent: QWidget | None = None):
        super().__init__(model, session, parent)
        self.setObjectName("weightsView")
        self._job = LatestJob(self, duty=JOB_DUTY, min_interval=LIVE_INTERVAL)
        self._job.finished.connect(self._on_job_finished)
        self._job.errored.connect(self._on_job_errored)
        self.shown_snapshot: ModelSnapshot | None = None
        self.mode: str = "none"  # "tiles", "diagram" or "none": what the left side shows
        self.histogram = None  # the WeightHistogram shown
        self._arch: tuple | None = None  # layer sizes the diagram items were built for
        self._node_maps: list[pg.ImageItem] = []
        self._labels: list[pg.TextItem] = []

        # controls
        self.scale_combo = QComboBox()
        self.scale_combo.setObjectName("tileScaleCombo")
        self.scale_combo.addItems(list(SCALE_MODES))
        self.scale_combo.setToolTip(
            "One scale: units compare (a unit with small weights is pale). "
            "Each tile its own: every unit's pattern at full contrast."
        )
        self.color_combo = QComboBox()
        self.color_combo.setObjectName("tileColorCombo")
        self.color_combo.addItems(list(COLOR_MODES))
        self.color_combo.setToolTip("How the three weights of a colour pixel are shown")
        for combo in (self.scale_combo, self.color_combo):
            combo.currentIndexChanged.connect(lambda _i: self.request_refresh())
        self.colorbar = QLabel()
        self.colorbar.setObjectName("weightColorBar")
        self.colorbar.setPixmap(_lut_pixmap())
        self.scale_label = QLabel("")
        self.scale_label.setObjectName("weightScaleLabel")
        self.scale_label.setWordWrap(True)
        controls = QHBoxLayout()
        self.scale_title = QLabel("Scale")
        controls.addWidget(self.scale_title)
        controls.addWidget(self.scale_combo)
        self.color_title = QLabel("Colour images")
        controls.addWidget(self.color_title)
        controls.addWidget(self.color_combo)
        controls.addStretch(1)
        scale_row = QHBoxLayout()
        scale_row.addWidget(self.colorbar)
        scale_row.addWidget(self.scale_label, 1)

        # left: tiles or diagram
        self.hint = hint_text_label("weightsHint")
        self.tiles_plot, tp = fixed_plot("weightTiles", axes=False)
        tp.getViewBox().invertY(True)
        tp.getViewBox().setAspectLocked(True)
        self.tiles_image = pg.ImageItem(axisOrder="row-major")
        tp.addItem(self.tiles_image)

        self.diagram_plot, dp = fixed_plot("networkDiagram", axes=False)
        for side in ("left", "right"):  # tick labels only: input names left, class names right
            axis = dp.getAxis(side)
            axis.setPen(pg.mkPen(None))
            axis.setStyle(tickLength=0)
        dp.getViewBox().setAspectLocked(True)
        self.edge_items: dict[tuple[int, bool], pg.PlotDataItem] = {}
        for lv in range(EDGE_LEVELS):
            for positive in (False, True):
                it = pg.PlotDataItem(connect="pairs", pen=edge_pen(lv, positive))
                it.setZValue(lv)
                dp.addItem(it)
                self.edge_items[(lv, positive)] = it
        self.node_scatter = pg.ScatterPlotItem(size=11, pen=pg.mkPen(60, 60, 60, 255, width=1))
        self.node_scatter.setZValue(20)
        dp.addItem(self.node_scatter)

        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.addLayout(controls)
        left_lay.addLayout(scale_row)
        left_lay.addWidget(self.hint)
        left_lay.addWidget(self.tiles_plot, 1)
        left_lay.addWidget(self.diagram_plot, 1)

        # right: histogram and gradient check
        self.hist_plot, hp = fixed_plot("weightHistogram")
        hp.setLabel("bottom", "w (all layers; biases excluded)")
        hp.getAxis("bottom").enableAutoSIPrefix(False)
        hp.getAxis("left").enableAutoSIPrefix(False)
        hp.setLabel("left", "count")
        self.hist_curve = pg.PlotDataItem(
            stepMode="center", fillLevel=0, brush=pg.mkBrush(31, 119, 180, 150), pen=pg.mkPen("#1f77b4")
        )
        hp.addItem(self.hist_curve)
        self.near_zero_band = pg.LinearRegionItem(
            values=(0, 0), movable=False, brush=pg.mkBrush(214, 39, 40, 50), pen=pg.mkPen(None)
        )
        hp.addItem(self.near_zero_band)
        self.near_zero_label = QLabel("")
        self.near_zero_label.setObjectName("nearZeroLabel")
        self.near_zero_label.setWordWrap(True)
        self.hist_plot.setMinimumHeight(120)
        self.gradcheck = GradCheckPanel(model, session)
        right = QWidget()
        right_lay = QVBoxLayout(right)
        right_lay.setContentsMargins(0, 0, 0, 0)
        right_lay.addWidget(self.hist_plot, 1)
        right_lay.addWidget(self.near_zero_label)

        self.status = hint_text_label("weightsStatus")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setObjectName("weightsSplitter")
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(split, 1)
        lay.addWidget(self.gradcheck)
        lay.addWidget(self.status)
        self._show_left("none")
        self._set_tile_controls(False, False)
        self.refresh()

    # ---------------------------------------------------------------- public
    def is_busy(self) -> bool:
        return self._job.is_busy()

    def tiles(self) -> np.ndarray | None:
        """The tile mosaic as shown: uint8 (h, w, 3), or None."""
        return self.tiles_image.image if self.mode == "tiles" else None

    def scale(self) -> str:
        return SCALE_MODES[self.scale_combo.currentText()]

    def color_mode(self) -> str | int:
        return COLOR_MODES[self.color_combo.currentText()]

    def shutdown(self) -> None:
        self._job.shutdown()
        self.gradcheck.shutdown()

    # ---------------------------------------------------------------- showing
    def _show_left(self, mode: str, hint: str = "") -> None:
        self.mode = mode
        self.tiles_plot.setVisible(mode == "tiles")
        self.diagram_plot.setVisible(mode == "diagram")
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))

    def _set_tile_controls(self, tiles: bool, rgb: bool) -> None:
        for w in (self.scale_title, self.scale_combo):
            w.setVisible(tiles)
        for w in (self.color_title, self.color_combo):
            w.setVisible(tiles and rgb)

    def refresh(self) -> None:
        super().refresh()
        snap = self.snapshot()
        if snap is None:
            self._show_left("none", snapshot_hint(self.model, self.session, "its weights"))
            self._set_tile_controls(False, False)
            self.colorbar.setVisible(False)
            self.scale_label.setText("")
            self.hist_curve.clear()
            self.near_zero_label.setText("")
            self.status.setText("")
            self.shown_snapshot = None
            return
        self._submit(snap)

    def _submit(self, snap: ModelSnapshot) -> None:
        net = snap.net
        scale, color = self.scale(), self.color_mode()
        image = snap.is_image
        n_edges = sum(int(w.size) for w in net.W)
        diagram = not image and n_edges <= MAX_DIAGRAM_EDGES
        hidden = list(net.layer_sizes[1:-1])
        want_maps = snap.is_2d and bool(hidden) and max(hidden) <= UNIT_MAP_MAX_WIDTH
        x_range = y_range = None
        if want_maps and snap.data is not None:
            from engine.insight.boundary import data_range

            x_range, y_range = data_range(np.concatenate([snap.data.train.X, snap.data.dev.X]))
        elif want_maps:
            mean, std = np.asarray(snap.norm_mean, float), np.asarray(snap.norm_std, float)
            x_range = (mean[0] - 3 * std[0], mean[0] + 3 * std[0])
            y_range = (mean[1] - 3 * std[1], mean[1] + 3 * std[1])

        def compute(_ctx):
            from engine import blas
            from engine.insight.weights import network_diagram, tile_mosaic, weight_histogram, weight_tiles

            out = {"snap": snap, "scale": scale, "color": color}
            with blas.limited(1):
                out["hist"] = weight_histogram(net.W)
                if image:
                    tiles = weight_tiles(net.W[0], snap.input_shape)
                    rgb = "color"
                    if tiles.shape[3] == 3 and isinstance(color, int):
                        tiles = tiles[..., color : color + 1]
                    elif tiles.shape[3] == 3:
                        rgb = color
                    out["mosaic"] = tile_mosaic(tiles, scale=scale, rgb=rgb)
                    mags = np.abs(np.nan_to_num(tiles)).reshape(len(tiles), -1)
                    out["tile_max"] = mags.max(axis=1) if mags.size else np.zeros(0)
                    out["n_tiles"] = len(tiles)
                elif diagram:
                    d = network_diagram(net.W, net.b)
                    out["diagram"] = d
                    out["positions"] = pos = layout_positions(d, self._spacing(net.layer_sizes))
                    out["groups"] = edge_groups(d, pos)
                    if x_range is not None:
                        from engine.insight.boundary import unit_maps

                        maps = unit_maps(net, snap.norm_mean, snap.norm_std, x_range, y_range, UNIT_MAP_RES)
                        pictures = []
                        for layer in maps:
                            for unit in layer:
                                vmax = float(np.nanmax(np.abs(unit))) if unit.size else 0.0
                                pictures.append(diverging_rgb(unit, vmax))
                        out["maps"] = pictures
            return out

        self._job.submit(compute, spaced=snap.live)

    @staticmethod
    def _spacing(sizes) -> float:
        """Horizontal distance between layers, so the diagram is about DIAGRAM_ASPECT wide for its height."""
        return max(2.0, DIAGRAM_ASPECT * max(sizes) / max(1, len(sizes) - 1))

    def _on_job_finished(self, out: dict) -> None:
        snap = out["snap"]
        current = self.snapshot()
        if current is None or current.key != snap.key:
            return
        self.shown_snapshot = snap
        self._show_histogram(out["hist"])
        if "mosaic" in out:
            self._show_tiles(snap, out)
        elif "diagram" in out:
            self._show_diagram(snap, out)
        else:
            self._set_tile_controls(False, False)
            self.colorbar.setVisible(False)
            self.scale_label.setText("")
            self._show_left(
                "none",
                f"Weights as tiles need image data, and this network ({describe_input(snap)}, "
                f"{sum(int(w.size) for w in snap.net.W):,} weights) is too big to draw as a diagram. "
                "The histogram shows all its weights.",
            )
        when = f"epoch {snap.epoch}" if snap.epoch is not None else "saved weights"
        run = self.session.history.get(snap.key)
        name = run.name if run is not None else snap.key
        reg = snap.config.regularization
        self.status.setText(
            f"“{name}”, {when}{' (training)' if snap.live else ''} · L2 λ = {reg.l2:g}, L1 λ₁ = {reg.l1:g}"
        )

    def _on_job_errored(self, message: str) -> None:
        self.status.setText(f"Cannot draw the weights: {message.splitlines()[0]}")

    def _show_histogram(self, hist) -> None:
        self.histogram = hist
        self.hist_curve.setData(hist.edges, hist.counts)
        self.near_zero_band.setRegion((-hist.threshold, hist.threshold))
        per_layer = ", ".join(f"W{i + 1} {100 * s:.1f} %" for i, s in enumerate(hist.per_layer_near_zero))
        self.near_zero_label.setText(
            f"<b>{100 * hist.near_zero_share:.1f} %</b> of {hist.n_weights:,} weights near zero "
            f"(red band: |w| ≤ {100 * hist.near_zero:g} % of max |w| = {hist.max_abs:.3g})"
        )
        self.near_zero_label.setToolTip(
            f"Near-zero share per layer: {per_layer}.\nL1 raises this share (it drives weights to exactly 0); "
            "L2 shrinks all weights without zeroing them."
        )

    def _show_tiles(self, snap: ModelSnapshot, out: dict) -> None:
        c = snap.input_shape[2]
        self._set_tile_controls(True, c == 3)
        self._show_left("tiles")
        mosaic = out["mosaic"]
        self.tiles_image.setImage(mosaic, autoLevels=False, levels=None)
        self.tiles_image.setRect(QRectF(0, 0, mosaic.shape[1], mosaic.shape[0]))
        self.tiles_plot.getPlotItem().getViewBox().autoRange(padding=0.01)
        tile_max = out["tile_max"]
        vmax = float(tile_max.max()) if len(tile_max) else 0.0
        n = out["n_tiles"]
        color = out["color"]
        channel = {0: "red", 1: "green", 2: "blue"}.get(color) if isinstance(color, int) and c == 3 else None
        what = f"{n} first-layer units as {snap.input_shape[0]}×{snap.input_shape[1]} tiles"
        if channel:
            what += f" ({channel} channel)"
        if c == 3 and color == "color":
            self.colorbar.setVisible(False)
            mapping = "colour: each channel 0.5 + 0.5·w/vmax (mid-grey = 0)"
        else:
            self.colorbar.setVisible(True)
            mapping = "blue −, white 0, red +" + (
                " (mean of the channels)" if c == 3 and color == "mean" else ""
            )
        if out["scale"] == "global":
            scale = f"one scale for all tiles: vmax = {vmax:.3g}"
        else:
            lo = float(tile_max.min()) if len(tile_max) else 0.0
            scale = f"each tile at its own vmax = its max |w| ({lo:.3g} … {vmax:.3g})"
        self.scale_label.setText(f"{what} · {mapping} · {scale}")

    def _show_diagram(self, snap: ModelSnapshot, out: dict) -> None:
        d, pos = out["diagram"], out["positions"]
        self._set_tile_controls(False, False)
        hint = ""
        if not snap.is_2d:
            hint = f"Weights as tiles need image data; this run has {describe_input(snap)}, so its network is drawn."
        self._show_left("diagram", hint)
        for key, segments in out["groups"].items():
            item = self.edge_items[key]
            if len(segments):
                # antialiasing only at rest: a live picture is replaced within a second anyway
                item.setData(segments[:, 0], segments[:, 1], connect="pairs", antialias=not snap.live)
                item.setPen(edge_pen(*key, count=len(segments) // 2))
            else:
                item.setData([], [])
        bmax = float(np.max(np.abs(d.bias))) if len(d.bias) else 0.0
        # bias colours in NODE_SHADES steps: pyqtgraph renders one symbol per distinct brush, and
        # a hundred new shades every picture cost more than the edges
        steps = np.rint(np.clip(d.bias / bmax, -1, 1) * NODE_SHADES) / NODE_SHADES if bmax > 0 else d.bias * 0
        colors = diverging_rgb(steps, 1.0)
        # nodes as big as the tallest layer leaves room for (64 units in 200 px: small dots)
        tallest = int(np.bincount(d.layer).max())
        room = self.diagram_plot.getPlotItem().getViewBox().height() / max(tallest + 2, 1)
        self.node_scatter.setData(
            x=pos[:, 0],
            y=pos[:, 1],
            size=float(np.clip(0.75 * room, 4.0, 12.0)),
            brush=[pg.mkBrush(int(r), int(g), int(b)) for r, g, b in colors],
        )
        arch = tuple(snap.net.layer_sizes)
        maps = out.get("maps")
        if arch != self._arch or (maps is not None) != bool(self._node_maps):
            self._build_diagram_labels(snap, d, pos, maps is not None)
        if maps is not None:
            for item, picture in zip(self._node_maps, maps):
                rect = item.rect_wanted
                item.setImage(picture, autoLevels=False, levels=None)
                item.setRect(rect)  # after setImage: the rect maps the picture's pixels
        vmax = d.max_abs
        self.colorbar.setVisible(True)
        self.scale_label.setText(
            f"Line thickness = |w| (largest {vmax:.3g}), colour = sign: blue negative, red positive. "
            "Node colour = its bias"
            + ("; inside each hidden node: its activation over the input plane" if maps is not None else "")
            + "."
        )

    def _build_diagram_labels(self, snap: ModelSnapshot, d, pos: np.ndarray, with_maps: bool) -> None:
        dp = self.diagram_plot.getPlotItem()
        for item in self._node_maps + self._labels:
            dp.removeItem(item)
        self._node_maps, self._labels = [], []
        self._arch = tuple(snap.net.layer_sizes)
        n_layers = int(d.layer.max()) + 1
        if with_maps:
            size = 0.8
            for i in np.flatnonzero((d.layer > 0) & (d.layer < n_layers - 1)):
                item = pg.ImageItem(axisOrder="row-major")
                item.rect_wanted = QRectF(pos[i, 0] - size / 2, pos[i, 1] - size / 2, size, size)
                item.setZValue(30)
                dp.addItem(item)
                self._node_maps.append(item)
        # input and class names as the left and right axes' tick labels: they take the room they need
        inputs = np.flatnonzero(d.layer == 0)
        names = ["x₁", "x₂"] if snap.is_2d else [f"x{i + 1}" for i in range(len(inputs))]
        outputs = np.flatnonzero(d.layer == n_layers - 1)
        out_names = snap.classes if len(outputs) == len(snap.classes) else [f"p({snap.classes[-1]})"]
        for side, idx, labels in (("left", inputs, names), ("right", outputs, out_names)):
            axis = dp.getAxis(side)
            ticks = [(float(pos[i, 1]), str(name)) for name, i in zip(labels, idx)] if len(idx) <= 16 else []
            axis.setTicks([ticks, []])
            dp.showAxis(side, bool(ticks))
        width = float(np.ptp(pos[:, 0])) or 1.0
        height = float(np.ptp(pos[:, 1])) if len(pos) else 1.0
        dp.getViewBox().setRange(
            xRange=(-0.03 * width, 1.03 * width), yRange=(-height / 2 - 1, height / 2 + 1), padding=0
        )
