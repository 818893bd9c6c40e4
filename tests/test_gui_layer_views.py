"""The insight views in the window (issue 9): inside the network, depth lab, why normalize, loss
landscape, and the memory estimate next to the settings (issue 8). Each drawn number is checked
against the engine's own computation, done here independently."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QStyle, QStyleOptionSlider

from engine.batches import EvalSet
from engine.config import from_dict
from engine.experiment import run_experiment
from engine.insight.depthlab import DepthLab
from engine.insight.hints import layers_hint
from engine.insight.landscape import eval_sets, loss_slice_1d, rise_width
from engine.insight.layers import fixed_batch, layer_statistics
from engine.insight.normalize_demo import demo_data, normalization_demo
from engine.prepare import load_sources, prepare_from_sources
from engine.runs import load_model, load_run
from gui.state import ExperimentState
from gui.views import depth_lab_view
from gui.views.curves_view import DEV_COLOR
from gui.views.normalize_view import LEVEL_QUANTILES, STEPS, WITHIN
from gui.window import MainWindow
from tests.test_gui_training import make_window


def _log_values(item) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of an item on a log-y plot, y back in linear units."""
    x, y = item.getData()
    return np.asarray(x), 10 ** np.asarray(y)


def _assert_stats_equal(shown: list[dict], expected: list[dict]) -> None:
    assert len(shown) == len(expected)
    for a, b in zip(shown, expected):
        assert a.keys() == b.keys()
        for k in b:
            if isinstance(b[k], dict):
                assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-30)
            elif isinstance(b[k], float):
                assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-30), k
            else:
                assert a[k] == b[k], k


# ---------------------------------------------------------------- inside the network


def test_activations_view_draws_live_statistics_then_the_final_weights(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"model": {"hidden": [16, 16, 16]}, "training": {"epochs": 20000}})
    view = win.activations_view
    assert view.shown is None and "Train a run" in view.message_label.text()
    win.view_tabs.setCurrentWidget(view)  # visible: the training process measures the statistics
    arrived: list = []
    win.current_model.statsArrived.connect(lambda key, epoch, stats: arrived.append((key, epoch, stats)))
    assert win.start_training()
    key = win.session.current_key
    # live statistics arrive through CurrentModel.statsArrived and are drawn (at most 10 times a second)
    qtbot.waitUntil(lambda: len(arrived) >= 3 and view.shown is arrived[-1][2], timeout=90000)
    assert view.shown_what == "live" and view.shown_key == key
    stats = view.shown
    assert [s["name"] for s in stats] == ["hidden 1", "hidden 2", "hidden 3", "output"]
    np.testing.assert_array_equal(view.medians.getData()[1], [s["act_percentiles"]["p50"] for s in stats])
    np.testing.assert_allclose(_log_values(view.std_item)[1], [s["act_std"] for s in stats], rtol=1e-9)
    history = view.live_history[key]
    assert [e for e, _ in history] == [e for k, e, _ in arrived if k == key]
    epochs, values = view.epoch_series(0, "act_std")
    np.testing.assert_array_equal(epochs, [e for e, _ in history])
    np.testing.assert_allclose(10**values, [s[0]["act_std"] for _, s in history], rtol=1e-9)
    assert f"epoch {history[-1][0]}" in view.source_label.text()

    with qtbot.waitSignal(win.runFinished, timeout=60000):
        win.controls.stop_button.click()
    qtbot.waitUntil(lambda: view.shown_what == "final" and view.shown_key == key, timeout=30000)
    # the final weights' statistics on the same fixed batch, computed here from model.npz
    model = load_model(Path(key) / "model.npz")
    train = win.state.prepared.train
    X, y = fixed_batch(train, train.y, model.norm_mean, model.norm_std, n=256, seed=0, dtype=model.net.dtype)
    expected = [s.to_dict() for s in layer_statistics(model.net, X, y)]
    _assert_stats_equal(view.shown, expected)
    assert view.hint_label.text() == layers_hint(expected)
    np.testing.assert_allclose(_log_values(view.grad_item)[1], [s["grad_std"] for s in expected], rtol=1e-9)
    np.testing.assert_allclose(
        _log_values(view.wgrad_item)[1], [s["weight_grad_norm"] for s in expected], rtol=1e-9
    )
    heights = view.dead_bars.opts["height"]
    np.testing.assert_allclose(heights, [100 * s["dead_share"] for s in expected[:-1]])
    assert "Dead ReLUs" in view.dead_caption.text()
    lo, hi = view.outer_bars.opts["y0"], view.outer_bars.opts["y1"]
    np.testing.assert_array_equal(lo, [s["act_percentiles"]["p5"] for s in expected])
    np.testing.assert_array_equal(hi, [s["act_percentiles"]["p95"] for s in expected])
    # the axis fits the hidden layers; logits past it are named with their percentiles
    (_, _), (y0, y1) = view.bands_plot.getPlotItem().getViewBox().viewRange()
    out = expected[-1]["act_percentiles"]
    note = view.logits_note.toPlainText()
    assert ("p99" in note) == (out["p99"] > y1) and ("p1 " in note) == (out["p1"] < y0)
    if out["p99"] > y1:
        assert f"p99 {out['p99']:.3g}" in note
    # the over-epochs history stays after the run ended
    assert len(view.epoch_series(0, "act_std")[0]) == len(history) >= 3

    # the landscape of the run just trained: the view changes from its hint to curves
    land = win.landscape_view
    win.view_tabs.setCurrentWidget(land)
    assert "Press Compute" in land.message_label.text() and not land.items()
    land.points_spin.setValue(7)
    land.directions_spin.setValue(1)
    qtbot.mouseClick(land.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(land.results) and not land.is_computing(), timeout=60000)
    assert [r.key for r in land.results] == [key] and len(land.items()) == 2  # train and dev


