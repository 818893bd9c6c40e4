"""Small shared widgets of the settings panels.

- :class:`SciSpinBox`: a double spin box that shows values with ``%g`` (1e-05, 0.003)
  and optionally steps on a log scale (each arrow press multiplies by a factor).
- :class:`LogSlider`: an integer slider mapped to a log-scale value, position 0 = 0.
- :func:`link_spin_slider`: keeps a SciSpinBox and a LogSlider in step.
- :class:`ImageGrid`: a grid of small uint8 images scaled up with nearest neighbour.
- :func:`hint_label`: a word-wrapped label for explanations, warnings and errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

# mid-tone colours stay legible on light and dark palettes; info text uses the palette's own
WARN_STYLE = "color: #c07800;"
ERROR_STYLE = "color: #e0303a; font-weight: bold;"
INFO_STYLE = "color: palette(placeholder-text);"


class SciSpinBox(QDoubleSpinBox):
    """QDoubleSpinBox showing ``%g`` text; with ``log_step`` arrows multiply/divide by it.

    Many decimals are kept internally so values such as 1e-6 survive rounding.
    """

    def __init__(
        self,
        minimum: float,
        maximum: float,
        log_step: float | None = None,
        first_step: float | None = None,
        parent=None,
    ):
        super().__init__(parent)
        self._first_step = first_step  # where an up-arrow from 0 lands on a log scale
        self.setDecimals(10)
        self.setRange(minimum, maximum)
        self._log_step = log_step
        self.setKeyboardTracking(False)
        self.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # noqa: D102
        from PySide6.QtGui import QValidator

        stripped = text.strip()
        if stripped in ("", "-", ".", "e", "E") or stripped.lower().endswith(("e", "e-", "e+")):
            return QValidator.State.Intermediate, text, pos
        try:
            v = float(stripped.replace(",", "."))
        except ValueError:
            return QValidator.State.Invalid, text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        if self._log_step is None:
            super().stepBy(steps)
            return
        v = self.value()
        if v <= 0:
            if steps > 0:
                self.setValue(self._first_step or max(self.minimum(), 1e-6))
            return
        new = v * self._log_step**steps
        if steps < 0 and self._first_step and new < self._first_step * 0.999 and self.minimum() <= 0:
            new = 0.0  # stepping down past the first step reaches "off"
        self.setValue(new)


class LogSlider(QSlider):
    """Horizontal slider whose positions map to ``lo .. hi`` on a log scale; position 0 is 0.

    valueChangedFloat(float) is emitted on user moves.
    """

    valueChangedFloat = Signal(float)

    def __init__(self, lo: float, hi: float, steps: int = 60, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self._lo, self._hi, self._steps = math.log10(lo), math.log10(hi), steps
        self.setRange(0, steps)
        self.valueChanged.connect(self._on_value_changed)

    def to_float(self, pos: int) -> float:
        if pos <= 0:
            return 0.0
        frac = (pos - 1) / max(self._steps - 1, 1)
        return float(10 ** (self._lo + frac * (self._hi - self._lo)))

    def to_pos(self, value: float) -> int:
        if value <= 0:
            return 0
        frac = (math.log10(value) - self._lo) / (self._hi - self._lo)
        return int(round(1 + min(max(frac, 0.0), 1.0) * (self._steps - 1)))

    def set_float(self, value: float) -> None:
        """Move the handle without emitting valueChangedFloat."""
        self.blockSignals(True)
        self.setValue(self.to_pos(value))
        self.blockSignals(False)

    def _on_value_changed(self, pos: int) -> None:
        # round to 3 significant digits so the spin shows tidy numbers
        v = self.to_float(pos)
        self.valueChangedFloat.emit(float(f"{v:.3g}") if v > 0 else 0.0)


def link_spin_slider(spin: SciSpinBox, slider: LogSlider) -> None:
    """Keep spin and slider in step; the spin's valueChanged is the one source of edits."""
    slider.valueChangedFloat.connect(spin.setValue)
    spin.valueChanged.connect(slider.set_float)


def hint_label(text: str = "", style: str = INFO_STYLE, object_name: str | None = None) -> QLabel:
    """A word-wrapped label that never forces the column wider."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(style)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setMinimumWidth(60)
    if object_name:
        label.setObjectName(object_name)
    return label


def array_to_qimage(img: np.ndarray) -> QImage:
    """uint8 ``(H, W, C)`` with C in {1, 3} (or ``(H, W)``) -> a QImage owning its copy."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    a = np.ascontiguousarray(a)
    h, w = a.shape[:2]
    if a.ndim == 2:
        q = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_Grayscale8)
    else:
        q = QImage(a.data, w, h, a.strides[0], QImage.Format.Format_RGB888)
    return q.copy()  # detach from the NumPy buffer


def scaled_pixmap(img: np.ndarray, size: int) -> QPixmap:
    """Nearest-neighbour upscaling so 32×32 pictures stay crisp; longest side = size px."""
    q = array_to_qimage(img)
    return QPixmap.fromImage(q).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
    )


