"""Augmentation panel: one control per transform and a live preview grid.

The preview (one training image and 11 augmented variants) is computed by
``engine.augment.preview`` in a TaskRunner thread, debounced by a 100 ms single-shot
timer, so dragging a spin never freezes the window and only the latest result is shown.
For 2-D datasets the controls are disabled (they still show the config): augmentation
applies to image datasets only.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.config import ConfigError, from_dict
from gui.panels.widgets import ERROR_STYLE, ImageGrid, configure_spin, hint_label
from gui.state import ExperimentState
from gui.tasks import TaskRunner

N_VARIANTS = 11  # + the original = a 4×3 grid
DEBOUNCE_MS = 100


def _dspin(name: str, path: str, step: float, suffix: str = "") -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setSingleStep(step)
    spin.setDecimals(0)
    spin.setKeyboardTracking(False)
    if suffix:
        spin.setSuffix(suffix)
    return configure_spin(spin, path, name=name)


class AugmentPanel(QWidget):
    """Augmentation settings with a live preview of augmented training images."""

    def __init__(self, state: ExperimentState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("augmentPanel")
        self._state = state
        self._updating = False
        self._seed = 0  # preview seed; Reroll changes it
        self._pick_rng = np.random.default_rng(12345)  # which image "Another image" shows
        self._image_index: int | None = None  # index into the training images
        self.preview_original: np.ndarray | None = None  # uint8 (H, W, C)
        self.preview_variants: np.ndarray | None = None  # uint8 (n, H, W, C)
        self.preview_error: str | None = None

        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        self.note_label = hint_label("", object_name="augmentNote")
        root.addWidget(self.note_label)

        self.spatial_box = QGroupBox("Spatial")
        sform = QFormLayout(self.spatial_box)
        sform.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.hflip_spin = _dspin("hflipSpin", "augment.hflip", 0.1)
        self.hflip_spin.setToolTip("Probability of mirroring left-right")
        sform.addRow("Horizontal flip p", self.hflip_spin)
        self.vflip_spin = _dspin("vflipSpin", "augment.vflip", 0.1)
        self.vflip_spin.setToolTip("Probability of mirroring top-bottom")
        sform.addRow("Vertical flip p", self.vflip_spin)
        self.rotate_spin = _dspin("rotateSpin", "augment.rotate_deg", 5, " °")
        self.rotate_spin.setToolTip("Rotation drawn uniformly in ± this many degrees")
        sform.addRow("Rotation ±", self.rotate_spin)
        self.zoom_min_spin = _dspin("zoomMinSpin", "augment.zoom[0]", 0.05)
        self.zoom_max_spin = _dspin("zoomMaxSpin", "augment.zoom[1]", 0.05)
        zoom_row = QHBoxLayout()
        zoom_row.addWidget(self.zoom_min_spin)
        zoom_row.addWidget(hint_label("to"))
        zoom_row.addWidget(self.zoom_max_spin)
        sform.addRow("Zoom ×", zoom_row)
        self.translate_spin = _dspin("translateSpin", "augment.translate", 0.05)
        self.translate_spin.setToolTip("Shift drawn in ± this fraction of width and height")
        sform.addRow("Translate ±", self.translate_spin)
        self.crop_pad_spin = configure_spin(QSpinBox(), "augment.crop_padding", name="cropPadSpin")
        self.crop_pad_spin.setSuffix(" px")
        self.crop_pad_spin.setKeyboardTracking(False)
        self.crop_pad_spin.setToolTip("Pad by this many pixels, then crop back at a random offset")
        sform.addRow("Pad + random crop", self.crop_pad_spin)
        root.addWidget(self.spatial_box)

        self.pixel_box = QGroupBox("Pixel")
        pform = QFormLayout(self.pixel_box)
        pform.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.noise_spin = _dspin("noiseSpin", "augment.noise_std", 0.01)
        self.noise_spin.setToolTip("Gaussian noise σ on the 0..1 pixel scale")
        pform.addRow("Noise σ", self.noise_spin)
        self.brightness_spin = _dspin("brightnessSpin", "augment.brightness", 0.05)
        self.brightness_spin.setToolTip("Adds a value drawn in ± this (0..1 pixel scale)")
        pform.addRow("Brightness ±", self.brightness_spin)
        self.contrast_spin = _dspin("contrastSpin", "augment.contrast", 0.05)
        self.contrast_spin.setToolTip("Scales around the image mean by a factor in [1 − c, 1 + c]")
        pform.addRow("Contrast ±", self.contrast_spin)
        root.addWidget(self.pixel_box)

        self.problems_label = hint_label("", ERROR_STYLE, "augmentProblemsLabel")
        root.addWidget(self.problems_label)

        self.preview_box = QGroupBox("Preview (training batches only)")
        vbox = QVBoxLayout(self.preview_box)
        row = QHBoxLayout()
        self.class_combo = QComboBox()
        self.class_combo.setObjectName("previewClassCombo")
        self.class_combo.setToolTip("Pick the preview image from this class")
        self.next_image_button = QPushButton("Another image")
        self.next_image_button.setObjectName("nextImageButton")
        self.reroll_button = QPushButton("Reroll")
        self.reroll_button.setObjectName("rerollButton")
        self.reroll_button.setToolTip("Draw new random augmentations of the same image")
        row.addWidget(self.class_combo, 1)
        row.addWidget(self.next_image_button)
        row.addWidget(self.reroll_button)
        vbox.addLayout(row)
        self.preview_grid = ImageGrid(columns=4, cell=80)
        self.preview_grid.setObjectName("augmentPreview")
        vbox.addWidget(self.preview_grid)
        self.preview_status = hint_label("", object_name="previewStatusLabel")
        vbox.addWidget(self.preview_status)
        root.addWidget(self.preview_box)
        root.addStretch(1)

        self._controls = [
            self.hflip_spin,
            self.vflip_spin,
            self.rotate_spin,
            self.zoom_min_spin,
            self.zoom_max_spin,
            self.translate_spin,
            self.crop_pad_spin,
            self.noise_spin,
            self.brightness_spin,
            self.contrast_spin,
        ]
        self.hflip_spin.valueChanged.connect(lambda v: self._write(hflip=float(v)))
        self.vflip_spin.valueChanged.connect(lambda v: self._write(vflip=float(v)))
        self.rotate_spin.valueChanged.connect(lambda v: self._write(rotate_deg=float(v)))
        self.zoom_min_spin.valueChanged.connect(self._on_zoom_min_changed)
        self.zoom_max_spin.valueChanged.connect(self._on_zoom_max_changed)
        self.translate_spin.valueChanged.connect(lambda v: self._write(translate=float(v)))
        self.crop_pad_spin.valueChanged.connect(lambda v: self._write(crop_padding=int(v)))
        self.noise_spin.valueChanged.connect(lambda v: self._write(noise_std=float(v)))
        self.brightness_spin.valueChanged.connect(lambda v: self._write(brightness=float(v)))
        self.contrast_spin.valueChanged.connect(lambda v: self._write(contrast=float(v)))
        self.reroll_button.clicked.connect(self._on_reroll_clicked)
        self.next_image_button.clicked.connect(self._on_next_image_clicked)
        self.class_combo.activated.connect(self._on_class_combo_activated)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start_preview)
        self._runner = TaskRunner(self)
        self._runner.finished.connect(self._on_preview_finished)
        self._runner.errored.connect(self._on_preview_errored)

        state.configChanged.connect(self._on_state_config_changed)
        state.dataChanged.connect(self._on_state_data_changed)
        self._on_state_data_changed()
        self.refresh()

    # ------------------------------------------------------------ config -> widgets

    def _on_state_config_changed(self, section: str) -> None:
        if section in ("augment", "all"):
            self.refresh()

    def refresh(self) -> None:
        """Set every control from the config and schedule a preview."""
        a = self._state.config.augment
        self._updating = True
        try:
            self.hflip_spin.setValue(a.hflip)
            self.vflip_spin.setValue(a.vflip)
            self.rotate_spin.setValue(a.rotate_deg)
            self.zoom_min_spin.setValue(a.zoom[0])
            self.zoom_max_spin.setValue(a.zoom[1])
            self.translate_spin.setValue(a.translate)
            self.crop_pad_spin.setValue(a.crop_padding)
            self.noise_spin.setValue(a.noise_std)
            self.brightness_spin.setValue(a.brightness)
            self.contrast_spin.setValue(a.contrast)
        finally:
            self._updating = False
        probs = self.problems()
        self.problems_label.setText("\n".join("✖ " + p for p in probs))
        self.problems_label.setVisible(bool(probs))
        self.schedule_preview()

    # ------------------------------------------------------------ widgets -> config

    def _write(self, **fields) -> None:
        if not self._updating:
            self._state.update("augment", **fields)

    def _on_zoom_min_changed(self, value: float) -> None:
        # keep lo ≤ hi by construction: raising the minimum drags the maximum along
        hi = max(float(value), self.zoom_max_spin.value())
        self._write(zoom=[float(value), hi])

    def _on_zoom_max_changed(self, value: float) -> None:
        lo = min(float(value), self.zoom_min_spin.value())
        self._write(zoom=[lo, float(value)])

    def problems(self) -> list[str]:
        """Augmentation settings the config validation refuses."""
        try:
            from_dict({"augment": self._state.config.to_dict()["augment"]})
        except ConfigError as exc:
            return [str(exc)]
        return []

    # ------------------------------------------------------------ data and image choice

    def _training_images(self) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """(X uint8 (n, H, W, C), y (n,), classes) of the training images, or None for 2-D data."""
        prepared = self._state.prepared
        if prepared is not None and prepared.is_image and len(prepared.train) > 0:
            return prepared.train.X, prepared.train.y, list(prepared.classes)
        main = self._state.sources.get("main")
        if main is not None and main.is_image and len(main.y) > 0:
            return main.X, main.y, list(main.classes)
        return None

    def is_image_data(self) -> bool:
        return self._training_images() is not None

    def _on_state_data_changed(self) -> None:
        data = self._training_images()
        enabled = data is not None
        for w in self._controls:
            w.setEnabled(enabled)
        for w in (self.class_combo, self.next_image_button, self.reroll_button):
            w.setEnabled(enabled)
        if data is None:
            has_data = bool(self._state.sources)
            self.note_label.setText(
                "Augmentation applies to image datasets. "
                + (
                    "The current dataset is 2-D points, so these settings are kept but not used."
                    if has_data
                    else "Load an image dataset to use and preview it."
                )
            )
            self._image_index = None
            self.class_combo.clear()
            self.preview_grid.set_images([])
            self.preview_original = self.preview_variants = None
            self.preview_status.setText("")
            return
        X, y, classes = data
        self.note_label.setText(
            "Applied to training batches only, with fresh random draws each time; "
            "dev and test images are never augmented."
        )
        current = self.class_combo.currentText()
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItems(["any class", *classes])
        if current in classes:
            self.class_combo.setCurrentText(current)
        self.class_combo.blockSignals(False)
        self._image_index = self._first_index(y, classes)
        self.schedule_preview()

    def _class_filter(self, y: np.ndarray, classes: list[str]) -> np.ndarray:
        name = self.class_combo.currentText()
        if name in classes:
            return np.flatnonzero(y == classes.index(name))
        return np.arange(len(y))

    def _first_index(self, y: np.ndarray, classes: list[str]) -> int | None:
        idx = self._class_filter(y, classes)
        return int(idx[0]) if len(idx) else None

    def _on_class_combo_activated(self, _index: int) -> None:
        data = self._training_images()
        if data is not None:
            self._image_index = self._first_index(data[1], data[2])
            self.schedule_preview()

    def _on_next_image_clicked(self) -> None:
        data = self._training_images()
        if data is None:
            return
        idx = self._class_filter(data[1], data[2])
        if len(idx) > 1:
            choices = idx[idx != self._image_index] if self._image_index is not None else idx
            self._image_index = int(self._pick_rng.choice(choices))
        elif len(idx) == 1:
            self._image_index = int(idx[0])
        self.schedule_preview()

    def _on_reroll_clicked(self) -> None:
        self._seed += 1
        self.schedule_preview()

    def current_image(self) -> np.ndarray | None:
        """The training image the preview starts from, uint8 (H, W, C), or None."""
        data = self._training_images()
        if data is None or self._image_index is None or self._image_index >= len(data[1]):
            return None
        return np.asarray(data[0][self._image_index])

    # ------------------------------------------------------------ preview worker

    def schedule_preview(self) -> None:
        """Recompute the preview after a short quiet period (debounce)."""
        if self.is_image_data():
            self._timer.start()

    def _start_preview(self) -> None:
        image = self.current_image()
        if image is None or self.problems():
            return
        cfg = self._state.config.augment  # immutable: safe to hand to the worker
        seed = self._seed

        def job(ctx):
            from engine.augment import preview

            variants = preview(image, cfg, N_VARIANTS, seed)
            return image, variants

        self.preview_status.setText("computing preview…")
        self._runner.start(job)

    def _on_preview_finished(self, result) -> None:
        image, variants = result
        self.preview_original = image
        self.preview_variants = np.asarray(variants)
        self.preview_error = None
        captions = ["original", *[f"#{i + 1}" for i in range(len(variants))]]
        self.preview_grid.set_images([image, *list(variants)], captions, marked=0)
        h, w = image.shape[:2]
        self.preview_status.setText(
            f"Original (framed) and {len(variants)} augmented variants, {w}×{h} px shown enlarged; "
            f"seed {self._seed}."
        )

    def _on_preview_errored(self, message: str) -> None:
        self.preview_error = message
        self.preview_status.setText(f"Preview failed: {message}")

    def shutdown(self, msecs: int = 5000) -> bool:
        """Stop the preview timer and worker (the window calls this when it closes)."""
        self._timer.stop()
        return self._runner.shutdown(msecs)
