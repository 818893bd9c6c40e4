"""Training from the window: real clicks, live curves, pause/resume/stop, close while training,
diagnosis, export, test-set evaluation and a diverging run. Waits use qtbot.waitSignal where the
test waits on training (a real event loop)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import QDoubleSpinBox

from engine.config import ConfigError, from_dict
from engine.dataset import ArraySet
from engine.diagnosis import diagnose_run
from engine.history import RunHistory, RunInfo
from engine.prepare import load_sources, prepare_from_sources
from engine.runs import load_run
from gui.models.training_session import TrainingSession
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
    data session would after loading."""
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


def train(qtbot, win: MainWindow, timeout: int = 60000) -> str:
    """Click Train, wait for the run to finish and the plots to draw its end (a few timer ticks)."""
    with qtbot.waitSignal(win.runFinished, timeout=timeout) as blocker:
        qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.curves.is_redrawing(), timeout=5000)
    return blocker.args[0]


def live_epochs(win: MainWindow) -> int:
    run = win.session.current()
    return len(run.metrics) if run is not None else 0


def test_train_click_fills_curves_table_and_run_dir(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, preload=False)  # the data session loads the data itself
    run_dir = train(qtbot, win)
    run = load_run(run_dir)
    assert run.summary["stop_reason"] == "completed"
    assert [m["epoch"] for m in run.metrics] == [1, 2, 3, 4, 5]
    assert win.session.current_key == run_dir  # the new run is the current run
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
    row = win.runs_model.row_texts(run_dir)
    assert row["Epochs"] == "5" and row["Status"] == "completed"
    final = run.summary["final_metrics"]
    assert row["Dev acc"] == f"{final['dev_acc']:.4f}" and row["Train acc"] == f"{final['train_acc']:.4f}"
    # 2-8-2 network: (2*8 + 8) + (8*2 + 2) = 42 float32 parameters = 168 bytes
    assert row["Params"] == "42" and row["Memory"] == "168 B"
    assert win.curves.best_epoch() == run.summary["best_epoch"]
    assert not win.is_training() and win.controls.train_button.isEnabled()
    assert win.controls.progress.value() == 5 and win.controls.progress.maximum() == 5
    assert "samples/s" in win.speed_status.text()
    assert win.memory_status.text() == "params 42 · 168 B"
    # the diagnosis shows the engine's numbers for the weights the run ended with
    cfg = run.config
    d = diagnose_run(cfg, final, "completed")
    assert win.diagnosis.bias_label.text().startswith(f"{100 * d.avoidable_bias:.2f} %")
    assert win.diagnosis.variance_label.text().startswith(f"{100 * d.variance:.2f} %")
    assert d.verdict in win.diagnosis.verdict_label.text()
    assert "epoch 5" in win.diagnosis.epoch_label.text()


def test_train_is_refused_while_running_and_redraw_is_throttled(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 300}})
    with qtbot.waitSignal(win.runFinished, timeout=60000):
        assert win.start_training()
        assert not win.controls.train_button.isEnabled()
        assert win.controls.stop_button.isEnabled()
        assert win.start_training() is False  # a second run cannot start
    assert len(win.curves.epochs()) == 300
    assert len(list((tmp_path / "runs").iterdir())) == 1
    # redraws come from a timer, not one per record
    assert win.curves.redraw_count < 300 / 2


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
    assert "l2=0.01" in win.runs_model.row_texts(run_dir)["Settings"]


def test_pause_resume_then_stop_keeps_a_cancelled_run(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 5000}})
    win.start_training()
    qtbot.waitUntil(lambda: live_epochs(win) >= 2, timeout=20000)
    qtbot.mouseClick(win.controls.pause_button, Qt.MouseButton.LeftButton)
    assert win.session.state == "paused" and win.controls.pause_button.text() == "Resume"
    assert "paused" in win.controls.progress.format() and "paused" in win.run_status.text()
    qtbot.wait(300)  # let an epoch in flight arrive
    n = live_epochs(win)
    qtbot.wait(500)
    assert live_epochs(win) == n  # nothing trains while paused
    qtbot.mouseClick(win.controls.pause_button, Qt.MouseButton.LeftButton)
    assert win.session.state == "training"
    qtbot.waitUntil(lambda: live_epochs(win) > n, timeout=20000)
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        qtbot.mouseClick(win.controls.stop_button, Qt.MouseButton.LeftButton)
    run = load_run(blocker.args[0])
    assert run.summary["stop_reason"] == "cancelled"
    assert 2 < len(run.metrics) < 5000
    # one vocabulary: the table, the status bar and the progress bar say the same words
    assert win.runs_model.row_texts(blocker.args[0])["Status"] == "stopped by you"
    assert win.run_status.text().endswith(": stopped by you")
    assert "stopped by you" in win.controls.progress.format()


