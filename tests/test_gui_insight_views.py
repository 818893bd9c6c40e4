"""The views of the model itself (issue 9): decision boundary, weights as pictures, confusion matrix,
gradient check and the weight-decay line. Every picture is checked against the engine's own
computation on the weights of the run's model.npz (read back independently), and each view is
opened, trained live, and checked to change. Waits on training use qtbot.waitSignal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QLabel

from engine import blas
from engine.config import from_dict
from engine.dataset import ArraySet, PreparedData
from engine.gradcheck import check_prepared
from engine.insight.boundary import BoundaryGrid, boundary_rgba, data_range
from engine.insight.colors import class_palette
from engine.insight.confusion import cell_members, confusion_matrix, predict_raw, predicted_classes
from engine.insight.weights import network_diagram, tile_mosaic, weight_histogram, weight_tiles
from engine.prepare import load_sources, prepare_from_sources
from engine.runs import load_model, load_run
from gui.panels.model_panel import ModelPanel
from gui.state import ExperimentState
from gui.views.boundary_view import probability_contour
from gui.window import MainWindow

MOONS = {
    "data": {"source": "builtin:moons", "n_samples": 300, "noise": 0.2, "split": [0.6, 0.2, 0.2]},
    "diagnosis": {"human_error": 0.0},
    "model": {"hidden": [16, 16]},
    "optimizer": {"name": "adam", "lr": 0.02},
    "training": {"epochs": 30, "batch_size": 32},
}
SHAPES = {
    "data": {"source": "builtin:shapes", "n_samples": 240, "image_size": [8, 8], "split": [0.6, 0.2, 0.2]},
    "diagnosis": {"human_error": 0.0},
    "model": {"hidden": [6]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 8, "batch_size": 32},
}
MAP_LIGHTEN = 0.45  # the boundary map's colours: class colours 45 % towards white (documented in the view)


def make_window(
    qtbot, tmp_path: Path, raw: dict, overrides: dict | None = None, spy_test=False
) -> MainWindow:
    raw = json.loads(json.dumps(raw))
    for section, fields in (overrides or {}).items():
        raw.setdefault(section, {}).update(fields)
    state = ExperimentState(from_dict(raw))
    sources = load_sources(state.config.data)
    prepared = prepare_from_sources(state.config, sources)
    if spy_test:
        prepared = PreparedData(**{**prepared.__dict__, "test": SpySet(prepared.test)})
    state.set_data(sources, prepared)
    win = MainWindow(state, runs_dir=tmp_path / "runs")
    qtbot.addWidget(win)
    win.show_dialogs = False
    win.resize(1024, 768)
    win.show()
    qtbot.waitUntil(lambda: not win.problems(), timeout=15000)
    return win


class SpySet(ArraySet):
    """An ArraySet that counts reads of its samples (the test set must stay untouched)."""

    reads = 0

    def __init__(self, s: ArraySet):
        super().__init__(s.base, s.y, s.idx)

    def take(self, positions, out=None):
        type(self).reads += 1
        return super().take(positions, out)

    def chunks(self, rows_per_chunk):
        type(self).reads += 1
        return super().chunks(rows_per_chunk)


def train(qtbot, win: MainWindow, timeout: int = 60000) -> str:
    with qtbot.waitSignal(win.runFinished, timeout=timeout) as blocker:
        qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.curves.is_redrawing(), timeout=5000)
    return blocker.args[0]


def settled(view, live: bool = False):
    """Wait until the view shows a snapshot of the current run (finished unless live) and is idle."""

    def done():
        snap = view.shown_snapshot
        return (
            snap is not None
            and snap.key == view.session.current_key
            and snap.live == live
            and snap is view.model.snapshot()
            and not view.is_busy()
        )

    return done


def n_points(item) -> int:
    x = item.getData()[0]
    return 0 if x is None else len(x)


def expected_boundary(net, mean, std, prepared) -> np.ndarray:
    both = np.concatenate([prepared.train.X, prepared.dev.X])
    x_range, y_range = data_range(both)
    with blas.limited(1):  # as the view computes it: the BLAS thread count can change the last float32 bit
        probs, _, _ = BoundaryGrid(200).compute(net, mean, std, x_range, y_range)
    pal = class_palette(probs.shape[-1]).astype(float)
    colors = np.rint(pal + MAP_LIGHTEN * (255 - pal)).astype(np.uint8)
    return boundary_rgba(probs, colors=colors)


def train_live(qtbot, win: MainWindow, view, n_images: int = 2) -> tuple[str, list]:
    """Start a long run, let the view draw n_images live pictures, stop it; returns (run, live pairs)."""
    seen: list = []

    def record():
        snap = view.shown_snapshot
        if snap is not None and snap.live and not view.is_busy() and (not seen or seen[-1][0] is not snap):
            image = view.image_rgba() if hasattr(view, "image_rgba") else view.tiles()
            seen.append((snap, None if image is None else image.copy()))
        return len(seen) >= n_images

    assert win.start_training()
    qtbot.waitUntil(record, timeout=60000)
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        win.controls.stop_button.click()
    return blocker.args[0], seen


# ---------------------------------------------------------------------------- no run, wrong data


def test_every_view_shows_a_hint_without_a_run_and_the_gradcheck_is_in_the_run_menu(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, MOONS)
    hints = {
        win.boundary_view: win.boundary_view.hint,
        win.weights_view: win.weights_view.hint,
        win.confusion_view: win.confusion_view.hint,
    }
    for view, hint in hints.items():
        win.view_tabs.setCurrentWidget(view)
        assert view.isVisible() and hint.isVisible()
        assert hint.text().startswith("Train a run")
    assert not win.boundary_view.plot.isVisible() and not win.confusion_view.plot.isVisible()
    assert win.weights_view.mode == "none"
    # the Run menu's action brings the Weights view forward and says why it cannot check
    win.view_tabs.setCurrentWidget(win.curves)
    action = win.findChild(type(win.train_action), "gradCheckAction")
    assert action is not None and action in win.menuBar().actions()[1].menu().actions()
    action.trigger()
    assert win.view_tabs.currentWidget() is win.weights_view
    assert "Train a run" in win.weights_view.gradcheck.result_label.text()
    assert not win.weights_view.gradcheck.is_running()


def test_hints_follow_the_run_waiting_for_live_weights_and_an_unreadable_model(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, MOONS)
    view = win.boundary_view
    win.view_tabs.setCurrentWidget(view)
    first = train(qtbot, win)
    win.state.update("training", epochs=100000)
    assert win.start_training()
    # at once (the run became current): no weights yet, and the hint says so
    assert view.hint.isVisible() and view.hint.text().startswith("Waiting for the first weights")
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        win.controls.stop_button.click()
    second = blocker.args[0]
    qtbot.waitUntil(settled(view), timeout=20000)
    assert view.plot.isVisible() and not view.hint.isVisible()
    (Path(first) / "model.npz").write_bytes(b"not a model")  # a broken file is shown in words
    win.runs.select(first)
    qtbot.waitUntil(lambda: view.hint.text().startswith("Cannot show"), timeout=20000)
    assert "model.npz" in view.hint.text() and not view.plot.isVisible()
    win.view_tabs.setCurrentWidget(win.weights_view)  # (the current model tries the file again)
    qtbot.waitUntil(lambda: win.weights_view.hint.text().startswith("Cannot show"), timeout=20000)
    win.runs.select(second)
    win.view_tabs.setCurrentWidget(view)
    qtbot.waitUntil(settled(view), timeout=20000)
    assert view.plot.isVisible()


def test_image_run_boundary_says_it_needs_2d_data_and_weights_show_tiles(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, SHAPES)
    train(qtbot, win)
    win.view_tabs.setCurrentWidget(win.boundary_view)
    qtbot.waitUntil(lambda: "2-D data" in win.boundary_view.hint.text(), timeout=15000)
    assert win.boundary_view.hint.isVisible() and not win.boundary_view.plot.isVisible()
    assert "8×8 colour images" in win.boundary_view.hint.text()
    win.view_tabs.setCurrentWidget(win.weights_view)
    qtbot.waitUntil(settled(win.weights_view), timeout=15000)
    assert win.weights_view.mode == "tiles" and not win.weights_view.diagram_plot.isVisible()


# ---------------------------------------------------------------------------- decision boundary


def test_boundary_live_then_final_equals_the_engine_picture_and_the_points(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, MOONS, {"training": {"epochs": 100000}})
    view = win.boundary_view
    prepared = win.state.prepared
    win.view_tabs.setCurrentWidget(view)
    run_dir, live = train_live(qtbot, win, view)
    # live pictures: each is the engine's picture of the snapshot it was drawn from, and they change
    for snap, image in live:
        assert snap.live and snap.epoch >= 1
        np.testing.assert_array_equal(
            image, expected_boundary(snap.net, snap.norm_mean, snap.norm_std, prepared)
        )
    assert live[0][0].epoch < live[-1][0].epoch
    assert not np.array_equal(live[0][1], live[-1][1])
    # the finished run: the picture of the weights in model.npz (read back independently)
    qtbot.waitUntil(settled(view), timeout=20000)
    model = load_model(Path(run_dir) / "model.npz")
    expected = expected_boundary(model.net, model.norm_mean, model.norm_std, prepared)
    assert view.image_rgba().shape == (200, 200, 4)
    np.testing.assert_array_equal(view.image_rgba(), expected)
    assert not np.array_equal(view.image_rgba(), live[0][1])  # it changed since the first live picture
    # the scatter holds exactly the prepared train and dev points; the image covers their range
    np.testing.assert_array_equal(np.column_stack(view.train_points()), prepared.train.X)
    np.testing.assert_array_equal(np.column_stack(view.dev_points()), prepared.dev.X)
    (x0, x1), (y0, y1) = data_range(np.concatenate([prepared.train.X, prepared.dev.X]))
    rect = view.image.mapRectToParent(view.image.boundingRect())
    dx, dy = (x1 - x0) / 199, (y1 - y0) / 199
    assert rect.left() == pytest.approx(x0 - dx / 2) and rect.right() == pytest.approx(x1 + dx / 2)
    assert rect.top() == pytest.approx(y0 - dy / 2) and rect.bottom() == pytest.approx(y1 + dy / 2)
    # the image's row 0 is the lowest x₂: its bottom-left pixel is the prediction at (x0, y0)
    p = model.net.predict_proba(
        ((np.array([[x0, y0]]) - model.norm_mean) / model.norm_std).astype(np.float32)
    )
    dominant = int(np.argmax(p[0]))
    pal = class_palette(2).astype(float)
    lighter = np.rint(pal + MAP_LIGHTEN * (255 - pal))
    far = np.abs(view.image_rgba()[0, 0, :3].astype(float) - lighter[1 - dominant]).sum()
    near = np.abs(view.image_rgba()[0, 0, :3].astype(float) - lighter[dominant]).sum()
    assert near < far  # the corner has the colour of the class the network predicts there
    legend = view.legend_label.text()
    assert "upper moon" in legend and "lower moon" in legend and "train" in legend and "dev" in legend
    assert "x₁" in view.plot.getPlotItem().getAxis("bottom").labelText


def test_comparison_run_boundary_is_drawn_where_its_model_says_one_half(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, MOONS)
    view = win.boundary_view
    first = train(qtbot, win)
    win.state.update("regularization", l2=2.0)
    second = train(qtbot, win)
    win.view_tabs.setCurrentWidget(view)
    qtbot.waitUntil(settled(view), timeout=20000)
    combo = view.compare_combo
    assert combo.currentData() is None and combo.itemText(0) == "none"  # default: no comparison
    assert [combo.itemData(i) for i in range(combo.count())] == [None, first]  # not the current run
    view.set_comparison(first)
    qtbot.waitUntil(lambda: not view.is_busy() and n_points(view.compare_curve) > 0, timeout=20000)
    x, y = view.compare_curve.getData()
    pts = np.column_stack([x, y])
    pts = pts[np.isfinite(pts).all(axis=1)]
    assert len(pts) > 20
    model = load_model(Path(first) / "model.npz")
    p1 = model.net.predict_proba(((pts - model.norm_mean) / model.norm_std).astype(np.float32))[:, 1]
    assert np.abs(p1 - 0.5).max() < 0.1  # on the first run's p = 0.5 line (grid interpolation)
    assert view.compare_curve.opts["pen"].color().name() == win.runs_model.color(first)
    assert win.history.get(first).name in view.legend_label.text()
    # the current run's own boundary is elsewhere: its model does not give 0.5 along that line
    own = load_model(Path(second) / "model.npz")
    p_own = own.net.predict_proba(((pts - own.norm_mean) / own.norm_std).astype(np.float32))[:, 1]
    assert np.abs(p_own - 0.5).max() > 0.1
    view.set_comparison(None)
    assert n_points(view.compare_curve) == 0


def test_probability_contour_follows_a_known_line():
    xs, ys = np.linspace(-2, 2, 101), np.linspace(-1, 3, 81)
    X, Y = np.meshgrid(xs, ys)  # X[i, j] = xs[j], Y[i, j] = ys[i]: the grid's orientation
    z = 1.5 * X - Y + 0.5
    p1 = 1 / (1 + np.exp(-z))
    probs = np.stack([1 - p1, p1], axis=-1)
    x, y = probability_contour(probs, xs, ys, 0.5)
    ok = np.isfinite(x)
    assert ok.sum() > 50
    np.testing.assert_allclose(1.5 * x[ok] - y[ok] + 0.5, 0.0, atol=1e-3)  # linear between pixel centres
    assert x[ok].min() >= xs[0] and x[ok].max() <= xs[-1] and y[ok].min() >= ys[0] and y[ok].max() <= ys[-1]
    # three classes: one line per class's p = 0.5 (classes 0 and 1 cross 0.5 at z = 0 and z = 1)
    q = 1 / (1 + np.exp(-(z - 1)))
    probs3 = np.stack([1 - p1, q, np.zeros_like(p1)], axis=-1)
    x3, y3 = probability_contour(probs3, xs, ys, 0.5)
    fin = np.isfinite(x3)
    assert np.isnan(x3).sum() == 2  # two lines, each ended by NaN
    line = 1.5 * x3[fin] - y3[fin] + 0.5
    assert (np.minimum(np.abs(line), np.abs(line - 1)) < 2e-3).all()
    assert (np.abs(line) < 2e-3).sum() > 50 and (np.abs(line - 1) < 2e-3).sum() > 50


# ---------------------------------------------------------------------------- weights


def test_weight_tiles_live_and_final_equal_the_engine_mosaic(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, SHAPES, {"training": {"epochs": 100000}})
    view = win.weights_view
    win.view_tabs.setCurrentWidget(view)
    run_dir, live = train_live(qtbot, win, view)
    for snap, image in live:
        np.testing.assert_array_equal(image, tile_mosaic(weight_tiles(snap.net.W[0], (8, 8, 3))))
    assert not np.array_equal(live[0][1], live[-1][1])
    qtbot.waitUntil(settled(view), timeout=20000)
    W = load_model(Path(run_dir) / "model.npz").net.W
    tiles = weight_tiles(W[0], (8, 8, 3))
    np.testing.assert_array_equal(view.tiles(), tile_mosaic(tiles))
    assert view.tiles().shape == (2 * 9 - 1 + 0, 3 * 9 - 1, 3)  # 6 tiles of 8x8 in 2 rows of 3, 1-pixel gaps
    vmax = np.abs(W[0]).max()
    assert f"vmax = {vmax:.3g}" in view.scale_label.text()
    # per-tile scale, channel mean and one channel: the same engine calls with those options
    view.scale_combo.setCurrentText("each tile its own scale")
    qtbot.waitUntil(lambda: view.scale() == "tile" and settled(view)(), timeout=10000)
    np.testing.assert_array_equal(view.tiles(), tile_mosaic(tiles, scale="tile"))
    view.color_combo.setCurrentText("channel mean")
    qtbot.waitUntil(
        lambda: not view.is_busy() and "mean of the channels" in view.scale_label.text(), timeout=10000
    )
    np.testing.assert_array_equal(view.tiles(), tile_mosaic(tiles, scale="tile", rgb="mean"))
    view.color_combo.setCurrentText("green channel")
    qtbot.waitUntil(lambda: not view.is_busy() and "green channel" in view.scale_label.text(), timeout=10000)
    np.testing.assert_array_equal(view.tiles(), tile_mosaic(tiles[..., 1:2], scale="tile"))
    # the histogram of every weight and its near-zero share
    hist = weight_histogram(W)
    x, y = view.hist_curve.getData()
    np.testing.assert_array_equal(y, hist.counts)
    np.testing.assert_allclose(x, hist.edges)
    assert f"{100 * hist.near_zero_share:.1f} %" in view.near_zero_label.text()
    assert f"{hist.n_weights:,} weights" in view.near_zero_label.text()


def test_l1_makes_more_weights_near_zero_than_no_penalty(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, SHAPES, {"training": {"epochs": 40}, "optimizer": {"lr": 0.02}})
    view = win.weights_view
    win.view_tabs.setCurrentWidget(view)
    shares = []
    for l1 in (0.0, 3.0):
        win.state.update("regularization", l1=l1)
        train(qtbot, win)
        qtbot.waitUntil(settled(view), timeout=20000)
        shares.append(float(re.search(r"([\d.]+) %</b>", view.near_zero_label.text()).group(1)))
        assert shares[-1] == pytest.approx(100 * view.histogram.near_zero_share, abs=0.05)
    assert shares[1] > shares[0] + 10  # L1 zeroes weights: the near-zero share grows


def test_2d_data_shows_the_network_diagram_instead_of_tiles(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, MOONS, {"model": {"hidden": [4, 3]}})
    view = win.weights_view
    run_dir = train(qtbot, win)
    win.view_tabs.setCurrentWidget(view)
    qtbot.waitUntil(settled(view), timeout=20000)
    assert view.mode == "diagram" and view.diagram_plot.isVisible() and not view.tiles_plot.isVisible()
    assert view.tiles() is None and not view.scale_combo.isVisible()
    model = load_model(Path(run_dir) / "model.npz")
    d = network_diagram(model.net.W, model.net.b)
    # every weight is one line; the thickest class holds the largest |w| in its sign's colour
    n_lines = sum(n_points(item) for item in view.edge_items.values()) // 2
    assert n_lines == 2 * 4 + 4 * 3 + 3 * 2 == len(d.weights)
    big = float(d.weights[np.argmax(np.abs(d.weights))])
    assert n_points(view.edge_items[(4, big >= 0)]) >= 2
    xs, _ = view.node_scatter.getData()
    assert len(xs) == 2 + 4 + 3 + 2
    # small hidden layers: each node holds its unit's activation map over the input plane
    assert len(view._node_maps) == 4 + 3 and view._node_maps[0].image.shape == (24, 24, 3)
    assert "Line thickness = |w|" in view.scale_label.text()


# ---------------------------------------------------------------------------- confusion matrix


def test_confusion_counts_click_highlights_cell_members_and_test_only_after_evaluation(qtbot, tmp_path):
    SpySet.reads = 0
    win = make_window(
        qtbot, tmp_path, MOONS, {"model": {"hidden": [3]}, "training": {"epochs": 4}}, spy_test=True
    )
    view = win.confusion_view
    run_dir = train(qtbot, win)
    win.view_tabs.setCurrentWidget(view)
    qtbot.waitUntil(settled(view), timeout=20000)
    prepared = win.state.prepared
    model = load_model(Path(run_dir) / "model.npz")
    probs = predict_raw(model.net, prepared.dev.X, model.norm_mean, model.norm_std)
    expected = confusion_matrix(prepared.dev.y, predicted_classes(probs), 2)
    np.testing.assert_array_equal(view.counts, expected)
    for t in range(2):
        for p in range(2):
            assert view.cell_text(t, p) == f"{expected[t, p]:,}"
    # the matrix sits in the middle of the tab, its plot about as wide as tall (square cells)
    plot = view.plot
    assert abs(plot.x() + plot.width() / 2 - view.width() / 2) <= 6
    assert plot.width() < plot.height() + 200 or plot.width() == 240
    final = load_run(run_dir).summary["final_metrics"]
    assert np.trace(expected) / expected.sum() == pytest.approx(final["dev_acc"])
    assert view.set_name == "dev" and SpySet.reads == 0  # the test set was never read
    assert not view.set_combo.model().item(1).isEnabled()
    # a real click on the off-diagonal cell with the most members rings exactly them on the boundary
    off = expected.copy()
    np.fill_diagonal(off, -1)
    t, p = (int(v) for v in np.unravel_index(np.argmax(off), off.shape))
    members = cell_members(prepared.dev.y, probs, t, p)
    assert len(members.indices) > 0
    qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=view.cell_center(t, p))
    qtbot.waitUntil(lambda: win.view_tabs.currentWidget() is win.boundary_view, timeout=5000)
    np.testing.assert_array_equal(view.selected.indices, members.indices)
    np.testing.assert_array_equal(win.boundary_view.highlighted_points(), prepared.dev.X[members.indices])
    assert SpySet.reads == 0
    # after Evaluate on test the test set can be shown
    with qtbot.waitSignal(win.testEvaluated, timeout=20000):
        assert win.evaluate_test(confirm=False)
    assert view.set_combo.model().item(1).isEnabled()
    win.view_tabs.setCurrentWidget(view)
    view.set_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: view.set_name == "test" and not view.is_busy(), timeout=20000)
    assert SpySet.reads > 0
    test_probs = predict_raw(model.net, prepared.test.X, model.norm_mean, model.norm_std)
    np.testing.assert_array_equal(
        view.counts, confusion_matrix(prepared.test.y, predicted_classes(test_probs), 2)
    )
    summary = load_run(run_dir).summary
    assert np.trace(view.counts) / view.counts.sum() == pytest.approx(summary["test_acc"])


def test_confusion_cell_click_opens_a_gallery_of_the_images(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, SHAPES, {"training": {"epochs": 3}})
    view = win.confusion_view
    run_dir = train(qtbot, win)
    win.view_tabs.setCurrentWidget(view)
    qtbot.waitUntil(settled(view), timeout=20000)
    prepared = win.state.prepared
    model = load_model(Path(run_dir) / "model.npz")
    probs = predict_raw(model.net, prepared.dev.X, model.norm_mean, model.norm_std)
    counts = confusion_matrix(prepared.dev.y, predicted_classes(probs), 3)
    np.testing.assert_array_equal(view.counts, counts)
    t, p = (int(v) for v in np.unravel_index(np.argmax(counts), counts.shape))
    qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=view.cell_center(t, p))
    gallery = view.gallery
    qtbot.waitUntil(gallery.isVisible, timeout=5000)
    members = cell_members(prepared.dev.y, probs, t, p)
    classes = prepared.classes
    assert gallery.texts() == [f"p({classes[p]})={c:.2f}\ntrue: {classes[t]}" for c in members.confidence]
    np.testing.assert_array_equal(gallery.indices, members.indices)
    assert all(not gallery.list.item(i).icon().isNull() for i in range(gallery.list.count()))
    assert f"True {classes[t]}, predicted {classes[p]}" in gallery.title.text()
    assert win.view_tabs.currentWidget() is view  # image data: no jump to the boundary view


# ---------------------------------------------------------------------------- gradient check


def test_gradient_check_button_shows_relative_difference_and_passed(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, MOONS, {"regularization": {"l2": 0.3, "l1": 0.01}})
    run_dir = train(qtbot, win)
    win.view_tabs.setCurrentWidget(win.weights_view)
    panel = win.weights_view.gradcheck
    qtbot.waitUntil(lambda: win.current_model.snapshot() is not None, timeout=20000)
    with qtbot.waitSignal(panel._runner.finished, timeout=60000):
        qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    model = load_model(Path(run_dir) / "model.npz")
    expected = check_prepared(model.net, win.state.prepared, l2=0.3, l1=0.01, n_samples=32)
    label = win.findChild(QLabel, "gradCheckResult").text()
    mantissa, exponent = f"{expected['relative_difference']:.3e}".split("e")
    assert f"relative difference {mantissa}e{int(exponent)}" in label
    assert expected["passed"] and "passed" in label and "FAILED" not in label
    assert panel.result["relative_difference"] == pytest.approx(expected["relative_difference"], rel=1e-9)
    assert "dropout" in panel.result["note"] and "float64" in panel.rule_label.text()
    assert "penalty" in panel.rule_label.toolTip() or "L2/L1" in panel.rule_label.text()


def test_gradient_check_of_a_big_network_shows_progress_and_can_be_cancelled(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, MOONS, {"model": {"hidden": [400, 400]}, "training": {"epochs": 1}})
    train(qtbot, win)
    panel = win.weights_view.gradcheck
    qtbot.waitUntil(lambda: win.current_model.snapshot() is not None, timeout=20000)
    win.findChild(type(win.train_action), "gradCheckAction").trigger()  # the Run menu's way in
    assert win.view_tabs.currentWidget() is win.weights_view
    assert panel.is_running() and panel.progress.isVisible() and panel.cancel_button.isEnabled()
    assert panel.progress.maximum() == (2 * 400 + 400) + (400 * 400 + 400) + (400 * 2 + 2)
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=30000)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert "cancelled" in panel.result_label.text() and panel.button.isEnabled()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=30000)
    assert panel.result is None


# ---------------------------------------------------------------------------- weight decay


def test_weight_decay_label_shows_the_shrink_factor_for_typed_values(qtbot):
    state = ExperimentState(from_dict({**MOONS, "optimizer": {"name": "sgd", "lr": 0.1}}))
    sources = load_sources(state.config.data)
    state.set_data(sources, prepare_from_sources(state.config, sources))
    m = len(state.prepared.train)
    panel = ModelPanel(state)
    qtbot.addWidget(panel)
    label = panel.findChild(QLabel, "weightDecayLabel")
    assert "off" in label.text()  # λ = 0
    for name, text in (("lrSpin", "0.05"), ("l2Spin", "0.7")):
        spin = panel.findChild(QDoubleSpinBox, name)
        spin.selectAll()
        qtbot.keyClicks(spin, text)
        qtbot.keyClick(spin, Qt.Key.Key_Return)
    expected = 1 - 0.05 * 0.7 / m
    digits = re.search(r"W ← 0\.(\d+) · W", label.text()).group(1)
    shown = float("0." + digits)
    assert shown == pytest.approx(expected, abs=0.5 * 10 ** -len(digits))  # rounded as shown
    assert 1 - shown == pytest.approx(0.05 * 0.7 / m, rel=0.01)  # enough digits to read the shrink
    assert f"1 − {0.05 * 0.7 / m:.3g}" in label.text() and f"m = {m}" in label.text()
    assert "Exact for SGD" in label.text()
    state.update("optimizer", name="adam")
    assert "Adam rescales it" in label.text() and "AdamW" in label.text()
    state.update("optimizer", name="momentum")
    assert "Momentum" in label.text() and "on average" in label.text()


# ---------------------------------------------------------------------------- the views' job runner


def test_latest_job_runs_one_job_at_a_time_keeps_only_the_newest_and_spaces_them(qtbot):
    import threading
    import time

    from gui.views.latest_runner import LatestJob

    job = LatestJob(min_interval=0.3)
    gate = threading.Event()
    ran: list[tuple[int, float]] = []
    results: list[int] = []
    started: list[float] = []  # when the runner started each job (on the GUI thread)
    job.finished.connect(results.append)
    job.started.connect(lambda: started.append(time.monotonic()))

    def make(n: int, wait: bool = False):
        def fn(_ctx):
            ran.append((n, time.monotonic()))
            if wait:
                gate.wait(10)
            return n

        return fn

    job.submit(make(1, wait=True))
    job.submit(make(2))  # waits ...
    job.submit(make(3))  # ... and is replaced by the newest
    assert job.is_busy()
    qtbot.wait(50)
    assert [n for n, _ in ran] == [1]  # never two at once
    gate.set()
    qtbot.waitUntil(lambda: not job.is_busy(), timeout=5000)
    assert results == [1, 3] and [n for n, _ in ran] == [1, 3]
    assert len(started) == 2 and started[1] - started[0] >= 0.3  # min_interval between starts
    job.submit(make(4), spaced=False)  # a user's choice or a finished run's picture: no wait
    assert len(started) == 3 and started[2] - started[1] < 0.3
    qtbot.waitUntil(lambda: not job.is_busy(), timeout=5000)
    assert results == [1, 3, 4]
    job.shutdown()


def test_view_jobs_run_in_a_nicer_thread_than_the_window():
    import os
    import sys
    import threading

    from gui.views.latest_runner import VIEW_NICE, niced

    seen = {}

    def job(_ctx):
        tid = threading.get_native_id()
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, tid)
        return 1

    t = threading.Thread(target=lambda: niced(job)(None))
    t.start()
    t.join(10)
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    linux = sys.platform.startswith("linux")  # elsewhere a thread id is no target for setpriority
    assert seen["nice"] == (max(VIEW_NICE, base) if linux else base)  # the job's thread, not the caller's
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
