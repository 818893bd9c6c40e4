"""Training from the window: real clicks, live curves, pause/resume/stop, close while training,
diagnosis, export, test-set evaluation and a diverging run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDoubleSpinBox

from engine.config import ConfigError, from_dict
from engine.diagnosis import diagnose
from engine.errors import DataError
from engine.prepare import load_sources, prepare_from_sources
from engine.runs import load_run
from gui.state import ExperimentState
from gui.window import MainWindow

TINY = {
    "data": {"source": "builtin:moons", "n_samples": 200, "noise": 0.2, "split": [0.6, 0.2, 0.2]},
    "diagnosis": {"human_error": 0.0},
    "model": {"hidden": [8]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 5, "batch_size": 32},
}


def make_window(qtbot, tmp_path: Path, overrides: dict | None = None, preload: bool = True) -> MainWindow:
    """A shown window on TINY (+ overrides). preload: hand the data to the state first, as the
    data panel would after loading (saves the panel's debounced load in most tests)."""
    raw = json.loads(json.dumps(TINY))
    for section, fields in (overrides or {}).items():
        raw.setdefault(section, {}).update(fields)
    state = ExperimentState(from_dict(raw))
    if preload:
        sources = load_sources(state.config.data)
        state.set_data(sources, prepare_from_sources(state.config, sources))
    win = MainWindow(state, runs_dir=tmp_path / "runs")
    qtbot.addWidget(win)
    win.show_dialogs = False
    win.show()
    qtbot.waitUntil(lambda: not win.problems(), timeout=15000)
    return win


def train(qtbot, win: MainWindow, timeout: int = 30000) -> str:
    with qtbot.waitSignal(win.runFinished, timeout=timeout) as blocker:
        qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_train_click_fills_curves_table_and_run_dir(qtbot, tmp_path, no_dangling_threads):
    win = make_window(qtbot, tmp_path, preload=False)  # the data panel loads the data itself
    run_dir = train(qtbot, win)
    run = load_run(run_dir)
    assert run.summary["stop_reason"] == "completed"
    assert [m["epoch"] for m in run.metrics] == [1, 2, 3, 4, 5]
    # one point per epoch, the very values written to metrics.jsonl
    for key in ("train_loss", "dev_loss", "train_acc", "dev_acc", "weight_norm"):
        x, y = win.curves.series_item(key).getData()
        assert list(x) == [1, 2, 3, 4, 5]
        np.testing.assert_allclose(y, [m[key] for m in run.metrics], rtol=1e-12)
    grads = win.curves.grad_items()
    assert len(grads) == 2  # hidden [8] -> two weight layers
    for i, item in enumerate(grads):
        # the plot is in log-y mode, so getData() returns log10 of the values
        np.testing.assert_allclose(
            10 ** item.getData()[1], [m["grad_norms"][i] for m in run.metrics], rtol=1e-9
        )
    # the run is in the table with its numbers
    row = win.runs.row_texts(run_dir)
    assert row["Epochs"] == "5" and row["Stop"] == "completed"
    best = run.summary["best_epoch"]
    assert row["Dev acc @ best"] == f"{run.metrics[best - 1]['dev_acc']:.4f}"
    # 2-8-2 network: (2*8 + 8) + (8*2 + 2) = 42 float32 parameters
    assert row["Params"].startswith("42 ") and "168 B" in row["Params"]
    assert win.curves.best_epoch() == best
    assert not win.is_training() and win.controls.train_button.isEnabled()
    assert win.controls.progress.value() == 5 and win.controls.progress.maximum() == 5
    assert "samples/s" in win.speed_status.text()
    assert win.memory_status.text() == "params 42 · 0.2 KB"  # 168 bytes
    # the diagnosis shows the engine's numbers for the final epoch
    last = run.metrics[-1]
    d = diagnose(1 - last["train_acc"], 1 - last["dev_acc"], 0.0)
    assert win.diagnosis.bias_label.text() == f"{100 * d.avoidable_bias:.2f} %"
    assert win.diagnosis.variance_label.text() == f"{100 * d.variance:.2f} %"
    assert d.verdict in win.diagnosis.verdict_label.text()
    assert no_dangling_threads  # the run did go through a QThread


def test_train_is_refused_while_running_and_redraw_is_throttled(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 300}})
    with qtbot.waitSignal(win.runFinished, timeout=60000):
        assert win.start_training()
        assert not win.controls.train_button.isEnabled()
        assert win.controls.stop_button.isEnabled()
        assert win.start_training() is False  # a second run cannot start
    epochs = len(win.curves.epochs())
    assert epochs == 300
    assert len(list((tmp_path / "runs").iterdir())) == 1
    # redraws come from a 10 Hz timer, not one per record
    assert win.curves.redraw_count < epochs / 2