def test_stop_while_paused_ends_the_run(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 5000}})
    win.start_training()
    qtbot.waitUntil(lambda: live_epochs(win) >= 1, timeout=20000)
    win.controls.pause_button.click()
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        win.controls.stop_button.click()
    assert load_run(blocker.args[0]).summary["stop_reason"] == "cancelled"


def test_closing_during_training_stops_the_training_process(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 100000}})
    win.start_training()
    qtbot.waitUntil(lambda: live_epochs(win) >= 1, timeout=20000)
    pid = win.session._process.pid
    win.close()
    assert not win.is_training()
    with pytest.raises(ProcessLookupError):  # the child has exited (and was reaped)
        os.kill(pid, 0)
    # it stopped gracefully: the run folder is complete, stop reason cancelled
    run_dir = next((tmp_path / "runs").iterdir())
    assert load_run(run_dir).summary["stop_reason"] == "cancelled"


def test_refused_start_says_why_and_clears_when_fixed(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    with pytest.raises(ConfigError, match="keep_prob"):  # the config never holds an invalid value
        win.state.update("regularization", keep_prob=0.0)
    win.data_panel.frac_spins[0].setValue(0.9)  # train 0.9 + dev 0.2 + test 0.2: not 1
    assert win.start_training() is False
    assert "Cannot train yet" in win.banner_text() and "add up to 1" in win.banner_text()
    assert not win.is_training() and not (tmp_path / "runs").exists()
    win.data_panel.frac_spins[0].setValue(0.6)
    assert win.banner_text() == ""  # the message goes as soon as its cause is gone


def test_live_view_options_smoothing_error_log_and_hover(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    run_dir = train(qtbot, win)
    metrics = load_run(run_dir).metrics
    dev_acc = np.array([m["dev_acc"] for m in metrics])
    qtbot.mouseClick(win.curves.error_check, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(win.curves.series_item("dev_acc").getData()[1], 1 - dev_acc)
    win.curves.error_check.setChecked(False)
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
    qtbot.mouseClick(win.curves.log_check, Qt.MouseButton.LeftButton)
    assert win.curves.loss_plot.getPlotItem().ctrl.logYCheck.isChecked()
    plot = win.curves.acc_plot
    vb = plot.getPlotItem().getViewBox()
    pos = plot.mapFromScene(vb.mapViewToScene(QPointF(4.1, float(dev_acc.mean()))))
    qtbot.mouseMove(plot.viewport(), pos)
    qtbot.waitUntil(lambda: win.curves.hover_label.text().startswith("epoch 4"), timeout=3000)
    assert f"dev acc {metrics[3]['dev_acc']:.4g}" in win.curves.hover_label.text()
    win.curves.show_hover(2.8)
    text = win.curves.hover_label.text()
    assert text.startswith("epoch 3") and f"dev loss {metrics[2]['dev_loss']:.4g}" in text


def test_export_csv_png_and_save_model_act_on_the_current_run(qtbot, tmp_path):
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
    # the PNG holds the plots and their legend only (not the smoothing slider and check boxes,
    # not the hover line), at a readable size
    win.curves.show_hover(3.0)
    png = tmp_path / "curves.png"
    assert win.export_curves_png(png)
    image = QImage(str(png))
    plots = win.curves.plots_widget
    assert image.width() >= 1600
    assert image.width() / image.height() == pytest.approx(plots.width() / plots.height(), rel=0.02)
    full = win.curves
    assert abs(image.width() / image.height() - full.width() / full.height()) > 0.02  # not the whole view
    assert all(line.isVisible() for line in win.curves._cross_lines)  # the hover line is back
    model = tmp_path / "model.npz"
    assert win.save_model(model)
    assert model.read_bytes() == (Path(run_dir) / "model.npz").read_bytes()
    with np.load(model, allow_pickle=False) as npz:
        assert npz["W1"].shape == (2, 8) and npz["W2"].shape == (8, 2)


def test_evaluate_on_test_only_when_asked(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    run_dir = train(qtbot, win)
    assert "test_acc" not in load_run(run_dir).summary  # never looked at by training
    asked = []
    win._ask = lambda title, text: asked.append(text) or False  # the user says no
    assert win.runs.evaluate_button.isEnabled()
    qtbot.mouseClick(win.runs.evaluate_button, Qt.MouseButton.LeftButton)
    assert asked and "leaks it into your choices" in asked[0]
    assert "test_acc" not in load_run(run_dir).summary
    win._ask = lambda title, text: True
    with qtbot.waitSignal(win.testEvaluated, timeout=20000) as blocker:
        qtbot.mouseClick(win.runs.evaluate_button, Qt.MouseButton.LeftButton)
    summary = load_run(run_dir).summary
    assert blocker.args[1]["test_acc"] == pytest.approx(summary["test_acc"])
    assert win.runs_model.row_texts(run_dir)["Test acc"] == f"{summary['test_acc']:.4f}"
    assert f"{summary['test_acc']:.4f}" in win.runs.test_label.text()


def test_evaluate_on_test_is_disabled_for_a_run_without_a_test_set(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"data": {"split": [0.7, 0.3]}})
    train(qtbot, win)
    button = win.runs.evaluate_button
    assert not button.isEnabled()
    assert "no test set" in button.toolTip()
    assert win.evaluate_test(confirm=False) is False  # the menu action says why too
    assert "no test set" in win.last_error


def test_a_diverged_run_is_reported_and_never_stretches_the_next_runs_axes(qtbot, tmp_path):
    win = make_window(
        qtbot,
        tmp_path,
        {
            "optimizer": {"name": "sgd", "lr": 100.0},
            "model": {"hidden": [8], "init": "random", "init_scale": 50.0},
            "training": {"epochs": 20, "batch_size": 32},
        },
    )
    diverged = train(qtbot, win)
    summary = load_run(diverged).summary
    assert summary["stop_reason"] == "diverged"
    assert summary["message"] and summary["message"] in win.banner_text()
    assert win.run_status.text().endswith(": diverged")
    assert win.runs_model.row_texts(diverged)["Status"] == "diverged"
    # the diagnosis talks about optimization, not network size
    assert win.diagnosis.diagnosis.verdict_code == "diverged"
    assert (
        "lower_lr" in win.diagnosis.diagnosis.advice
        and "bigger_network" not in win.diagnosis.diagnosis.advice
    )
    # a sane run next: its axes fit it, whatever the diverged overlay holds
    win.state.update_values({"optimizer.name": "adam", "optimizer.lr": 0.01, "model.init": "he",
                             "model.init_scale": 1.0, "training.epochs": 8})  # fmt: skip
    sane = train(qtbot, win)
    assert win.session.current_key == sane and win.curves.overlay_visible(diverged)
    metrics = load_run(sane).metrics
    losses = [m[k] for m in metrics for k in ("train_loss", "dev_loss")]
    (x0, x1), (y0, y1) = win.curves.loss_plot.getPlotItem().getViewBox().viewRange()
    assert x1 <= 8 * 1.5 and x0 >= -2  # the x axis is this run's 8 epochs, not the overlay's
    assert y1 <= max(losses) + 2 * (max(losses) - min(losses)) and y0 <= min(losses)
    (_, _), (w0, w1) = win.curves.weight_plot.getPlotItem().getViewBox().viewRange()
    norms = [m["weight_norm"] for m in metrics]
    assert w1 <= max(norms) + 2 * (max(norms) - min(norms))


def test_human_error_spin_writes_config_and_updates_diagnosis(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    train(qtbot, win)
    spin = win.findChild(QDoubleSpinBox, "humanErrorSpin")
    assert not win.diagnosis.human_auto.isChecked() and spin.isEnabled()  # TINY sets 0.0
    spin.selectAll()
    qtbot.keyClicks(spin, "3")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert win.state.config.diagnosis.human_error == pytest.approx(0.03)
    d = win.diagnosis.diagnosis
    assert d.human_error == pytest.approx(0.03)
    assert d.avoidable_bias == pytest.approx(win.diagnosis.train_error - 0.03)
    heights = win.diagnosis.bars.opts["height"]
    np.testing.assert_allclose(heights, [3.0, 100 * win.diagnosis.train_error, 100 * win.diagnosis.dev_error])
    # auto: the Bayes error of this generated set, explained next to the spin box
    win.diagnosis.human_auto.setChecked(True)
    from engine.bayes import bayes_error

    assert win.state.config.diagnosis.human_error is None
    # the estimate is computed off the GUI thread the first time (memoized after)
    expected = bayes_error("moons", 0.2)
    qtbot.waitUntil(lambda: abs(win.diagnosis.diagnosis.human_error - expected) < 1e-4, timeout=30000)
    assert "Bayes error of builtin:moons" in win.diagnosis.human_note.text()
    # an estimate is not "entered": the note on train error below it says where it came from
    for note in win.diagnosis.diagnosis.notes:
        assert "you entered" not in note


def test_early_stopped_run_shows_the_same_numbers_at_the_end_and_when_clicked_later(qtbot, tmp_path):
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
    assert run.summary["stop_reason"] == "early_stopping" and run.summary["restored_best"]
    last = run.metrics[-1]["epoch"]
    best = run.summary["best_epoch"]
    assert last < 500 and best < last
    assert win.curves.stop_marker_epoch() == last
    assert all(line.isVisible() and line.value() == last for line in win.curves._stop_lines)
    assert win.curves.best_epoch() == best
    assert all(line.isVisible() and line.value() == best for line in win.curves._best_lines)
    xs, ys = win.curves._best_symbols[0].getData()
    assert list(xs) == [best] and ys[0] == pytest.approx(run.metrics[best - 1]["dev_loss"])
    assert win.runs_model.row_texts(run_dir)["Status"] == "stopped early"
    # the diagnosis describes the restored weights, and says so
    at_end = (
        win.diagnosis.train_label.text(),
        win.diagnosis.dev_label.text(),
        win.diagnosis.epoch_label.text(),
    )
    assert f"epoch {best}" in at_end[2] and "restored" in at_end[2]
    assert at_end[1] == f"{100 * (1 - run.metrics[best - 1]['dev_acc']):.2f} %"
    # another run becomes current, then this one again: the same numbers
    other = train(qtbot, win)
    assert win.session.current_key == other
    win.runs.select(run_dir)
    assert (
        win.diagnosis.train_label.text(),
        win.diagnosis.dev_label.text(),
        win.diagnosis.epoch_label.text(),
    ) == at_end


def test_engine_error_is_shown_and_the_window_recovers(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    shown = []
    win._show_error = shown.append  # the dialog hook
    prepared = win.state.prepared
    empty = ArraySet(prepared.train.X[:0], prepared.train.y[:0])
    broken = type(prepared)(**{**prepared.__dict__, "train": empty})
    with qtbot.waitSignal(win.runFailed, timeout=30000):
        assert win.start_training(data=broken)
    assert shown == ["Training failed: the training set is empty: check data.source and data.split"]
    assert not win.is_training() and win.controls.train_button.isEnabled()
    assert len(win.history) == 0 and not any((tmp_path / "runs").iterdir())  # no empty run left
    train(qtbot, win)  # the next run works


def test_run_menu_shortcuts_pause_and_stop(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, {"training": {"epochs": 5000}})
    actions = {a.objectName(): a for a in win.findChildren(QAction)}
    assert actions["pauseAction"].shortcut().toString() == "Ctrl+P"
    assert actions["stopAction"].shortcut().toString() == "Ctrl+."
    assert actions["evaluateTestAction"].shortcut().toString() == "Ctrl+T"
    actions["pauseAction"].trigger()  # nothing running: ignored
    assert win.session.state == "idle"
    win.start_training()
    qtbot.waitUntil(lambda: live_epochs(win) >= 1, timeout=20000)
    actions["pauseAction"].trigger()
    assert win.session.state == "paused" and win.controls.pause_button.isChecked()
    actions["pauseAction"].trigger()
    assert win.session.state == "training"
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        actions["stopAction"].trigger()
    assert load_run(blocker.args[0]).summary["stop_reason"] == "cancelled"


# ---------------------------------------------------------------- the curves view on its own


def test_incremental_smoothing_matches_a_full_ema(qtbot):
    from gui.views.curves_view import CurvesView, ema

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


def test_live_redraw_paints_one_plot_once_and_the_range_follows_the_run_not_the_overlays(
    qtbot, qapp, monkeypatch
):
    from gui.views.curves_view import PLOT_PARTS, CurvesView

    paints = _count_plot_paints(monkeypatch)  # before the widgets: PySide caches overrides
    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    # an overlay of a diverged run: huge finite losses and NaNs over many more epochs
    old = [{"epoch": e, "dev_loss": 1.5e7 if e > 100 else 2.0 / e, "dev_acc": 0.6, "weight_norm": 4000.0}
           for e in range(1, 1001)]  # fmt: skip
    old[50]["dev_loss"] = None
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
    for part in PLOT_PARTS:
        assert paints.get(names[part], 0) <= redraws[part] == 40, (part, paints, redraws)
    hist = view.history()
    data_y = {
        "loss": (min(hist["train_loss"]), max(hist["dev_loss"])),
        "acc": (min(hist["train_acc"] + hist["dev_acc"]), max(hist["train_acc"])),
        "weight": (min(hist["weight_norm"]), max(hist["weight_norm"])),
        "grad": tuple(np.log10([0.3 / 40**2, 0.3])),  # log axis: view units are log10
    }
    for part, plot in plots.items():
        vb = plot.getPlotItem().getViewBox()
        assert view.follows_data(part) and not any(vb.autoRangeEnabled())
        (x0, x1), (y0, y1) = vb.viewRange()
        lo, hi = data_y[part]
        assert x0 <= 1 and 40 <= x1 <= 60  # this run's epochs, not the overlay's 1000
        assert y0 <= lo and y1 >= hi, (part, (y0, y1), (lo, hi))
        assert y1 - y0 <= 2.0 * (hi - lo), (part, (y0, y1), (lo, hi))  # the overlay's 1.5e7 is ignored
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
    # at rest pyqtgraph's auto-range is back: it fits the run too (overlays ignore bounds); the
    # end of a run is drawn one plot per timer tick
    view.end_run()
    assert view.is_redrawing()
    qtbot.waitUntil(lambda: not view.is_redrawing(), timeout=5000)
    for part, plot in plots.items():
        assert all(plot.getPlotItem().getViewBox().autoRangeEnabled()) == (part != "acc")
    loss_vb.autoRange()
    assert loss_vb.viewRange()[1][1] < 10 and loss_vb.viewRange()[0][1] < 200


def test_gradient_curves_are_reused_by_the_next_run_and_named_in_the_title(qtbot):
    from gui.views.curves_view import CurvesView

    view = CurvesView()
    qtbot.addWidget(view)
    view.begin_run()
    view.add_record(_LiveRec(1))
    view.end_run()
    items = view.grad_items()
    assert len(items) == 2
    assert (
        "━1" in view.grad_plot.getPlotItem().titleLabel.text
        and "━2" in view.grad_plot.getPlotItem().titleLabel.text
    )
    view.begin_run()
    assert view.grad_items() == items and all(len(i.getData()[0] or ()) == 0 for i in items)
    rec = _LiveRec(1)
    rec.grad_norms = (0.5,)  # a network with one layer fewer
    view.add_record(rec)
    view.end_run()
    assert view.grad_items() == items[:1]
    assert "━2" not in view.grad_plot.getPlotItem().titleLabel.text
    np.testing.assert_allclose(10 ** items[0].getData()[1], [0.5])
    # no legend inside any plot: legends never cover curves
    for plot in (view.loss_plot, view.acc_plot, view.weight_plot, view.grad_plot):
        assert plot.getPlotItem().legend is None


def test_diagnosis_bars_repaint_only_when_a_shown_number_changes(qtbot, qapp, monkeypatch, tmp_path):
    from gui.views.diagnosis_view import DiagnosisView

    paints = _count_plot_paints(monkeypatch)  # before the widgets: PySide caches overrides
    history = RunHistory()
    session = TrainingSession(history, tmp_path)
    state = ExperimentState(from_dict(TINY))
    view = DiagnosisView(session, state)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    history.add(RunInfo(key=str(tmp_path / "r"), name="r", config=state.config, live=True))
    session.set_current(str(tmp_path / "r"))
    _settle(qtbot, paints)
    paints.clear()

    def epoch(e, train_acc, dev_acc):
        history.append_records(
            str(tmp_path / "r"), [{"epoch": e, "train_acc": train_acc, "dev_acc": dev_acc}]
        )
        session.recordsShown.emit(str(tmp_path / "r"))  # what the session's poll does, at most every 100 ms
        _flush(qapp)

    epoch(1, 0.8, 0.7)
    assert paints.get("diagnosisBars", 0) == 1  # one paint, not a second one for the new range
    for i in range(10):  # live updates whose numbers are the same at the shown precision
        epoch(2 + i, 0.8 - 1e-8 * i, 0.7)
    assert paints.get("diagnosisBars", 0) == 1
    epoch(20, 0.81, 0.72)
    assert paints.get("diagnosisBars", 0) == 2
    np.testing.assert_allclose(view.bars.opts["height"], [0.0, 19.0, 28.0])
    assert [t.toPlainText() for t in view.bar_texts] == ["0.0", "19.0", "28.0"]
    assert "epoch 20 (training)" in view.epoch_label.text()