class ImageGrid(QWidget):
    """A grid of small images with optional captions; one cell may be marked (thick frame).

    ``images`` keeps the arrays last shown (tests compare them); labels are QLabel pixmaps.
    """

    def __init__(self, columns: int = 4, cell: int = 80, parent=None):
        super().__init__(parent)
        self._columns = columns
        self._cell = cell
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(4)
        self.images: list[np.ndarray] = []
        self.cells: list[QLabel] = []

    def set_images(
        self, images: Sequence[np.ndarray], captions: Sequence[str] | None = None, marked: int | None = None
    ) -> None:
        """Show images (each uint8 ``(H, W, C)``), row by row."""
        while self._grid.count():
            item = self._grid.takeAt(0)
            w = item.widget()
            if w is not None:
                w.deleteLater()
        self.images = [np.asarray(im) for im in images]
        self.cells = []
        for i, img in enumerate(self.images):
            box = QWidget()
            lay = QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.setSpacing(1)
            pic = QLabel()
            pic.setPixmap(scaled_pixmap(img, self._cell))
            pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
            pic.setFixedSize(self._cell + 6, self._cell + 6)  # never squeezed by the layout
            if marked is not None and i == marked:
                pic.setStyleSheet("border: 3px solid #1f77b4;")
            else:
                pic.setStyleSheet("border: 1px solid #c0c0c0;")
            lay.addWidget(pic)
            if captions is not None and i < len(captions):
                cap = QLabel(captions[i])
                cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
                cap.setStyleSheet("font-size: 9pt;")
                cap.setMaximumWidth(self._cell + 8)
                lay.addWidget(cap)
            self.cells.append(pic)
            self._grid.addWidget(box, i // self._columns, i % self._columns)


# ---------------------------------------------------------------- controls driven by the config specs

CONFIG_FIELD = "configField"  # widget property: the config field path a control edits
CONFIG_SCALE = "configScale"  # widget property: control value = config value × this (percentages)


def configure_spin(spin: QAbstractSpinBox, path: str, scale: float = 1.0, name: str | None = None):
    """Give a spin box the range, help text and field name of a config field (engine.config specs),
    so the window accepts exactly the values the validator accepts. ``scale`` shows fractions as
    percentages (100). Returns the spin."""
    from engine.config import field_spec

    spec = field_spec(path.split("[", 1)[0])
    if spec.lo is None or spec.hi is None:
        raise ValueError(f"{path} has no numeric range")
    if isinstance(spin, QDoubleSpinBox) and not isinstance(spin, SciSpinBox):
        spin.setDecimals(max(spin.decimals(), spec.decimals if scale == 1.0 else 2))
    spin.setRange(spec.lo * scale, spec.hi * scale)
    spin.setToolTip(spec.help[:1].upper() + spec.help[1:])
    spin.setProperty(CONFIG_FIELD, path)
    spin.setProperty(CONFIG_SCALE, float(scale))
    if name:
        spin.setObjectName(name)
    return spin


def mark_field(widget: QWidget, path: str, name: str | None = None) -> QWidget:
    """Tag a non-numeric control (combo, check box, line edit) with its config field and help."""
    from engine.config import field_spec

    spec = field_spec(path)
    widget.setProperty(CONFIG_FIELD, path)
    if not widget.toolTip():
        widget.setToolTip(spec.help[:1].upper() + spec.help[1:])
    if name:
        widget.setObjectName(name)
    return widget


class OptionalSpin(QWidget):
    """A nullable config field: a check box (ticked: a value) and a spin box with the field's range.

    ``edited(value)`` carries the number, or None when unticked. ``set_value(None | number)``
    shows a config value without emitting.
    """

    edited = Signal(object)

    def __init__(self, path: str, text: str, spin: QAbstractSpinBox, name: str, parent=None):
        from PySide6.QtWidgets import QCheckBox, QHBoxLayout

        super().__init__(parent)
        self.setObjectName(name)
        self.check = QCheckBox(text)
        self.check.setObjectName(f"{name}Check")
        self.spin = configure_spin(spin, path, name=f"{name}Spin")
        spin.setKeyboardTracking(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.check)
        lay.addWidget(self.spin, 1)
        self.check.setToolTip(self.spin.toolTip())
        self.check.toggled.connect(self._on_changed)
        self.spin.valueChanged.connect(self._on_changed)
        self.spin.setEnabled(False)

    def value(self):
        if not self.check.isChecked():
            return None
        v = self.spin.value()
        return int(v) if isinstance(self.spin, QSpinBox) else float(v)

    def set_value(self, value) -> None:
        for w in (self.check, self.spin):
            w.blockSignals(True)
        self.check.setChecked(value is not None)
        if value is not None:
            self.spin.setValue(value)
        self.spin.setEnabled(value is not None)
        for w in (self.check, self.spin):
            w.blockSignals(False)

    def _on_changed(self, *_args) -> None:
        self.spin.setEnabled(self.check.isChecked())
        self.edited.emit(self.value())