def test_activations_view_shows_tanh_saturation_and_a_hint_when_nothing_to_show(qtbot, tmp_path):
    root = tmp_path / "runs"
    cfg = from_dict(
        {
            "data": {"source": "builtin:moons", "n_samples": 200},
            "model": {"hidden": [12, 12], "activation": "tanh", "init": "random", "init_scale": 3.0},
            "training": {"epochs": 3},
        }
    )
    for _ in run_experiment(cfg, root / "run-0").records():
        pass
    state = ExperimentState(cfg)
    sources = load_sources(cfg.data)
    state.set_data(sources, prepare_from_sources(cfg, sources))
    win = MainWindow(state, runs_dir=root)
    qtbot.addWidget(win)
    win.show_dialogs = False
    win.show()
    view = win.activations_view
    win.view_tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.shown_what == "final", timeout=30000)
    model = load_model(root / "run-0")
    train = state.prepared.train
    X, y = fixed_batch(train, train.y, model.norm_mean, model.norm_std, dtype=model.net.dtype)
    expected = [s.to_dict() for s in layer_statistics(model.net, X, y)]
    _assert_stats_equal(view.shown, expected)
    assert "Saturated" in view.dead_caption.text()
    np.testing.assert_allclose(
        view.dead_bars.opts["height"], [100 * s["saturated_share"] for s in expected[:-1]]
    )
    assert expected[0]["saturated_share"] > 0.3  # random × 3 weights saturate tanh
    win.session.set_current(None)
    assert view.stack.currentIndex() == 0 and "Train a run" in view.message_label.text()


# ---------------------------------------------------------------- depth lab


def _wait_drawn(qtbot, lab, settings) -> None:
    qtbot.waitUntil(lambda: lab.shown_settings == settings and not lab.is_computing(), timeout=20000)


