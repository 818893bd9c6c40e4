"""The runs table: runs survive a restart, differ-settings column, rename / hide / delete, sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.config import from_dict
from engine.experiment import run_experiment
from engine.prepare import load_sources, prepare_from_sources
from engine.runs import load_run
from gui.runs_panel import COL_NAME, COL_SHOW, GUI_FILE, param_size, settings_diff
from gui.state import ExperimentState
from gui.window import MainWindow

TINY = {
    "data": {"source": "builtin:moons", "n_samples": 200, "noise": 0.2},
    "model": {"hidden": [8]},
    "training": {"epochs": 4, "batch_size": 32},
}


def cfg_with(**reg):
    raw = json.loads(json.dumps(TINY))
    raw["regularization"] = reg
    return from_dict(raw)


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    """Three finished runs written by the engine: none, L2, dropout (as a previous session left them)."""
    base = cfg_with()
    sources = load_sources(base.data)
    data = prepare_from_sources(base, sources)
    root = tmp_path / "runs"
    for i, reg in enumerate(({}, {"l2": 0.01}, {"keep_prob": 0.8})):
        exp = run_experiment(cfg_with(**reg), root / f"run-{i}", data=data)
        for _ in exp.records():
            pass
    return root


def make_window(qtbot, runs_dir: Path) -> MainWindow:
    state = ExperimentState(cfg_with())
    sources = load_sources(state.config.data)
    state.set_data(sources, prepare_from_sources(state.config, sources))
    win = MainWindow(state, runs_dir=runs_dir)
    qtbot.addWidget(win)
    win.show_dialogs = False
    win.show()
    return win


def test_runs_reload_with_their_differing_settings(qtbot, runs_dir):
    win = make_window(qtbot, runs_dir)
    keys = [e.key for e in win.runs.entries()]
    assert keys == [str(runs_dir / f"run-{i}") for i in range(3)]
    assert win.runs.table.rowCount() == 3
    settings = [win.runs.row_texts(k)["Settings"] for k in keys]
    assert settings == ["l2=0, keep_prob=1", "l2=0.01, keep_prob=1", "l2=0, keep_prob=0.8"]
    for k in keys:
        run = load_run(k)
        row = win.runs.row_texts(k)
        assert row["Epochs"] == "4" and row["Stop"] == "completed"
        assert row["Seconds"] == f"{sum(m['seconds'] for m in run.metrics):.2f}"
    assert sorted(win.curves.overlay_keys()) == sorted(keys)
    # the last run's curves are shown as after its training
    assert win.curves.epochs() == [1, 2, 3, 4]


def test_run_trained_in_one_window_is_back_in_the_next(qtbot, tmp_path):
    root = tmp_path / "runs"
    win = make_window(qtbot, root)
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
    row = win.runs.row_texts(blocker.args[0])
    win.close()
    again = make_window(qtbot, root)
    assert [e.key for e in again.runs.entries()] == [blocker.args[0]]
    assert again.runs.row_texts(blocker.args[0]) == row


def test_rename_and_hide_persist_across_restart(qtbot, runs_dir):
    win = make_window(qtbot, runs_dir)
    key = str(runs_dir / "run-1")
    row = [e.key for e in win.runs.entries()].index(key)
    win.runs.table.item(row, COL_NAME).setText("L2 0.01")  # what the cell editor commits
    assert json.loads((runs_dir / "run-1" / GUI_FILE).read_text())["name"] == "L2 0.01"
    assert win.curves.overlay_visible(key)
    win.runs.set_visible(key, False)
    assert not win.curves.overlay_visible(key)
    assert all(not item.isVisible() for item in win.curves._overlays[key].items.values())
    win.close()
    again = make_window(qtbot, runs_dir)
    entry = again.runs.entry(key)
    assert entry.name == "L2 0.01" and entry.hidden
    assert again.runs.table.item(row, COL_SHOW).checkState() == Qt.CheckState.Unchecked
    assert not again.curves.overlay_visible(key)
    assert again.curves.overlay_visible(str(runs_dir / "run-0"))
    # files of the engine's run format are untouched by the window's metadata
    assert load_run(key).summary["stop_reason"] == "completed"


def test_delete_asks_first_and_removes_folder_row_and_overlay(qtbot, runs_dir):
    win = make_window(qtbot, runs_dir)
    key = str(runs_dir / "run-2")
    win.runs.select(key)
    win._ask = lambda title, text: False
    qtbot.mouseClick(win.runs.delete_button, Qt.MouseButton.LeftButton)
    assert (runs_dir / "run-2").is_dir() and win.runs.entry(key) is not None
    win._ask = lambda title, text: True
    qtbot.mouseClick(win.runs.delete_button, Qt.MouseButton.LeftButton)
    assert not (runs_dir / "run-2").exists()
    assert win.runs.entry(key) is None and key not in win.curves.overlay_keys()
    assert win.runs.table.rowCount() == 2
    # the dialog can be bypassed by callers (tests, scripts)
    assert win.delete_run(str(runs_dir / "run-0"), confirm=False)
    assert not (runs_dir / "run-0").exists()
    assert [e.key for e in win.runs.entries()] == [str(runs_dir / "run-1")]


def test_unreadable_and_incomplete_runs(qtbot, runs_dir):
    (runs_dir / "run-0" / "summary.json").unlink()  # as if it crashed mid-run
    (runs_dir / "broken").mkdir()
    (runs_dir / "broken" / "config.json").write_text("{oops")
    win = make_window(qtbot, runs_dir)
    assert win.runs.row_texts(str(runs_dir / "run-0"))["Stop"] == "incomplete"
    assert win.runs.entry(str(runs_dir / "broken")) is None
    assert len(win.runs.entries()) == 3
    assert any("broken" in e for e in win.errors)


def test_settings_diff_lists_only_what_differs():
    a = cfg_with().to_dict()
    b = cfg_with(l2=0.01).to_dict()
    c = cfg_with(keep_prob=0.8).to_dict()
    c["training"]["seed"] = 3
    c["data"]["seed"] = 5
    assert settings_diff([a, b, c]) == [
        "data.seed=0, l2=0, keep_prob=1, training.seed=0",
        "data.seed=0, l2=0.01, keep_prob=1, training.seed=0",
        "data.seed=5, l2=0, keep_prob=0.8, training.seed=3",
    ]
    assert settings_diff([a]) == ["hidden=[8], l2=0, l1=0, keep_prob=1, lr=0.001, epochs=4"]
    assert settings_diff([]) == []


def test_param_size_reads_the_model_headers(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(
        path,
        W1=np.zeros((3, 4), np.float32),
        b1=np.zeros(4, np.float32),
        W2=np.zeros((4, 2), np.float64),
        b2=np.zeros(2, np.float64),
        classes=np.array(["a", "b"]),
        norm_mean=np.zeros(3),
        Wx=np.zeros(7),
    )
    # 3*4 + 4 float32 = 16 * 4 bytes; 4*2 + 2 float64 = 10 * 8 bytes
    assert param_size(path) == (26, 16 * 4 + 10 * 8)
    assert param_size(tmp_path / "missing.npz") == (0, 0)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert param_size(tmp_path / "junk.npz") == (0, 0)


def test_selecting_a_run_shows_it_and_export_writes_that_run(qtbot, runs_dir, tmp_path):
    win = make_window(qtbot, runs_dir)
    first, second = win.runs.entries()[0], win.runs.entries()[1]
    win.runs.select(first.key)
    # the bold curves are the selected run's, so the CSV holds its metrics.jsonl
    assert win.curves.history()["dev_loss"] == [m["dev_loss"] for m in first.metrics]
    out = tmp_path / "curves.csv"
    assert win.export_curves_csv(out)
    rows = out.read_text().splitlines()
    assert len(rows) == 1 + len(first.metrics)
    assert float(rows[1].split(",")[2]) == first.metrics[0]["dev_loss"]
    win.runs.select(second.key)
    assert win.curves.history()["dev_loss"] == [m["dev_loss"] for m in second.metrics]
    # hiding the shown run takes its bold curves off the plots too
    win.runs.set_visible(second.key, False)
    assert win.curves.epochs() == []