def test_l2_and_dropout_typed_in_panel_reach_the_run_on_disk(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    l2 = win.findChild(QDoubleSpinBox, "l2Spin")
    keep = win.findChild(QDoubleSpinBox, "keepProbSpin")
    for spin, text in ((l2, "0.01"), (keep, "0.8")):
        spin.selectAll()
        qtbot.keyClicks(spin, text)
        qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert win.state.config.regularization.l2 == pytest.approx(0.01)
    assert win.state.config.regularization.keep_prob == pytest.approx(0.8)
    run_dir = train(qtbot, win)
    on_disk = json.loads((Path(run_dir) / "config.json").read_text())
    assert on_disk["regularization"]["l2"] == pytest.approx(0.01)
    assert on_disk["regularization"]["keep_prob"] == pytest.approx(0.8)
    assert "l2=0.01" in win.runs.row_texts(run_dir)["Settings"]


def test_pause_resume_then_stop_keeps_a_cancelled_run(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 5000}})
    win.start_training()
    qtbot.waitUntil(lambda: len(win.curves.epochs()) >= 2, timeout=20000)
    qtbot.mouseClick(win.controls.pause_button, Qt.MouseButton.LeftButton)
    assert win.worker.is_paused() and win.controls.pause_button.text() == "Resume"
    qtbot.wait(150)  # let an epoch in flight arrive
    n = len(win.curves.epochs())
    qtbot.wait(400)
    assert len(win.curves.epochs()) == n  # nothing trains while paused
    qtbot.mouseClick(win.controls.pause_button, Qt.MouseButton.LeftButton)
    assert not win.worker.is_paused()
    qtbot.waitUntil(lambda: len(win.curves.epochs()) > n, timeout=20000)
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        qtbot.mouseClick(win.controls.stop_button, Qt.MouseButton.LeftButton)
    run = load_run(blocker.args[0])
    assert run.summary["stop_reason"] == "cancelled"
    assert 2 < len(run.metrics) < 5000
    assert win.runs.row_texts(blocker.args[0])["Stop"] == "cancelled"
    assert win.run_status.text() == "stopped by user"


def test_stop_while_paused_ends_the_run(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 5000}})
    win.start_training()
    qtbot.waitUntil(lambda: len(win.curves.epochs()) >= 1, timeout=20000)
    win.controls.pause_button.click()
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        win.controls.stop_button.click()
    assert load_run(blocker.args[0]).summary["stop_reason"] == "cancelled"


def test_closing_during_training_stops_the_worker(qtbot, tmp_path, no_dangling_threads):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 100000}})
    win.start_training()
    qtbot.waitUntil(lambda: len(win.curves.epochs()) >= 1, timeout=20000)
    win.close()
    assert not win.worker.is_running()
    assert not any(t.isRunning() for t in no_dangling_threads)