@pytest.mark.parametrize("thread", ["worker", "gui"])
def test_depth_lab_curves_follow_a_real_slider_move(qtbot, tmp_path, monkeypatch, thread):
    # the lab computes on the GUI thread while a profile measures under SYNC_LIMIT, else in its
    # worker thread: both paths must draw the same numbers
    monkeypatch.setattr(depth_lab_view, "SYNC_LIMIT", 0.0 if thread == "worker" else 60.0)
    win = make_window(qtbot, tmp_path)
    lab = win.depth_lab
    win.view_tabs.setCurrentWidget(lab)
    lab.set_settings(depth=50, width=100, activation="linear", init="xavier", scale=1.0)
    _wait_drawn(qtbot, lab, (50, 100, "linear", "xavier", 1.0))
    lab.scale_slider.setFocus()
    qtbot.keyClick(lab.scale_slider, Qt.Key.Key_PageUp)  # a page is 10 positions: scale 1.10
    assert lab.scale_slider.value() == 110
    _wait_drawn(qtbot, lab, (50, 100, "linear", "xavier", 1.1))
    expected = DepthLab(50, 100, "linear", "xavier").profile(1.1)
    x, act = _log_values(lab.act_item)
    np.testing.assert_array_equal(x, np.arange(52))
    np.testing.assert_allclose(act, expected.activation_std, rtol=1e-9)
    np.testing.assert_allclose(_log_values(lab.grad_item)[1], expected.grad_norm, rtol=1e-9)
    # a linear network's factor per layer: scale · √(width · var) with Xavier's var = 1/width
    factor = 1.1 * math.sqrt(100 * (1 / 100))
    assert lab.linear_factor() == pytest.approx(factor) and lab.profile.factor == pytest.approx(factor)
    assert f"= {factor:.4g}" in lab.factor_label.text()
    theory_x, theory = _log_values(lab.act_theory_item)
    np.testing.assert_allclose(theory, expected.activation_std[0] * factor**theory_x, rtol=1e-9)
    # and the measured curve follows it: the geometric mean factor over 50 layers
    slope = math.exp(np.polyfit(np.arange(51), np.log(act[:51]), 1)[0])
    assert slope == pytest.approx(factor, rel=0.03)
    assert "growing" in lab.hint_label.text() or "exploding" in lab.hint_label.text()

    # a burst of moves: the lab ends on the last one, never behind the slider
    for _ in range(4):
        qtbot.keyClick(lab.scale_slider, Qt.Key.Key_PageDown)
    _wait_drawn(qtbot, lab, (50, 100, "linear", "xavier", 0.7))
    np.testing.assert_allclose(
        _log_values(lab.act_item)[1],
        DepthLab(50, 100, "linear", "xavier").profile(0.7).activation_std,
        rtol=1e-9,
    )
    assert "vanishing" in lab.hint_label.text()
    assert len(lab.latencies) >= 2 and all(t > 0 for t in lab.latencies)
    assert (lab.sync_count > 0) == (thread == "gui")  # the first profile builds the network in the worker
    # while the handle is held the curves are drawn without antialiasing (cheaper), after it with
    slider = lab.scale_slider
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    handle = (
        slider.style()
        .subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, slider)
        .center()
    )
    qtbot.mousePress(slider, Qt.MouseButton.LeftButton, pos=handle)
    assert slider.isSliderDown() and lab.act_item.opts["antialias"] is False
    qtbot.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=handle)
    assert lab.act_item.opts["antialias"] is True


def test_depth_lab_relu_with_he_stays_level_and_zeros_pass_nothing(qtbot):
    from gui.views.depth_lab_view import DepthLabView

    lab = DepthLabView()
    qtbot.addWidget(lab)
    lab.show()
    lab.set_settings(depth=20, width=64, activation="relu", init="he", scale=1.0)
    _wait_drawn(qtbot, lab, (20, 64, "relu", "he", 1.0))
    assert lab.hint_label.text().endswith("level (within a factor 10)")
    theory_x, _ = lab.act_theory_item.getData()
    assert theory_x is None or len(theory_x) == 0  # the theory line is for linear activations
    assert "He: W ~ N(0, 2/n_in) × 1" in lab.formula_label.text()
    lab.set_settings(init="zeros")
    _wait_drawn(qtbot, lab, (20, 64, "relu", "zeros", 1.0))
    assert lab.hint_label.text().startswith("every activation and gradient is 0")
    # only the input's std is drawn: zeros have no place on a log axis
    assert np.isfinite(lab.act_item.getData()[1]).sum() == 1


# ---------------------------------------------------------------- why normalize


def _quadratic_cost(scale: float, normalized: bool):
    """J(w) = (1/2n)·‖Xw − y‖² of the demo's problem and its gradient, written out here."""
    X, y = demo_data(scale)
    if normalized:
        X = X / X.std(axis=0)
    n = len(y)
    cost = lambda w: ((w @ X.T - y) ** 2).sum(axis=-1) / (2 * n)  # noqa: E731
    grad = lambda w: (w @ X.T - y) @ X / n  # noqa: E731
    return cost, grad


