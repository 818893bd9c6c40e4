"""The runs table and the current run: runs survive a restart, differing settings, rename / hide /
delete, broken run folders, and one current run (the plots, the selected row and the target of
every action) after every action."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.config import from_dict
from engine.experiment import run_experiment
from engine.history import LABELS_FILE, param_size
from engine.prepare import load_sources, prepare_from_sources
from engine.runs import load_run
from gui.models.runs_table import COL, COLUMNS, settings_diff
from gui.state import ExperimentState
from gui.views.runs_view import NAME_WIDTH
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


def assert_one_current_run(win: MainWindow, key: str | None) -> None:
    """The current-run invariant: session, selected row, bold curves, diagnosis and the target of
    the file actions are the same run."""
    assert win.session.current_key == key
    assert win.runs.selected_key() == key
    assert win.curves.shown_key() == key
    run = win.history.get(key)
    if run is None:
        assert win.curves.epochs() == [] and win.diagnosis.diagnosis is None
        assert not win.save_model_action.isEnabled() and not win.runs.delete_button.isEnabled()
        return
    assert win.curves.epochs() == [m["epoch"] for m in run.metrics]
    assert win.curves.history()["dev_loss"] == [m["dev_loss"] for m in run.metrics]
    assert key not in win.curves.overlay_keys()  # drawn bold, not as an overlay
    assert win.diagnosis.epoch_label.text().startswith(run.name)
    assert run.name in win.controls.progress.format() and run.name in win.run_status.text()
    if not run.live:
        final, _ = run.final_metrics()
        assert win.diagnosis.dev_label.text() == f"{100 * (1 - final['dev_acc']):.2f} %"


def test_runs_reload_with_their_differing_settings_and_the_latest_is_current(qtbot, runs_dir):
    win = make_window(qtbot, runs_dir)
    keys = win.history.keys()
    assert keys == [str(runs_dir / f"run-{i}") for i in range(3)]
    assert win.runs_model.rowCount() == 3
    settings = [win.runs_model.row_texts(k)["Settings"] for k in keys]
    assert settings == ["l2=0, keep_prob=1", "l2=0.01, keep_prob=1", "l2=0, keep_prob=0.8"]
    for k in keys:
        run = load_run(k)
        row = win.runs_model.row_texts(k)
        assert row["Epochs"] == "4" and row["Status"] == "completed"
        spe = sum(m["seconds"] for m in run.metrics) / 4
        assert row["s/epoch"] == f"{1000 * spe:.1f} ms"
        assert row["Params"] == "42" and row["Memory"] == "168 B"
    assert sorted(win.curves.overlay_keys()) == sorted(keys[:2])
    assert_one_current_run(win, keys[2])  # reload at start: the latest run is current


def test_run_trained_in_one_window_is_back_in_the_next(qtbot, tmp_path):
    root = tmp_path / "runs"
    win = make_window(qtbot, root)
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
    row = win.runs_model.row_texts(blocker.args[0])
    win.close()
    again = make_window(qtbot, root)
    assert again.history.keys() == [blocker.args[0]]
    assert again.runs_model.row_texts(blocker.args[0]) == row
    assert_one_current_run(again, blocker.args[0])


def assert_cells_fit(win: MainWindow) -> None:
    """No runs-table cell is cut off: each column at least as wide as its widest cell (Name and
    Settings have caps: a long name is elided, settings wrap), each row as tall as it needs."""
    table = win.runs.table
    for col, name in enumerate(COLUMNS):
        need = table.sizeHintForColumn(col)
        if name == "Name":
            need = min(NAME_WIDTH, need)
        elif name == "Settings":
            need = max(160, min(320, need))
        assert table.columnWidth(col) >= need, name
    for row in range(win.runs_model.rowCount()):
        assert table.rowHeight(row) == table.sizeHintForRow(row), row


def test_runs_trained_one_after_another_keep_every_cell_readable(qtbot, tmp_path):
    # the columns are fitted row by row as runs start and finish (a full fit re-measures every
    # cell); the second run changes every row's Settings text (only what differs is listed)
    win = make_window(qtbot, tmp_path / "runs")
    for l2 in (0.0, 1.0):
        win.state.update("regularization", l2=l2)
        with qtbot.waitSignal(win.runFinished, timeout=30000):
            qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
        assert_cells_fit(win)
    keys = win.history.keys()
    assert [win.runs_model.row_texts(k)["Settings"] for k in keys] == ["l2=0", "l2=1"]
    assert all(win.runs_model.row_texts(k)["Status"] == "completed" for k in keys)


def test_the_current_run_is_one_run_after_every_action(qtbot, runs_dir, tmp_path):
    win = make_window(qtbot, runs_dir)
    keys = win.history.keys()
    # select: clicking a row makes that run current everywhere
    win.runs.table.selectRow(0)
    assert_one_current_run(win, keys[0])
    # train: a new run becomes current when it starts, while an older row was highlighted
    win.state.update("regularization", l2=1.0)
    with qtbot.waitSignal(win.runFinished, timeout=30000) as blocker:
        qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
        assert win.session.current_key == win.session.live_key  # current from the first moment
    new = blocker.args[0]
    assert_one_current_run(win, new)
    # ... so Save model writes the new (l2 = 1) run's model, not the highlighted old one's
    out = tmp_path / "saved.npz"
    assert win.save_model(out)
    assert out.read_bytes() == (Path(new) / "model.npz").read_bytes()
    assert json.loads(np.load(out, allow_pickle=False)["config"][()])["regularization"]["l2"] == 1.0
    # hide: a hidden run leaves the plots, so no run is current
    win.runs.set_visible(new, False)
    assert_one_current_run(win, None)
    # select another: it is current; delete it: nothing is current, the rest stays
    win.runs.select(keys[1])
    assert_one_current_run(win, keys[1])
    win.delete_run(keys[1], confirm=False)
    assert_one_current_run(win, None)
    assert win.history.keys() == [keys[0], keys[2], new]
    assert sorted(win.curves.overlay_keys()) == sorted([keys[0], keys[2], new])
    assert not win.curves.overlay_visible(new)  # still hidden
    # showing a hidden run again does not change what is current
    win.runs.set_visible(new, True)
    assert_one_current_run(win, None)
    assert win.curves.overlay_visible(new)


def test_rename_and_hide_persist_across_restart_and_names_stay_unique(qtbot, runs_dir):
    win = make_window(qtbot, runs_dir)
    key = str(runs_dir / "run-1")
    row = win.runs_model.row_of(key)
    name_index = win.runs_model.index(row, COL["Name"])
    assert win.runs_model.setData(name_index, "L2 0.01", Qt.ItemDataRole.EditRole)  # the cell editor
    assert json.loads((runs_dir / "run-1" / LABELS_FILE).read_text())["name"] == "L2 0.01"
    # a second run may not take the same name
    win.runs_model.setData(win.runs_model.index(0, COL["Name"]), "L2 0.01", Qt.ItemDataRole.EditRole)
    assert win.history.get(str(runs_dir / "run-0")).name == "L2 0.01 (2)"
    assert win.curves.overlay_visible(key)
    win.runs.set_visible(key, False)
    assert not win.curves.overlay_visible(key)
    assert all(not item.isVisible() for item in win.curves._overlays[key].items.values())
    win.close()
    again = make_window(qtbot, runs_dir)
    run = again.history.get(key)
    assert run.name == "L2 0.01" and run.hidden
    check = again.runs_model.data(again.runs_model.index(row, COL["Show"]), Qt.ItemDataRole.CheckStateRole)
    assert check == Qt.CheckState.Unchecked
    assert not again.curves.overlay_visible(key)
    assert again.curves.overlay_visible(str(runs_dir / "run-0"))
    assert load_run(key).summary["stop_reason"] == "completed"  # the engine's files are untouched


def test_delete_asks_first_and_removes_folder_row_and_overlay(qtbot, runs_dir):
    win = make_window(qtbot, runs_dir)
    key = str(runs_dir / "run-2")
    win.runs.select(key)
    win._ask = lambda title, text: False
    qtbot.mouseClick(win.runs.delete_button, Qt.MouseButton.LeftButton)
    assert (runs_dir / "run-2").is_dir() and win.history.get(key) is not None
    asked = []
    win._ask = lambda title, text: asked.append(text) or True
    qtbot.mouseClick(win.runs.delete_button, Qt.MouseButton.LeftButton)
    assert "“run-2”" in asked[0]
    assert not (runs_dir / "run-2").exists()
    assert win.history.get(key) is None and key not in win.curves.overlay_keys()
    assert win.runs_model.rowCount() == 2
    assert win.statusBar().currentMessage() == "Deleted “run-2”"
    assert win.delete_run(str(runs_dir / "run-0"), confirm=False)
    assert not (runs_dir / "run-0").exists()
    assert win.history.keys() == [str(runs_dir / "run-1")]


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("summary.json", "[]"),
        ("summary.json", '{"stop_reason": 3}'),
        ("metrics.jsonl", '{"train_loss": 0.5}\n'),  # a line without epoch
        ("metrics.jsonl", '{"epoch": "one", "train_loss": 0.5}\n'),
        ("config.json", "[" * 50_000 + "]" * 50_000),
        ("config.json", '{"data": {"n_samples": ' + "9" * 400 + "}}"),
        ("config.json", "{oops"),
        ("reglab_gui.json", "[" * 50_000 + "]" * 50_000),
    ],
)
def test_a_broken_run_folder_never_stops_the_window_from_opening(qtbot, runs_dir, file, content):
    (runs_dir / "run-1" / file).write_text(content)
    win = make_window(qtbot, runs_dir)
    if file == "reglab_gui.json":  # only the display labels are bad: the run loads with its default name
        assert win.history.get(str(runs_dir / "run-1")).name == "run-1"
        return
    assert win.history.get(str(runs_dir / "run-1")) is None
    assert len(win.history) == 2
    assert win.run_read_problems and "run-1" in win.run_read_problems[0]
    assert "could not be read" in win.banner_text() and "run-1" in win.banner_text()


def test_an_interrupted_run_is_listed_as_incomplete(qtbot, runs_dir):
    (runs_dir / "run-0" / "summary.json").unlink()  # as if it crashed mid-run
    win = make_window(qtbot, runs_dir)
    assert win.runs_model.row_texts(str(runs_dir / "run-0"))["Status"] == "incomplete"
    assert len(win.history) == 3


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
    first, second = win.history.runs()[0], win.history.runs()[1]
    win.runs.select(first.key)
    assert win.curves.history()["dev_loss"] == [m["dev_loss"] for m in first.metrics]
    out = tmp_path / "curves.csv"
    assert win.export_curves_csv(out)
    rows = out.read_text().splitlines()
    assert len(rows) == 1 + len(first.metrics)
    assert float(rows[1].split(",")[2]) == first.metrics[0]["dev_loss"]
    win.runs.select(second.key)
    assert win.curves.history()["dev_loss"] == [m["dev_loss"] for m in second.metrics]
