"""Lessons in the window: the Lessons menu runs a lesson's variants one after another as ordinary
runs (runs table, run folders, overlaid curves), the lesson panel says what to look for, shows
the progress and the comparison table, brings up the lesson's view; Stop ends a lesson cleanly;
a second lesson (or a lesson while a run trains) asks first and replaces what was running; the
mismatch lesson measures each run's test set; the depth lesson sets up the depth lab.

Waits on training use qtbot.waitSignal (a real event loop)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QWidget

from engine.config import from_dict
from engine.history import LABELS_FILE
from engine.insight.confusion import predict_raw
from engine.lessons import LESSONS, LessonResult, VariantRun, comparison_table, load_lesson
from engine.prepare import load_sources, prepare_from_sources
from engine.runs import load_model, load_run
from gui.state import ExperimentState
from gui.window import MainWindow

TINY = {
    "data": {"source": "builtin:moons", "n_samples": 200, "noise": 0.2, "split": [0.6, 0.2, 0.2]},
    "model": {"hidden": [8]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "training": {"epochs": 5, "batch_size": 32},
}
LESSON_TIMEOUT = 180_000  # ms; the quick lessons take seconds, the machine is shared


def make_window(qtbot, tmp_path: Path, epochs: int = 5) -> MainWindow:
    raw = json.loads(json.dumps(TINY))
    raw["training"]["epochs"] = epochs
    state = ExperimentState(from_dict(raw))
    sources = load_sources(state.config.data)
    state.set_data(sources, prepare_from_sources(state.config, sources))
    win = MainWindow(state, runs_dir=tmp_path / "runs")
    qtbot.addWidget(win)
    win.show_dialogs = False
    win.show()
    qtbot.waitUntil(lambda: not win.problems(), timeout=15000)
    return win


def lesson_action(win: MainWindow, name: str) -> QAction:
    action = win.findChild(QAction, f"lesson_{name}Action")
    assert action is not None and action in win.lessons_menu.actions()
    return action


def run_lesson_from_menu(qtbot, win: MainWindow, name: str) -> None:
    with qtbot.waitSignal(
        win.lessons.lessonFinished, timeout=LESSON_TIMEOUT, check_params_cb=lambda n: n == name
    ):
        lesson_action(win, name).trigger()
    qtbot.waitUntil(lambda: not win.curves.is_redrawing(), timeout=5000)


def run_folders(win: MainWindow) -> list[Path]:
    return sorted(p for p in win.runs_dir.iterdir() if p.is_dir())


def lesson_runs(win: MainWindow, name: str) -> dict[str, Path]:
    """variant name -> run folder of the lesson's runs in the runs folder, found by their names."""
    lesson = LESSONS[name]
    found = {}
    for path in run_folders(win):
        label = (
            json.loads((path / LABELS_FILE).read_text()).get("name") if (path / LABELS_FILE).exists() else ""
        )
        for v in lesson.variants:
            if label == f"{lesson.title}: {v.label}":
                found[v.name] = path
    return found


def table_from_folders(name: str, folders: dict[str, Path], quick: bool) -> list[dict]:
    """engine.lessons.comparison_table computed from the run folders on disk."""
    lesson = LESSONS[name]
    runs = []
    for v in lesson.variants:
        if v.name in folders:
            rec = load_run(folders[v.name])
            runs.append(VariantRun(v.name, v.label, folders[v.name], rec.summary, tuple(rec.metrics)))
    return comparison_table(
        LessonResult(lesson, folders and next(iter(folders.values())).parent, quick, tuple(runs), False)
    )


def assert_table_matches(win: MainWindow, expected: list[dict]) -> None:
    shown = win.lesson_panel.table_values()
    assert [r["label"] for r in shown] == [r["label"] for r in expected]
    for got, want in zip(shown, expected):
        for field, value in got.items():
            if isinstance(value, float):
                assert value == pytest.approx(want[field], rel=1e-12), field
            else:
                assert value == want[field], field