def test_why_normalize_plots_hold_the_demo_paths_and_contours(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    view = win.normalize_view
    win.view_tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.result is not None and not view.is_computing(), timeout=20000)
    scale, lr_fraction = view.settings()
    assert (scale, lr_fraction) == (20.0, 0.9)
    demo = normalization_demo(scale=scale, steps=STEPS, lr_fraction=lr_fraction)
    counts = {}
    for name in ("raw", "normalized", "normalized_own_lr"):
        pic = getattr(demo, name)
        dist = np.linalg.norm(pic.path - pic.minimum, axis=1)
        counts[name] = int(np.flatnonzero(dist <= WITHIN * dist[0])[0])
    assert counts["normalized_own_lr"] * 20 < counts["raw"]
    for name, item in (("raw", view.path_items["raw"]), ("normalized", view.path_items["normalized"])):
        x, y = item.getData()
        np.testing.assert_array_equal(np.column_stack([x, y]), getattr(demo, name).path[: counts[name] + 1])
    x, y = view.own_item.getData()
    np.testing.assert_array_equal(
        np.column_stack([x, y]), demo.normalized_own_lr.path[: counts["normalized_own_lr"] + 1]
    )
    assert f"{counts['raw']} steps to get within 1 % of the minimum" in view.raw_label.text()
    assert f"{counts['normalized_own_lr']} steps" in view.norm_label.text()
    assert f"κ = {demo.raw.condition_number:.0f}" in view.raw_caption.text()
    # contour lines: every point lies on one of the levels (quantiles of the demo's cost grid)
    for name, normalized in (("raw", False), ("normalized", True)):
        pic = getattr(demo, name)
        levels = np.quantile(pic.cost, LEVEL_QUANTILES)
        np.testing.assert_array_equal(view.result["levels"][name], levels)
        x, y = view.contour_items[name].getData()
        pts = np.column_stack([x, y])
        pts = pts[np.isfinite(pts).all(axis=1)]
        cost, grad = _quadratic_cost(scale, normalized)
        # distance of each point from the true contour line of its nearest level, |J − c| / |∇J|:
        # marching squares interpolates linearly within a grid cell, so within a cell of it
        gap = np.abs(cost(pts)[:, None] - levels[None, :]) / np.linalg.norm(grad(pts), axis=1)[:, None]
        cell = pic.w1[1] - pic.w1[0]
        assert gap.min(axis=1).max() < cell, name
        assert len(np.unique(gap.argmin(axis=1))) == len(levels)  # every level is drawn
    # a smaller scale: a rounder raw problem
    view.scale_spin.setValue(5.0)
    qtbot.waitUntil(
        lambda: view.result["demo"].raw.condition_number < 50 and not view.is_computing(), timeout=20000
    )
    demo5 = normalization_demo(scale=5.0, steps=STEPS, lr_fraction=0.9)
    x, y = view.path_items["raw"].getData()
    np.testing.assert_array_equal(np.column_stack([x, y])[:5], demo5.raw.path[:5])


# ---------------------------------------------------------------- loss landscape

BASE = {
    "data": {"source": "builtin:moons", "n_samples": 240, "noise": 0.3},
    "model": {"hidden": [24, 24]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 60, "batch_size": 32},
}


