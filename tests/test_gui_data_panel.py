"""DataPanel driven as a user would: built-in sets, folders, split presets, errors, cancel."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QWidget,
)

from engine.config import from_dict
from gui.panels.data_panel import MISMATCH_TEXT, DataPanel
from gui.state import ExperimentState

TIMEOUT = 20_000


def small_config(**data):
    d = {"source": "builtin:moons", "n_samples": 200, "noise": 0.2, "split": [0.6, 0.2, 0.2]}
    d.update(data)
    return from_dict({"data": d, "model": {"hidden": [8]}})


@pytest.fixture
def make_panel(qtbot):
    panels = []

    def make(config=None, errors=None):
        state = ExperimentState(config or small_config())
        panel = DataPanel(state, error_dialog=(errors.append if errors is not None else lambda m: None))
        qtbot.addWidget(panel)
        panels.append(panel)
        return state, panel

    yield make
    for p in panels:
        assert p.shutdown(10_000)


def wait_loaded(qtbot, state, panel, source=None):
    def done():
        main = state.sources.get("main")
        return (
            not panel.is_loading()
            and main is not None
            and (source is None or main.source == source)
            and (state.prepared is not None or state.prepare_error is not None)
        )

    qtbot.waitUntil(done, timeout=TIMEOUT)


def split_table(panel) -> dict[str, dict[str, int]]:
    t = panel.findChild(QTableWidget, "splitCountsTable")
    out = {}
    for r in range(t.rowCount()):
        name = t.item(r, 0).text()
        out[name] = {s: int(t.item(r, c).text()) for c, s in enumerate(("train", "dev", "test"), start=1)}
    return out


def wait_table(qtbot, panel, expected_total):
    qtbot.waitUntil(lambda: split_table(panel).get("total") == expected_total, timeout=TIMEOUT)


def make_folder(root, classes, n_per_class, size=8, broken=()):
    """Class folders of small solid-colour PNGs; names in ``broken`` become zero-byte files."""
    rng = np.random.default_rng(0)
    for ci, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True)
        for i in range(n_per_class):
            colour = np.zeros((size, size, 3), np.uint8)
            colour[..., ci % 3] = 200
            colour += rng.integers(0, 40, colour.shape, dtype=np.uint8)
            Image.fromarray(colour).save(d / f"img{i}.png")
    for rel in broken:
        (root / rel).write_bytes(b"")
    return root


def test_choose_builtin_loads_and_shows_classes(qtbot, make_panel):
    state, panel = make_panel()
    wait_loaded(qtbot, state, panel, "builtin:moons")
    combo = panel.findChild(QComboBox, "builtinCombo")
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "moons",
        "circles",
        "spiral",
        "blobs",
        "xor",
        "shapes",
    ]
    with qtbot.waitSignal(state.dataChanged, timeout=TIMEOUT):
        combo.setCurrentText("spiral")
    wait_loaded(qtbot, state, panel, "builtin:spiral")
    assert state.config.data.source == "builtin:spiral"
    main = state.sources["main"]
    table = panel.findChild(QTableWidget, "classesTable")
    assert table.rowCount() == 3  # spiral has n_classes = 3 arms
    counts = {table.item(r, 0).text(): int(table.item(r, 1).text()) for r in range(3)}
    assert counts == {name: int(np.sum(main.y == i)) for i, name in enumerate(main.classes)}
    assert sum(counts.values()) == 200
    # 2-D data is drawn as a scatter plot of every point
    assert not panel.findChild(pg.PlotWidget, "dataScatter").isHidden()
    assert panel.findChild(QWidget, "thumbnailGrid").isHidden()
    xs, ys = panel.scatter_item.getData()
    assert len(xs) == 200
    # the n_classes control applies to spiral: 4 arms after editing it
    panel.findChild(type(panel.n_classes_spin), "nClassesSpin").setValue(4)
    qtbot.waitUntil(
        lambda: len(state.sources["main"].classes) == 4 and not panel.is_loading(), timeout=TIMEOUT
    )
    assert table.rowCount() == 4


def test_split_presets_update_counts(qtbot, make_panel):
    state, panel = make_panel()
    wait_loaded(qtbot, state, panel)
    # 200 moons, 100 per class: 60/20/20 stratified is 60/20/20 per class
    table = split_table(panel)
    assert table["total"] == {"train": 120, "dev": 40, "test": 40}
    assert table["upper moon"] == {"train": 60, "dev": 20, "test": 20}
    combo = panel.findChild(QComboBox, "splitPresetCombo")
    combo.setCurrentText("70/30")
    assert state.config.data.split == (0.7, 0.3, 0.0)
    assert split_table(panel)["total"] == {"train": round(200 * 0.7), "dev": round(200 * 0.3), "test": 0}
    assert split_table(panel)["lower moon"] == {"train": 70, "dev": 30, "test": 0}
    combo.setCurrentText("98/1/1")
    # 200 × (0.98, 0.01, 0.01) = 196 / 2 / 2
    assert split_table(panel)["total"] == {"train": 196, "dev": 2, "test": 2}
    assert panel.findChild(QDoubleSpinBox, "trainFracSpin").value() == pytest.approx(0.98)
    # the prepared split follows in the background
    qtbot.waitUntil(lambda: state.prepared is not None and len(state.prepared.train) == 196, timeout=TIMEOUT)
    assert len(state.prepared.dev) == 2 and len(state.prepared.test) == 2


def test_custom_fractions_must_sum_to_one(qtbot, make_panel):
    state, panel = make_panel()
    wait_loaded(qtbot, state, panel)
    assert panel.problems() == []
    train = panel.findChild(QDoubleSpinBox, "trainFracSpin")
    test = panel.findChild(QDoubleSpinBox, "testFracSpin")
    train.setValue(0.5)  # 0.5 + 0.2 + 0.2 = 0.9
    assert panel.findChild(QComboBox, "splitPresetCombo").currentText() == "Custom"
    probs = panel.problems()
    assert len(probs) == 1 and "add up to 0.9" in probs[0]
    label = panel.findChild(QLabel, "splitProblemLabel")
    assert not label.isHidden() and "add up to" in label.text()
    assert state.config.data.split == (0.6, 0.2, 0.2)  # an invalid split never reaches the config
    test.setValue(0.3)
    assert label.isHidden()
    assert panel.problems() == ["The split is being prepared again."]
    qtbot.waitUntil(lambda: panel.problems() == [], timeout=TIMEOUT)
    assert len(state.prepared.test) == 60
    assert state.config.data.split == (0.5, 0.2, 0.3)
    assert split_table(panel)["total"] == {"train": 100, "dev": 40, "test": 60}


def test_folder_with_broken_file_shows_skipped_report(qtbot, make_panel, tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "imgs", ["blue", "red"], 6, broken=["red/broken.png"])
    state, panel = make_panel(small_config(image_size=[8, 8], split=[0.5, 0.5, 0.0]))
    wait_loaded(qtbot, state, panel)
    button = panel.findChild(QPushButton, "skippedButton")
    assert button.isHidden()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    qtbot.mouseClick(panel.findChild(QPushButton, "openFolderButton"), Qt.MouseButton.LeftButton)
    assert state.config.data.source == str(folder)
    wait_loaded(qtbot, state, panel, str(folder))
    assert state.sources["main"].X.shape == (12, 8, 8, 3)
    assert not button.isHidden()
    assert button.text().startswith("1 file skipped")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = panel.skipped_dialog
    qtbot.addWidget(dialog)
    text = dialog.findChild(QPlainTextEdit, "skippedText")
    assert text.isReadOnly()
    assert "red/broken.png" in text.toPlainText()
    qtbot.mouseClick(dialog.findChild(QPushButton, "copyButton"), Qt.MouseButton.LeftButton)
    assert "red/broken.png" in QApplication.clipboard().text()
    # image data: thumbnails per class instead of the scatter plot
    assert not panel.findChild(QWidget, "thumbnailGrid").isHidden()
    assert panel.findChild(pg.PlotWidget, "dataScatter").isHidden()
    assert len(panel.thumbnail_grid.images) == 8  # 2 classes × 4
    table = panel.findChild(QTableWidget, "classesTable")
    assert {table.item(r, 0).text(): table.item(r, 1).text() for r in range(2)} == {"blue": "6", "red": "6"}


def test_load_error_goes_to_label_dialog_and_keeps_data(qtbot, make_panel, tmp_path):
    errors: list[str] = []
    state, panel = make_panel(errors=errors)
    wait_loaded(qtbot, state, panel)
    missing = tmp_path / "no_such_folder"
    panel.set_source(str(missing))
    qtbot.waitUntil(lambda: bool(errors), timeout=TIMEOUT)
    assert "no_such_folder" in errors[0]
    label = panel.findChild(QLabel, "dataErrorLabel")
    assert not label.isHidden() and "no_such_folder" in label.text()
    assert state.sources["main"].source == "builtin:moons"  # previous data kept
    # like Cancel, the settings go back to the loaded data, which stays usable for training
    assert state.config.data.source == "builtin:moons"
    assert panel.problems() == []
    assert "previous data is still loaded" in panel.status_label.text()
    # back to a built-in: the error goes away
    panel.findChild(QComboBox, "builtinCombo").setCurrentText("xor")
    wait_loaded(qtbot, state, panel, "builtin:xor")
    assert label.isHidden() and panel.problems() == []


def test_split_that_empties_dev_is_reported(qtbot, make_panel):
    state, panel = make_panel(small_config(n_samples=20))
    wait_loaded(qtbot, state, panel)
    # 20 × 0.01 rounds to an empty dev set: prepare refuses with a DataError
    panel.findChild(QComboBox, "splitPresetCombo").setCurrentText("98/1/1")
    qtbot.waitUntil(lambda: state.prepare_error is not None, timeout=TIMEOUT)
    assert state.prepared is None
    label = panel.findChild(QLabel, "dataErrorLabel")
    assert not label.isHidden() and "dev" in label.text()
    assert state.prepare_error in panel.problems()
    assert split_table(panel)["total"]["dev"] == 0


def test_cancel_keeps_previous_data(qtbot, make_panel):
    state, panel = make_panel()
    wait_loaded(qtbot, state, panel)
    before = state.sources["main"]
    state.update("data", source="builtin:shapes", n_samples=2000, image_size=[32, 32])
    qtbot.waitUntil(panel.is_loading, timeout=TIMEOUT)
    assert not panel.findChild(QPushButton, "cancelLoadButton").isHidden()
    assert not panel.load_progress.isHidden()
    qtbot.mouseClick(panel.findChild(QPushButton, "cancelLoadButton"), Qt.MouseButton.LeftButton)
    assert not panel.is_loading()
    assert panel.load_progress.isHidden()
    assert state.sources["main"] is before
    # the settings of the data that is actually loaded come back
    assert state.config.data.source == "builtin:moons" and state.config.data.n_samples == 200
    assert panel.findChild(QComboBox, "builtinCombo").currentText() == "moons"
    assert panel.shutdown(20_000)  # the cancelled thread ends; its result is dropped
    qtbot.wait(50)
    assert state.sources["main"] is before


def test_mismatched_dev_and_test_sources(qtbot, make_panel, tmp_path):
    main = make_folder(tmp_path / "web", ["cat", "dog"], 8)
    phone = make_folder(tmp_path / "phone", ["cat", "dog"], 4)
    state, panel = make_panel(small_config(source=str(main), image_size=[8, 8], split=[0.5, 0.25, 0.25]))
    wait_loaded(qtbot, state, panel, str(main))
    mismatch = panel.findChild(QLabel, "mismatchLabel")
    assert mismatch.isHidden()
    edit = panel.findChild(QLineEdit, "testSourceEdit")
    edit.setText(str(phone))
    edit.editingFinished.emit()
    assert state.config.data.test_source == str(phone)
    assert not mismatch.isHidden() and mismatch.text() == MISMATCH_TEXT
    qtbot.waitUntil(
        lambda: "test" in state.sources and state.prepared is not None and not panel.is_loading(),
        timeout=TIMEOUT,
    )
    # the test set is the whole phone folder; main is split between train and dev only
    counts = split_table(panel)
    assert counts["total"] == {"train": 11, "dev": 5, "test": 8}  # 16 × (2/3, 1/3) by largest remainder
    assert len(state.prepared.test) == 8
    qtbot.mouseClick(panel.findChild(QPushButton, "testSourceClearButton"), Qt.MouseButton.LeftButton)
    assert state.config.data.test_source is None
    assert mismatch.isHidden()


def test_normalization_before_after(qtbot, make_panel):
    state, panel = make_panel(small_config(source="builtin:blobs", noise=1.0))
    wait_loaded(qtbot, state, panel, "builtin:blobs")
    norm = panel.views["norm"]
    after = norm["after"]
    # standardized with the training split's statistics: mean 0, std 1 on the training set
    assert len(after) == len(state.prepared.train)
    np.testing.assert_allclose(after.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(after.std(axis=0), 1.0, atol=1e-3)
    np.testing.assert_allclose(norm["before"], state.prepared.train.X, rtol=1e-6)
    check = panel.findChild(QCheckBox, "normalizeCheck")
    assert check.isChecked()
    check.setChecked(False)
    assert state.config.data.normalize == "none"
    qtbot.waitUntil(
        lambda: np.allclose(panel.views["norm"]["after"], panel.views["norm"]["before"]), timeout=TIMEOUT
    )
    assert "off" in panel.norm_note.text()


def test_set_config_refreshes_every_control(qtbot, make_panel):
    state, panel = make_panel()
    wait_loaded(qtbot, state, panel)
    other = small_config(
        source="builtin:blobs",
        n_samples=300,
        noise=0.7,
        n_classes=4,
        split=[0.98, 0.01, 0.01],
        stratify=False,
        normalize="none",
        seed=5,
        dev_source="builtin:blobs",
    )
    state.set_config(other)
    assert panel.findChild(QComboBox, "builtinCombo").currentText() == "blobs"
    assert panel.n_samples_spin.value() == 300
    assert panel.noise_spin.value() == pytest.approx(0.7)
    assert panel.n_classes_spin.value() == 4
    assert panel.seed_spin.value() == 5
    assert panel.findChild(QComboBox, "splitPresetCombo").currentText() == "98/1/1"
    assert panel.findChild(QDoubleSpinBox, "devFracSpin").value() == pytest.approx(0.01)
    assert not panel.findChild(QCheckBox, "stratifyCheck").isChecked()
    assert not panel.findChild(QCheckBox, "normalizeCheck").isChecked()
    assert panel.findChild(QLineEdit, "devSourceEdit").text() == "builtin:blobs"
    # dev is a fresh sample of the same generator as test: same distribution, no warning
    assert panel.findChild(QLabel, "mismatchLabel").isHidden()
    wait_loaded(qtbot, state, panel, "builtin:blobs")
    qtbot.waitUntil(lambda: "dev" in state.sources and not panel.is_loading(), timeout=TIMEOUT)
    assert len(state.sources["main"].classes) == 4


def test_train_test_folders_show_dev_carved_from_train(qtbot, make_panel, tmp_path):
    # a source split into train/ and test/ only (like MNIST): dev comes out of train
    root = tmp_path / "presplit"
    make_folder(root / "train", ["cat", "dog"], 10)
    make_folder(root / "test", ["cat", "dog"], 3)
    state, panel = make_panel(small_config(source=str(root), image_size=[8, 8], split=[0.6, 0.2, 0.2]))
    wait_loaded(qtbot, state, panel, str(root))
    assert state.prepare_error is None
    # dev share 0.2 / (0.6 + 0.2) = 1/4 of the 20 training images: 5, stratified, so each
    # class gives 10 / 4 = 2.5 rounded to 2 or 3; the given test part stays whole
    counts = split_table(panel)
    assert counts["total"] == {"train": 15, "dev": 5, "test": 6}
    assert sorted((counts["cat"]["dev"], counts["dog"]["dev"])) == [2, 3]
    assert counts["cat"]["test"] == counts["dog"]["test"] == 3
    assert (len(state.prepared.train), len(state.prepared.dev), len(state.prepared.test)) == (15, 5, 6)
    note = panel.findChild(QLabel, "splitNoteLabel") or panel.split_note
    assert "carved" in note.text()


def test_first_load_failure_blocks_training_with_the_reason(qtbot, make_panel, tmp_path):
    errors: list[str] = []
    missing = tmp_path / "nothing_here"
    state, panel = make_panel(small_config(source=str(missing)), errors=errors)
    qtbot.waitUntil(lambda: bool(errors), timeout=TIMEOUT)
    assert not state.sources  # nothing to fall back to
    assert any("nothing_here" in p for p in panel.problems())