def test_lessons_menu_lists_every_lesson_with_its_look_for_text(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    assert win.lessons_menu.objectName() == "lessonsMenu"
    assert win.lessons_menu.menuAction() in win.menuBar().actions()
    assert win.lessons_menu.title().replace("&", "") == "Lessons"
    for name, lesson in LESSONS.items():
        action = lesson_action(win, name)
        assert action.text() == lesson.title
        assert action.toolTip() == lesson.look_for
    assert win.lesson_quick_action.isChecked()  # quick by default: full lessons take minutes
    # the panel exists from start-up but stays out of the way until a lesson starts
    tabs = win.settings_tabs
    assert not tabs.isTabVisible(tabs.indexOf(win.lesson_panel))
    assert win.findChild(QWidget, "lessonPanel") is win.lesson_panel


def test_a_lesson_runs_its_variants_as_overlaid_runs_and_compares_them(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    with qtbot.waitSignal(win.runFinished, timeout=60000) as earlier:  # a run of the user's own
        qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
    earlier_key = earlier.args[0]
    # unsaved edits: the lesson replaces the settings, so it asks first (cancel keeps everything)
    win.state.update("training", epochs=7)
    win._ask_unsaved = lambda: "cancel"
    lesson_action(win, "normalization").trigger()
    assert not win.lessons.is_active() and len(run_folders(win)) == 1
    assert win.state.config.training.epochs == 7
    win._ask_unsaved = lambda: "discard"

    run_lesson_from_menu(qtbot, win, "normalization")

    lesson = LESSONS["normalization"]
    loaded = load_lesson("normalization", quick=True)
    folders = lesson_runs(win, "normalization")
    assert list(folders) == ["raw", "standardized"]
    assert len(run_folders(win)) == 3  # the earlier run and the two variants, in the runs folder
    for v in lesson.variants:
        key = str(folders[v.name])
        rec = load_run(key)
        assert rec.config == loaded.configs[v.name]  # the variant's experiment file, quick epochs
        assert [m["epoch"] for m in rec.metrics] == list(range(1, 31))  # quick: 30, not 100
        assert rec.summary["stop_reason"] == "completed"
        row = win.runs_model.row_texts(key)
        assert row["Name"] == f"{lesson.title}: {v.label}" and row["Status"] == "completed"
    raw_key, std_key = str(folders["raw"]), str(folders["standardized"])
    # the last variant is the current run, drawn bold; the first one is a faded overlay
    assert win.session.current_key == std_key == win.curves.shown_key() == win.runs.selected_key()
    assert win.curves.epochs() == list(range(1, 31))
    assert raw_key in win.curves.overlay_keys() and win.curves.overlay_visible(raw_key)
    overlay = win.curves._overlays[raw_key].items["dev_loss"]
    np.testing.assert_allclose(overlay.getData()[1], [m["dev_loss"] for m in load_run(raw_key).metrics])
    assert overlay.opts["pen"].color().alpha() < 255 and overlay.opts["pen"].style() == Qt.PenStyle.DashLine
    bold = win.curves.series_item("dev_loss").opts["pen"]
    assert bold.color().alpha() == 255 and bold.widthF() > overlay.opts["pen"].widthF()
    # the earlier run was taken off the plots for the lesson, and the panel offers it back
    assert win.history.get(earlier_key).hidden and not win.curves.overlay_visible(earlier_key)
    panel = win.lesson_panel
    assert win.settings_tabs.currentWidget() is panel
    assert panel.title_label.text() == lesson.title
    look = panel.look_label.text()
    assert look.startswith(lesson.look_for)
    # quick mode says its differences can be smaller; the experiment change is said too
    assert "Quick: fewer epochs" in look and "the last one stays" in look
    assert win.state.config == loaded.configs["standardized"]
    assert panel.progress_label.text().startswith("Done: 2 variants")
    # the variant's settings are in the panels like an opened experiment, not unsaved changes
    assert win.state.config == loaded.configs["standardized"]
    assert not win.is_modified() and "*" not in win.windowTitle()
    assert not panel.stop_button.isEnabled()
    # the comparison: the numbers of comparison_table computed from the run folders
    expected = table_from_folders("normalization", folders, quick=True)
    assert_table_matches(win, expected)
    assert win.lessons.table() == expected
    dev_row = [f for f, *_ in panel._fields()].index("dev_acc")
    assert panel.table.item(dev_row, 1).text() == f"{100 * expected[1]['dev_acc']:.1f} %"
    # what the lesson teaches: the standardized run ends at a much lower cost
    assert expected[1]["final_cost"] < 0.6 * expected[0]["final_cost"]
    # the lesson's view: the why-normalize tab comes to the front
    assert panel.view_button.text() == "Show the normalization view"
    qtbot.mouseClick(panel.view_button, Qt.MouseButton.LeftButton)
    assert win.view_tabs.currentWidget() is win.normalize_view
    assert panel.others_button.isVisible()
    qtbot.mouseClick(panel.others_button, Qt.MouseButton.LeftButton)
    assert not win.history.get(earlier_key).hidden and win.curves.overlay_visible(earlier_key)
    assert not panel.others_button.isVisible()
    # closing the panel hides it; the Lessons menu brings it back with the same lesson
    qtbot.mouseClick(panel.close_button, Qt.MouseButton.LeftButton)
    assert not win.settings_tabs.isTabVisible(win.settings_tabs.indexOf(panel))
    win.lesson_panel_action.trigger()
    assert win.settings_tabs.currentWidget() is panel and panel.title_label.text() == lesson.title


def test_the_view_button_brings_up_the_lessons_view(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    other = QLabel("another view")
    other.setObjectName("otherView")
    win.add_view(other, "Other")
    run_lesson_from_menu(qtbot, win, "early-stopping")
    win.view_tabs.setCurrentWidget(other)
    panel = win.lesson_panel
    assert panel.view_button.text() == "Show the loss curves"
    qtbot.mouseClick(panel.view_button, Qt.MouseButton.LeftButton)
    assert win.view_tabs.currentWidget() is win.curves  # the tab holding lossPlot
    assert win.curves.loss_plot.isVisible() and not panel.note_label.text()
    folders = lesson_runs(win, "early-stopping")
    expected = table_from_folders("early-stopping", folders, quick=True)
    assert_table_matches(win, expected)
    # early stopping stopped before the end and kept the best epoch's weights
    stopped = expected[1]
    assert stopped["stop_reason"] == "early_stopping" and stopped["best_epoch"] < stopped["epochs"]


def test_stop_ends_the_lesson_and_no_further_variant_starts(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    win.lesson_quick_action.setChecked(False)  # the full zeros run: 15,000 epochs, stopped early here
    lesson_action(win, "initialization").trigger()
    # its data (two rings) is loading in the background: a run of the user's own may not start now
    assert win.lessons.phase == "loading"
    assert win.start_training() is False and "A lesson is running" in win.last_error
    assert win.controls.train_button.isEnabled() and not win.is_training()
    qtbot.waitUntil(lambda: win.lessons.phase == "training", timeout=60000)
    key = win.lessons.live_key()
    qtbot.waitUntil(lambda: len(win.history.get(key).metrics) >= 2, timeout=60000)
    assert win.lesson_panel.progress_label.text().startswith("Variant 1 of 3: zeros · epoch ")
    assert win.lesson_panel.mode_label.text().endswith("full length")
    with qtbot.waitSignal(win.lessons.lessonFinished, timeout=60000):
        qtbot.mouseClick(win.controls.stop_button, Qt.MouseButton.LeftButton)
    assert win.lessons.cancelled and win.lessons.error is None
    assert run_folders(win) == [Path(key)]
    rec = load_run(key)
    assert rec.summary["stop_reason"] == "cancelled" and 2 <= len(rec.metrics) < 15000
    qtbot.wait(1500)  # nothing else starts afterwards
    assert run_folders(win) == [Path(key)] and not win.is_training() and win.lessons.phase == "finished"
    panel = win.lesson_panel
    assert panel.progress_label.text().startswith("Stopped by you after 1 of 3 variants")
    assert [r["stop_reason"] for r in panel.table_values()] == ["cancelled"]
    assert panel.table.item(0, 1).text() == panel.table.item(0, 2).text() == "not run"
    assert win.history.get(key).name == "Initialization: zeros, large random, He: zeros"


def test_a_second_lesson_asks_and_replaces_the_running_one(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    win.lesson_quick_action.setChecked(False)
    lesson_action(win, "initialization").trigger()
    qtbot.waitUntil(lambda: win.lessons.phase == "training", timeout=60000)
    key = win.lessons.live_key()
    qtbot.waitUntil(lambda: len(win.history.get(key).metrics) >= 1, timeout=60000)
    asked = []
    win._ask = lambda title, text: asked.append(text) or False  # "no": the first lesson goes on
    lesson_action(win, "normalization").trigger()
    assert win.lessons.lesson.name == "initialization" and win.lessons.phase == "training"
    assert "Initialization: zeros, large random, He" in asked[0] and "Input normalization" in asked[0]
    win._ask = lambda title, text: True
    win.lesson_quick_action.setChecked(True)
    finished = []
    win.lessons.lessonFinished.connect(finished.append)
    with qtbot.waitSignal(
        win.lessons.lessonFinished, timeout=LESSON_TIMEOUT, check_params_cb=lambda n: n == "normalization"
    ):
        lesson_action(win, "normalization").trigger()
    assert finished == ["initialization", "normalization"]
    assert load_run(key).summary["stop_reason"] == "cancelled"
    assert list(lesson_runs(win, "initialization")) == ["zeros"]  # no further initialization run
    folders = lesson_runs(win, "normalization")
    assert list(folders) == ["raw", "standardized"] and len(run_folders(win)) == 3
    assert win.lessons.lesson.name == "normalization" and not win.lessons.cancelled
    assert win.history.get(key).hidden  # the replaced lesson's run left the plots with the others
    assert_table_matches(win, table_from_folders("normalization", folders, quick=True))


def test_a_lesson_while_a_run_trains_stops_that_run_first(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path, epochs=100000)
    win.start_training()
    key = win.session.live_key
    qtbot.waitUntil(lambda: len(win.history.get(key).metrics) >= 1, timeout=60000)
    asked = []
    win._ask = lambda title, text: asked.append(text) or True
    run_lesson_from_menu(qtbot, win, "normalization")
    assert "A run is training" in asked[0]
    assert load_run(key).summary["stop_reason"] == "cancelled"
    assert list(lesson_runs(win, "normalization")) == ["raw", "standardized"]
    assert len(run_folders(win)) == 3 and not win.lessons.cancelled


def test_mismatch_lesson_measures_each_run_on_its_test_set(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    run_lesson_from_menu(qtbot, win, "mismatch")
    folders = lesson_runs(win, "mismatch")
    assert list(folders) == ["same-distribution", "shifted-test"]
    expected = table_from_folders("mismatch", folders, quick=True)
    assert_table_matches(win, expected)
    for row, v in zip(expected, LESSONS["mismatch"].variants):
        # the test accuracy in the table is the saved model's accuracy on the run's test set
        cfg = load_run(folders[v.name]).config
        test = prepare_from_sources(cfg, load_sources(cfg.data)).test
        model = load_model(folders[v.name] / "model.npz")
        probs = predict_raw(model.net, np.asarray(test.X), model.norm_mean, model.norm_std)
        assert row["test_acc"] == pytest.approx(float(np.mean(probs.argmax(1) == test.y)), abs=1e-12)
        assert win.runs_model.row_texts(str(folders[v.name]))["Test acc"] == f"{row['test_acc']:.4f}"
    # the lesson's point: same dev accuracy, much lower accuracy on the noisier test set
    assert expected[0]["dev_acc"] == expected[1]["dev_acc"]
    assert expected[1]["test_acc"] < expected[0]["test_acc"] - 0.1


def test_depth_lesson_sets_up_the_depth_lab_and_the_panel_stop_button(qtbot, tmp_path):
    win = make_window(qtbot, tmp_path)
    lab = win.depth_lab
    lab.set_settings(depth=3, width=8, activation="tanh", init="xavier", scale=2.0)
    lesson_action(win, "depth").trigger()
    # the lesson's network, its first initialization at its first scale
    assert lab.settings() == (15, 32, "relu", "he", 0.5)
    panel = win.lesson_panel
    assert "The depth lab is set to 15 relu layers of 32 units" in panel.note_label.text()
    qtbot.mouseClick(panel.view_button, Qt.MouseButton.LeftButton)
    assert win.view_tabs.currentWidget() is lab
    qtbot.waitUntil(lambda: win.lessons.phase == "training", timeout=60000)
    with qtbot.waitSignal(win.lessons.lessonFinished, timeout=60000):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert win.lessons.cancelled and len(run_folders(win)) == 1
    # the first variant (100 epochs) may have finished before the stop reached it; either way
    # it is the only run: no further variant started
    assert load_run(run_folders(win)[0]).summary["stop_reason"] in ("cancelled", "completed")
    qtbot.wait(1000)
    assert len(run_folders(win)) == 1 and not win.is_training()