def test_landscape_centre_is_the_evaluated_dev_loss_and_a_compared_run_has_its_colour(qtbot, tmp_path):
    root = tmp_path / "runs"
    base = from_dict(BASE)
    sources = load_sources(base.data)
    data = prepare_from_sources(base, sources)
    for name, reg in (("run-0", {}), ("run-1", {"l2": 1.0})):
        raw = json.loads(json.dumps(BASE))
        raw["regularization"] = reg
        for _ in run_experiment(from_dict(raw), root / name, data=data).records():
            pass
    state = ExperimentState(base)
    state.set_data(sources, data)
    win = MainWindow(state, runs_dir=root)
    qtbot.addWidget(win)
    win.show_dialogs = False
    win.show()
    plain, l2 = str(root / "run-0"), str(root / "run-1")
    assert win.session.current_key == l2
    view = win.landscape_view
    win.view_tabs.setCurrentWidget(view)
    view.points_spin.setValue(11)
    view.directions_spin.setValue(2)
    view.span_spin.setValue(0.8)
    qtbot.waitUntil(view.button.isEnabled, timeout=20000)
    qtbot.mouseClick(view.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(view.results) and not view.is_computing(), timeout=60000)
    assert [(r.key, r.current) for r in view.results] == [(l2, True), (plain, False)]
    for rs in view.results:
        model = load_model(Path(rs.key) / "model.npz")
        dtype = model.config.training.dtype
        dev = EvalSet(data.dev, model.norm_mean, model.norm_std, dtype)
        assert rs.slice.loss["dev"][5] == dev.evaluate(model.net)[0]  # exactly evaluate's number
        summary = load_run(rs.key).summary
        assert rs.slice.loss["dev"][5] == pytest.approx(summary["final_metrics"]["dev_loss"], rel=1e-5)
        # the whole slice, computed here the same way
        sets = eval_sets(data, model.norm_mean, model.norm_std, dtype, names=("dev",))
        sets.update(
            eval_sets(data, model.norm_mean, model.norm_std, dtype, names=("train",), max_samples=5000)
        )
        again = loss_slice_1d(model.net, sets, points=11, span=0.8, n_directions=2, seed=0)
        for set_name in ("train", "dev"):
            np.testing.assert_array_equal(rs.slice.loss[set_name], again.loss[set_name])
        assert rs.width["dev"] == rise_width(again.alphas, again.loss["dev"], 0.1)
    items = {(i.property("run_key"), i.property("set_name")): i for i in view.items()}
    assert set(items) == {(l2, "dev"), (l2, "train"), (plain, "dev"), (plain, "train")}
    bold, other = items[(l2, "dev")].opts["pen"], items[(plain, "dev")].opts["pen"]
    assert bold.color().name() == QColor(DEV_COLOR).name() and bold.widthF() == 3.5
    assert other.color().name() == QColor(win.runs_model.color(plain)).name() and other.widthF() < 3.5
    np.testing.assert_array_equal(items[(plain, "dev")].getData()[1], view.results[1].slice.loss["dev"])
    for rs in view.results:
        w = rs.width["dev"]
        width = f"{w:.3g}" if w is not None else "&gt; 1.6 (flatter than the slice)"
        assert (
            f"dev loss {rs.slice.loss['dev'][5]:.4g} at α = 0, width {width}" in view.sharpness_label.text()
        )
    assert "run-0" in view.legend_label.text() and "run-1" in view.legend_label.text()
    # a run whose Show box is unticked is not compared
    win.set_run_visible(plain, False)
    qtbot.mouseClick(view.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(view.results) and not view.is_computing(), timeout=60000)
    assert [r.key for r in view.results] == [l2]


def test_landscape_two_d_slice_and_cancel(qtbot, tmp_path):
    root = tmp_path / "runs"
    cfg = from_dict(BASE)
    for _ in run_experiment(cfg, root / "run-0").records():
        pass
    state = ExperimentState(cfg)
    sources = load_sources(cfg.data)
    state.set_data(sources, prepare_from_sources(cfg, sources))
    win = MainWindow(state, runs_dir=root)
    qtbot.addWidget(win)
    win.show_dialogs = False
    win.show()
    view = win.landscape_view
    win.view_tabs.setCurrentWidget(view)
    view.points_spin.setValue(9)
    view.directions_spin.setValue(1)
    view.two_d_check.setChecked(True)
    qtbot.waitUntil(view.button.isEnabled, timeout=20000)
    view.button.click()
    qtbot.waitUntil(lambda: view.slice_2d is not None and not view.is_computing(), timeout=60000)
    s2 = view.slice_2d
    assert s2.loss.shape == (9, 9) and view.panel_2d.isVisible()
    # the 2-D slice's middle row runs along the 1-D slice's first direction
    np.testing.assert_allclose(s2.loss[4], view.results[0].slice.per_direction["dev"][0], rtol=1e-12)
    # cancel: a second press stops the computation and leaves no result half drawn
    view.points_spin.setValue(401 if view.points_spin.maximum() >= 401 else view.points_spin.maximum())
    view.directions_spin.setValue(view.directions_spin.maximum())
    view.button.click()
    assert view.button.text() == "Cancel"
    view.button.click()
    qtbot.waitUntil(lambda: not view.is_computing(), timeout=30000)
    assert view.button.text() == "Compute" and not view.results