def test_invalid_settings_are_refused_with_the_message(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    with pytest.raises(ConfigError, match="keep_prob"):  # the config never holds an invalid value
        win.state.update("regularization", keep_prob=0.0)
    win.state.sources = {}  # the data is not loaded: training must wait for it
    win.state.prepared = None
    assert win.start_training() is False
    assert "Cannot train yet" in win.banner_text()
    assert not win.is_training() and not (tmp_path / "runs").exists()


def test_live_view_options_smoothing_error_log_and_hover(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    run_dir = train(qtbot, win)
    metrics = load_run(run_dir).metrics
    dev_acc = np.array([m["dev_acc"] for m in metrics])
    # error toggle: the accuracy plot shows 1 - accuracy
    qtbot.mouseClick(win.curves.error_check, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(win.curves.series_item("dev_acc").getData()[1], 1 - dev_acc)
    win.curves.error_check.setChecked(False)
    # smoothing: an EMA drawn over a faint raw curve
    win.curves.smoothing_slider.setValue(50)
    smooth = win.curves.series_item("dev_acc", smoothed=True)
    assert smooth.isVisible()
    expected = [dev_acc[0]]
    for v in dev_acc[1:]:
        expected.append(0.5 * expected[-1] + 0.5 * v)
    np.testing.assert_allclose(smooth.getData()[1], expected)
    raw = win.curves.series_item("dev_acc")
    assert raw.isVisible() and raw.opts["pen"].color().alpha() < 255  # raw curve stays, faintly
    np.testing.assert_allclose(raw.getData()[1], dev_acc)
    # log scale
    qtbot.mouseClick(win.curves.log_check, Qt.MouseButton.LeftButton)
    assert win.curves.loss_plot.getPlotItem().ctrl.logYCheck.isChecked()
    # hover with the mouse: a crosshair and the exact values at the nearest epoch
    plot = win.curves.acc_plot
    vb = plot.getPlotItem().getViewBox()
    pos = plot.mapFromScene(vb.mapViewToScene(QPointF(4.1, float(dev_acc.mean()))))
    qtbot.mouseMove(plot.viewport(), pos)
    qtbot.waitUntil(lambda: win.curves.hover_label.text().startswith("epoch 4"), timeout=3000)
    assert f"dev acc {metrics[3]['dev_acc']:.4g}" in win.curves.hover_label.text()
    win.curves.show_hover(2.8)
    text = win.curves.hover_label.text()
    assert text.startswith("epoch 3") and f"dev loss {metrics[2]['dev_loss']:.4g}" in text


def test_export_csv_png_and_save_model(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    run_dir = train(qtbot, win)
    metrics = load_run(run_dir).metrics
    out = tmp_path / "curves.csv"
    assert win.export_curves_csv(out)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    for r, m in zip(rows, metrics):
        assert float(r["dev_loss"]) == pytest.approx(m["dev_loss"], rel=1e-12)
        assert float(r["grad_norm_2"]) == pytest.approx(m["grad_norms"][1], rel=1e-12)
    png = tmp_path / "curves.png"
    assert win.export_curves_png(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = tmp_path / "model.npz"
    assert win.save_model(model)
    assert model.read_bytes() == (Path(run_dir) / "model.npz").read_bytes()
    with np.load(model, allow_pickle=False) as npz:
        assert npz["W1"].shape == (2, 8) and npz["W2"].shape == (8, 2)


def test_evaluate_on_test_only_when_asked(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    run_dir = train(qtbot, win)
    assert "test_acc" not in load_run(run_dir).summary  # never looked at by training
    win.runs.select(run_dir)
    asked = []
    win._ask = lambda title, text: asked.append(text) or False  # the user says no
    qtbot.mouseClick(win.runs.evaluate_button, Qt.MouseButton.LeftButton)
    assert asked and "leaks it into your choices" in asked[0]
    assert "test_acc" not in load_run(run_dir).summary
    win._ask = lambda title, text: True
    with qtbot.waitSignal(win.testEvaluated, timeout=20000) as blocker:
        qtbot.mouseClick(win.runs.evaluate_button, Qt.MouseButton.LeftButton)
    summary = load_run(run_dir).summary
    assert blocker.args[1]["test_acc"] == pytest.approx(summary["test_acc"])
    assert win.runs.row_texts(run_dir)["Test acc"] == f"{summary['test_acc']:.4f}"
    assert f"{summary['test_acc']:.4f}" in win.runs.test_label.text()


def test_diverged_run_is_reported_in_the_window(qtbot, tmp_path):
    win = make_window(
        qtbot,
        tmp_path,
        {
            "optimizer": {"name": "sgd", "lr": 100.0},
            "model": {"hidden": [8], "init": "random", "init_scale": 50.0},
            "training": {"epochs": 20, "batch_size": 32},
        },
    )
    run_dir = train(qtbot, win)
    summary = load_run(run_dir).summary
    assert summary["stop_reason"] == "diverged"
    assert "diverged" in win.banner_text().lower()
    assert summary["message"] and summary["message"] in win.banner_text()
    assert win.run_status.text() == "diverged"
    assert win.runs.row_texts(run_dir)["Stop"] == "diverged"
    assert len(win.curves.epochs()) < 20


def test_human_error_spin_writes_config_and_updates_diagnosis(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    train(qtbot, win)
    spin = win.findChild(QDoubleSpinBox, "humanErrorSpin")
    spin.selectAll()
    qtbot.keyClicks(spin, "3")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert win.state.config.diagnosis.human_error == pytest.approx(0.03)
    d = win.diagnosis.diagnosis
    assert d.human_error == pytest.approx(0.03)
    assert d.avoidable_bias == pytest.approx(win.diagnosis.train_error - 0.03)
    heights = win.diagnosis.bars.opts["height"]
    np.testing.assert_allclose(heights, [3.0, 100 * win.diagnosis.train_error, 100 * win.diagnosis.dev_error])


def test_early_stop_and_best_epoch_are_marked(qtbot, tmp_path):
    win = make_window(
        qtbot,
        tmp_path,
        {
            "optimizer": {"name": "adam", "lr": 0.05},
            "early_stopping": {"enabled": True, "patience": 2, "monitor": "dev_loss"},
            "training": {"epochs": 500, "batch_size": 32},
        },
    )
    run_dir = train(qtbot, win)
    run = load_run(run_dir)
    assert run.summary["stop_reason"] == "early_stopping"
    last = run.metrics[-1]["epoch"]
    assert last < 500
    assert win.curves.stop_marker_epoch() == last
    assert all(line.isVisible() and line.value() == last for line in win.curves._stop_lines)
    best = run.summary["best_epoch"]
    assert win.curves.best_epoch() == best
    assert all(line.isVisible() and line.value() == best for line in win.curves._best_lines)
    # the star sits on the dev loss of the best epoch
    xs, ys = win.curves._best_symbols[0].getData()
    assert list(xs) == [best] and ys[0] == pytest.approx(run.metrics[best - 1]["dev_loss"])
    assert win.runs.row_texts(run_dir)["Stop"] == "early_stopping"


def test_engine_error_is_shown_and_the_window_recovers(qtbot, tmp_path, monkeypatch):
    import engine.experiment

    def broken(*args, **kwargs):
        raise DataError("data.source: /nowhere is not a folder")

    monkeypatch.setattr(engine.experiment, "run_experiment", broken)
    win = make_window(qtbot, tmp_path)
    shown = []
    win._show_error = shown.append  # the dialog hook
    with qtbot.waitSignal(win.runFailed, timeout=10000):
        qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
    assert shown == ["Training failed: data.source: /nowhere is not a folder"]
    assert not win.is_training() and win.controls.train_button.isEnabled()
    assert win.run_status.text() == "error"
    monkeypatch.undo()
    train(qtbot, win)  # the next run works


def test_incremental_smoothing_matches_a_full_ema(qtbot):
    from gui.training_view import CurvesView, ema

    view = CurvesView()
    qtbot.addWidget(view)
    view.smoothing_slider.setValue(80)
    view.begin_run()
    rng = np.random.default_rng(0)
    values = rng.random(37)
    for i, v in enumerate(values):
        view.add_record(_Rec(epoch=i + 1, dev_loss=float(v)))
        if i % 5 == 0:
            view._redraw()  # redraws see the history grow in steps
    view.end_run()
    expected = [values[0]]
    for v in values[1:]:
        expected.append(0.8 * expected[-1] + 0.2 * v)
    np.testing.assert_allclose(view.series_item("dev_loss", smoothed=True).getData()[1], expected)
    np.testing.assert_allclose(ema(values, 0.8), expected)
    assert not view.is_redrawing()


class _Rec:
    """A minimal stand-in for an EpochRecord (fields the view reads)."""

    def __init__(self, epoch: int, dev_loss: float):
        self.epoch, self.dev_loss = epoch, dev_loss
        self.train_loss, self.train_acc, self.dev_acc, self.weight_norm = 1.0, 0.5, 0.5, 2.0
        self.grad_norms = (0.1, 0.2)
        self.best_epoch, self.stop_reason, self.message = 1, None, None


class _LiveRec(_Rec):
    """A record whose every curve moves, so the live ranges have something to follow."""

    def __init__(self, epoch: int):
        super().__init__(epoch, dev_loss=1.2 / epoch**0.5)
        self.train_loss = 1.0 / epoch**0.5
        self.train_acc, self.dev_acc = 1.0 - 0.4 / epoch, 1.0 - 0.5 / epoch
        self.weight_norm = 3.0 + np.log(epoch)
        self.grad_norms = (0.1 / epoch, 0.3 / epoch**2)
        self.best_epoch = max(1, epoch - 2)


def _count_plot_paints(monkeypatch) -> dict:
    """Count paints of every pyqtgraph view by objectName."""
    import pyqtgraph as pg

    counts: dict[str, int] = {}
    original = pg.GraphicsView.paintEvent

    def counting(self, ev):
        counts[self.objectName()] = counts.get(self.objectName(), 0) + 1
        return original(self, ev)

    monkeypatch.setattr(pg.GraphicsView, "paintEvent", counting)
    return counts


def _flush(qapp, times: int = 4) -> None:
    for _ in range(times):
        qapp.processEvents()


def _settle(qtbot, paints: dict) -> None:
    """Wait until the widgets stopped painting (first show, layout)."""
    for _ in range(40):
        before = sum(paints.values())
        qtbot.wait(50)
        if sum(paints.values()) == before:
            return


def test_live_redraw_paints_one_plot_once_and_the_range_follows_the_data(qtbot, qapp, monkeypatch):
    from gui.training_view import PLOT_PARTS, CurvesView

    paints = _count_plot_paints(monkeypatch)  # before the widgets: PySide caches overrides
    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    old = [{"epoch": e, "dev_loss": 2.0 / e, "dev_acc": 0.6, "weight_norm": 2.0} for e in range(1, 61)]
    view.add_overlay("old run", old, "#17becf")
    view.begin_run()
    _settle(qtbot, paints)
    paints.clear()
    plots = {"loss": view.loss_plot, "acc": view.acc_plot, "weight": view.weight_plot, "grad": view.grad_plot}
    names = {part: plot.objectName() for part, plot in plots.items()}
    redraws = dict.fromkeys(PLOT_PARTS, 0)
    redraw_part = view._redraw_part

    def counting_redraw(part):
        redraws[part] += 1
        redraw_part(part)

    monkeypatch.setattr(view, "_redraw_part", counting_redraw)
    for epoch in range(1, 41):
        view.add_record(_LiveRec(epoch))
        for _ in PLOT_PARTS:  # the timer's ticks: one plot each
            view._on_timer_timeout()
            _flush(qapp)
    qtbot.wait(50)
    # each redraw of a plot is painted once: no second paint from auto-ranging inside the
    # paint, no paint of the other plots
    for part in PLOT_PARTS:
        assert paints.get(names[part], 0) <= redraws[part] == 40, (part, paints, redraws)
    # while live the view sets the ranges (no auto-range refit inside the paint) ...
    hist = view.history()
    data_y = {
        "loss": (min(hist["train_loss"]), 2.0),  # the overlay's dev loss reaches 2.0
        "acc": (min(hist["train_acc"] + hist["dev_acc"]), max(hist["train_acc"])),
        "weight": (2.0, max(hist["weight_norm"])),
        "grad": tuple(np.log10([0.3 / 40**2, 0.3])),  # log axis: view units are log10
    }
    for part, plot in plots.items():
        vb = plot.getPlotItem().getViewBox()
        assert view.follows_data(part) and not any(vb.autoRangeEnabled())
        (x0, x1), (y0, y1) = vb.viewRange()
        lo, hi = data_y[part]
        assert x0 <= 1 and x1 >= 60 if part != "grad" else x1 >= 40  # overlay epochs too
        assert y0 <= lo and y1 >= hi, (part, (y0, y1), (lo, hi))
        assert y1 - y0 <= 2.0 * (hi - lo), (part, (y0, y1), (lo, hi))  # and it fits them
    # a user's zoom during the run is kept; the other plots keep following
    acc_vb = view.acc_plot.getPlotItem().getViewBox()
    acc_vb.scaleBy((0.5, 0.5))
    acc_vb.sigRangeChangedManually.emit([True, True])
    zoomed = acc_vb.viewRange()
    for epoch in range(41, 101):
        view.add_record(_LiveRec(epoch))
        for _ in PLOT_PARTS:
            view._on_timer_timeout()
    assert not view.follows_data("acc") and acc_vb.viewRange() == zoomed
    loss_vb = view.loss_plot.getPlotItem().getViewBox()
    assert view.follows_data("loss") and loss_vb.viewRange()[0][1] >= 100
    # after the run pyqtgraph's auto-range is back (the user can zoom and press "A")
    view.end_run()
    for part, plot in plots.items():
        assert all(plot.getPlotItem().getViewBox().autoRangeEnabled()) == (part != "acc")
        assert not view.follows_data(part)


def test_log_and_error_toggles_during_a_live_run_keep_the_range_on_the_data(qtbot, qapp):
    from gui.training_view import CurvesView

    view = CurvesView()
    qtbot.addWidget(view)
    view.show()
    view.begin_run()
    for epoch in range(1, 31):
        view.add_record(_LiveRec(epoch))
    view._redraw()
    view.log_check.setChecked(True)  # loss now in log10 view units
    view.error_check.setChecked(True)  # accuracy shown as 1 - accuracy
    hist = view.history()
    (_, _), (y0, y1) = view.loss_plot.getPlotItem().getViewBox().viewRange()
    lo, hi = np.log10(min(hist["train_loss"])), np.log10(max(hist["dev_loss"]))
    assert view.follows_data("loss") and y0 <= lo and hi <= y1 and y1 - y0 < 2 * (hi - lo)
    (_, _), (y0, y1) = view.acc_plot.getPlotItem().getViewBox().viewRange()
    err = 1.0 - np.array(hist["train_acc"] + hist["dev_acc"])
    assert y0 <= err.min() and err.max() <= y1 and y1 - y0 < 2 * np.ptp(err)
    view.end_run()
    assert all(view.loss_plot.getPlotItem().getViewBox().autoRangeEnabled())


def test_diagnosis_bars_repaint_only_when_a_shown_number_changes(qtbot, qapp, monkeypatch):
    from gui.diagnosis_panel import DiagnosisPanel

    paints = _count_plot_paints(monkeypatch)  # before the widgets: PySide caches overrides
    panel = DiagnosisPanel(ExperimentState(from_dict(TINY)))
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    _settle(qtbot, paints)
    paints.clear()
    panel.set_errors(0.2, 0.3)
    _flush(qapp)
    assert paints.get("diagnosisBars", 0) == 1  # one paint, not a second one for the new range
    for i in range(10):  # live updates whose numbers are the same at the shown precision
        panel.set_errors(0.2 + 1e-8 * i, 0.3)
        _flush(qapp)
    assert paints.get("diagnosisBars", 0) == 1
    panel.set_errors(0.19, 0.28)
    _flush(qapp)
    assert paints.get("diagnosisBars", 0) == 2
    np.testing.assert_allclose(panel.bars.opts["height"], [0.0, 19.0, 28.0])
    assert panel.bias_text.toPlainText() == "bias 19.0" and panel.var_text.toPlainText() == "var 9.0"


def test_gradient_curves_are_reused_by_the_next_run(qtbot):
    from gui.training_view import CurvesView

    view = CurvesView()
    qtbot.addWidget(view)
    view.begin_run()
    view.add_record(_LiveRec(1))
    view.end_run()
    items = view.grad_items()
    assert len(items) == 2
    view.begin_run()  # same items (no new legend rows), emptied until the first record
    assert view.grad_items() == items and all(len(i.getData()[0] or ()) == 0 for i in items)
    rec = _LiveRec(1)
    rec.grad_norms = (0.5,)  # a network with one layer fewer
    view.add_record(rec)
    view.end_run()
    assert view.grad_items() == items[:1]
    assert len(view.grad_plot.getPlotItem().legend.items) == 1
    np.testing.assert_allclose(10 ** items[0].getData()[1], [0.5])


def test_run_menu_shortcuts_pause_and_stop(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 5000}})
    actions = {a.objectName(): a for a in win.findChildren(QAction)}
    assert actions["pauseAction"].shortcut().toString() == "Ctrl+P"
    assert actions["stopAction"].shortcut().toString() == "Ctrl+."
    assert actions["evaluateTestAction"].shortcut().toString() == "Ctrl+T"
    actions["pauseAction"].trigger()  # nothing running: ignored
    assert not win.worker.is_paused()
    win.start_training()
    qtbot.waitUntil(lambda: len(win.curves.epochs()) >= 1, timeout=20000)
    actions["pauseAction"].trigger()
    assert win.worker.is_paused() and win.controls.pause_button.isChecked()
    actions["pauseAction"].trigger()
    assert not win.worker.is_paused()
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        actions["stopAction"].trigger()
    assert load_run(blocker.args[0]).summary["stop_reason"] == "cancelled"
