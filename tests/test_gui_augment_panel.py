"""AugmentPanel: every control writes the config, the live preview follows, 2-D disables it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QGroupBox, QLabel, QPushButton, QSpinBox

from engine.config import from_dict
from engine.prepare import load_sources, prepare_from_sources
from gui.panels.augment_panel import N_VARIANTS, AugmentPanel
from gui.state import ExperimentState

TIMEOUT = 20_000


def image_config(**augment):
    return from_dict(
        {
            "data": {"source": "builtin:shapes", "n_samples": 60, "noise": 0.0, "image_size": [16, 16]},
            "augment": augment,
            "model": {"hidden": [8]},
        }
    )


def loaded_state(cfg) -> ExperimentState:
    state = ExperimentState(cfg)
    sources = load_sources(cfg.data)
    state.set_data(sources, prepare_from_sources(cfg, sources))
    return state


@pytest.fixture
def make_panel(qtbot):
    panels = []

    def make(state):
        panel = AugmentPanel(state)
        qtbot.addWidget(panel)
        panels.append(panel)
        return panel

    yield make
    for p in panels:
        assert p.shutdown(10_000)


def wait_preview(qtbot, panel, condition=lambda p: True):
    qtbot.waitUntil(
        lambda: panel.preview_variants is not None and not panel._runner.is_running() and condition(panel),
        timeout=TIMEOUT,
    )


def test_controls_write_every_transform(qtbot, make_panel):
    state = loaded_state(image_config())
    panel = make_panel(state)
    spins = {
        "hflipSpin": ("hflip", 0.5),
        "vflipSpin": ("vflip", 0.3),
        "rotateSpin": ("rotate_deg", 15.0),
        "translateSpin": ("translate", 0.1),
        "noiseSpin": ("noise_std", 0.05),
        "brightnessSpin": ("brightness", 0.2),
        "contrastSpin": ("contrast", 0.25),
    }
    for name, (field, value) in spins.items():
        panel.findChild(QDoubleSpinBox, name).setValue(value)
        assert getattr(state.config.augment, field) == pytest.approx(value), name
    panel.findChild(QSpinBox, "cropPadSpin").setValue(4)
    assert state.config.augment.crop_padding == 4
    panel.findChild(QDoubleSpinBox, "zoomMaxSpin").setValue(1.2)
    panel.findChild(QDoubleSpinBox, "zoomMinSpin").setValue(0.9)
    assert state.config.augment.zoom == pytest.approx([0.9, 1.2])
    # raising the minimum above the maximum drags the maximum along (lo ≤ hi by construction)
    panel.findChild(QDoubleSpinBox, "zoomMinSpin").setValue(1.5)
    assert state.config.augment.zoom == pytest.approx([1.5, 1.5])
    assert panel.findChild(QDoubleSpinBox, "zoomMaxSpin").value() == pytest.approx(1.5)
    assert panel.problems() == []
    # grouped as Spatial and Pixel
    titles = {b.title(): b for b in panel.findChildren(QGroupBox)}
    assert titles["Spatial"].isAncestorOf(panel.findChild(QDoubleSpinBox, "rotateSpin"))
    assert titles["Pixel"].isAncestorOf(panel.findChild(QDoubleSpinBox, "noiseSpin"))


def test_preview_shows_mirrored_image_with_hflip_one(qtbot, make_panel):
    state = loaded_state(image_config())
    panel = make_panel(state)
    wait_preview(qtbot, panel)
    original = panel.preview_original
    assert original.shape == (16, 16, 3)
    assert np.array_equal(original, state.prepared.train.X[panel._image_index])
    # nothing on: every variant is the original
    assert panel.preview_variants.shape == (N_VARIANTS, 16, 16, 3)
    assert all(np.array_equal(v, original) for v in panel.preview_variants)
    mirrored = original[:, ::-1]
    assert not np.array_equal(mirrored, original)  # shapes are not all symmetric
    panel.findChild(QDoubleSpinBox, "hflipSpin").setValue(1.0)
    wait_preview(qtbot, panel, lambda p: all(np.array_equal(v, mirrored) for v in p.preview_variants))
    # the grid shows the original (marked) and the variants
    assert len(panel.preview_grid.images) == N_VARIANTS + 1
    assert np.array_equal(panel.preview_grid.images[0], original)
    assert np.array_equal(panel.preview_grid.images[1], mirrored)


def test_reroll_draws_new_variants(qtbot, make_panel):
    state = loaded_state(image_config(rotate_deg=30.0, noise_std=0.1))
    panel = make_panel(state)
    wait_preview(qtbot, panel)
    first = panel.preview_variants.copy()
    assert not all(np.array_equal(v, panel.preview_original) for v in first)
    qtbot.mouseClick(panel.findChild(QPushButton, "rerollButton"), Qt.MouseButton.LeftButton)
    wait_preview(qtbot, panel, lambda p: not np.array_equal(p.preview_variants, first))
    # same image, new draws
    assert np.array_equal(panel.preview_original, state.prepared.train.X[panel._image_index])


def test_another_image_and_class_choice(qtbot, make_panel):
    state = loaded_state(image_config())
    panel = make_panel(state)
    wait_preview(qtbot, panel)
    first_index = panel._image_index
    qtbot.mouseClick(panel.findChild(QPushButton, "nextImageButton"), Qt.MouseButton.LeftButton)
    assert panel._image_index != first_index
    wait_preview(
        qtbot, panel, lambda p: np.array_equal(p.preview_original, state.prepared.train.X[p._image_index])
    )
    combo = panel.findChild(QComboBox, "previewClassCombo")
    classes = state.prepared.classes
    assert [combo.itemText(i) for i in range(1, combo.count())] == list(classes)
    combo.setCurrentIndex(2)
    combo.activated.emit(2)
    assert state.prepared.train.y[panel._image_index] == 1  # first image of classes[1]
    for _ in range(3):
        qtbot.mouseClick(panel.findChild(QPushButton, "nextImageButton"), Qt.MouseButton.LeftButton)
        assert state.prepared.train.y[panel._image_index] == 1


def test_2d_data_disables_controls_but_reflects_config(qtbot, make_panel):
    cfg = from_dict({"data": {"source": "builtin:moons", "n_samples": 100}, "augment": {"hflip": 0.5}})
    state = loaded_state(cfg)
    panel = make_panel(state)
    hflip = panel.findChild(QDoubleSpinBox, "hflipSpin")
    assert not hflip.isEnabled()
    assert not panel.findChild(QDoubleSpinBox, "noiseSpin").isEnabled()
    assert not panel.findChild(QPushButton, "rerollButton").isEnabled()
    assert hflip.value() == pytest.approx(0.5)
    assert "image datasets" in panel.findChild(QLabel, "augmentNote").text()
    state.update("augment", rotate_deg=20.0)
    assert panel.findChild(QDoubleSpinBox, "rotateSpin").value() == pytest.approx(20.0)
    qtbot.wait(200)  # the debounce passes without a preview job
    assert panel.preview_variants is None
    # switching to image data enables everything
    img = image_config()
    sources = load_sources(img.data)
    state.set_config(img)
    state.set_data(sources, prepare_from_sources(img, sources))
    assert hflip.isEnabled()
    wait_preview(qtbot, panel)


def test_set_config_refreshes_every_control(qtbot, make_panel):
    state = loaded_state(image_config())
    panel = make_panel(state)
    other = image_config(
        hflip=0.25,
        vflip=0.75,
        rotate_deg=45.0,
        zoom=[0.8, 1.3],
        translate=0.2,
        crop_padding=3,
        noise_std=0.02,
        brightness=0.1,
        contrast=0.4,
    )
    state.set_config(other)
    expect = {
        "hflipSpin": 0.25,
        "vflipSpin": 0.75,
        "rotateSpin": 45.0,
        "zoomMinSpin": 0.8,
        "zoomMaxSpin": 1.3,
        "translateSpin": 0.2,
        "noiseSpin": 0.02,
        "brightnessSpin": 0.1,
        "contrastSpin": 0.4,
    }
    for name, value in expect.items():
        assert panel.findChild(QDoubleSpinBox, name).value() == pytest.approx(value), name
    assert panel.findChild(QSpinBox, "cropPadSpin").value() == 3
    # refreshing the widgets wrote nothing back
    assert state.config.augment.zoom == (0.8, 1.3)
    wait_preview(qtbot, panel)
