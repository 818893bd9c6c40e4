"""The Sweep tab's parameter editor: which config fields vary, and over which values.

Each row picks a field (the regularization, optimization and size settings a sweep is usually
about, plus the training-set size for learning curves) and its values: a list typed as on the
command line (``0, 0.01, 0.1``; ``null`` for "all" training examples; ``sgd, adam``), or a log /
linear range LO … HI with N values. The range controls take their bounds from the field's
config spec (:func:`engine.config.field_spec`), and every row is turned into a
:class:`engine.sweep.SweepParam` by the engine's own ``parse_param`` / ``make_range``, so the
window accepts exactly what ``python main.py sweep --param`` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.config import ConfigError, ExperimentConfig, field_spec
from engine.sweep import SweepParam, make_range, parse_param
from gui.panels.widgets import SciSpinBox


@dataclass(frozen=True)
class FieldChoice:
    label: str
    mode: str  # the mode a new row starts in: "list", "log" or "lin"
    values: str  # the list a new row starts with
    lo: float = 0.0
    hi: float = 1.0
    n: int = 5


# the fields offered, in menu order (any config field can be swept from the command line)
SWEEP_FIELDS: dict[str, FieldChoice] = {
    "regularization.l2": FieldChoice("L2 λ", "log", "0, 0.001, 0.01, 0.1", 1e-4, 1.0, 5),
    "regularization.l1": FieldChoice("L1 λ₁", "log", "0, 0.0001, 0.001", 1e-5, 0.1, 5),
    "regularization.keep_prob": FieldChoice("dropout keep_prob", "list", "0.5, 0.8, 1", 0.5, 1.0, 3),
    "regularization.input_keep_prob": FieldChoice("input keep_prob", "list", "0.8, 0.9, 1", 0.5, 1.0, 3),
    "optimizer.lr": FieldChoice("learning rate α", "log", "0.001, 0.01, 0.1", 1e-4, 0.1, 4),
    "model.init_scale": FieldChoice("init scale", "log", "0.1, 1, 10", 0.1, 10.0, 5),
    "model.hidden": FieldChoice("hidden width (every layer)", "list", "8, 32, 128", 8, 256, 6),
    "training.batch_size": FieldChoice("batch size", "log", "16, 64, 256", 16, 256, 5),
    "data.train_limit": FieldChoice(
        "training examples (learning curve)", "list", "30, 60, 120, null", 30, 300, 5
    ),
    "training.epochs": FieldChoice("epochs", "list", "10, 50, 200", 10, 300, 5),
    "optimizer.name": FieldChoice("optimizer", "list", "sgd, momentum, adam"),
    "model.activation": FieldChoice("activation", "list", "relu, tanh"),
    "model.init": FieldChoice("initialization", "list", "he, xavier"),
}
MODES = {"list": "list", "log": "log range", "lin": "lin range"}


def _range_fields() -> set[str]:
    return {f for f in SWEEP_FIELDS if field_spec(f).kind in ("float", "int", "keep_prob", "int_list")}


class ParamRow(QWidget):
    """One varied field: field, mode, and a list or LO/HI/N. ``changed()`` on any edit."""

    changed = Signal()
    removeRequested = Signal(object)

    def __init__(self, index: int, field: str = "regularization.l2", parent: QWidget | None = None):
        super().__init__(parent)
        self.field_combo = QComboBox()
        self.field_combo.setObjectName(f"sweepField{index}")
        for path, choice in SWEEP_FIELDS.items():
            self.field_combo.addItem(choice.label, path)
            self.field_combo.setItemData(
                self.field_combo.count() - 1, f"{path}: {field_spec(path).help}", Qt.ItemDataRole.ToolTipRole
            )
        self.mode_combo = QComboBox()
        self.mode_combo.setObjectName(f"sweepMode{index}")
        for combo, chars in ((self.field_combo, 10), (self.mode_combo, 6)):  # long names elide
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(chars)
        self.values_edit = QLineEdit()
        self.values_edit.setObjectName(f"sweepValues{index}")
        self.values_edit.setPlaceholderText("values, e.g. 0, 0.01, 0.1")
        self.lo_spin = SciSpinBox(0.0, 1.0)
        self.lo_spin.setObjectName(f"sweepLo{index}")
        self.hi_spin = SciSpinBox(0.0, 1.0)
        self.hi_spin.setObjectName(f"sweepHi{index}")
        self.n_spin = QSpinBox()
        self.n_spin.setObjectName(f"sweepN{index}")
        self.n_spin.setRange(0, 1000)
        self.n_spin.setSpecialValueText("any")  # random sampling draws from the whole range
        self.n_spin.setToolTip("number of values from LO to HI (any: random sampling draws from the range)")
        self.remove_button = QPushButton("✕")
        self.remove_button.setObjectName(f"sweepRemove{index}")
        self.remove_button.setToolTip("Stop varying this field")
        self.remove_button.setFixedWidth(28)
        self.range_box = QWidget()
        rl = QHBoxLayout(self.range_box)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.lo_spin, 2)
        rl.addWidget(QLabel("…"))
        rl.addWidget(self.hi_spin, 2)
        rl.addWidget(QLabel("N"))
        rl.addWidget(self.n_spin, 1)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(2)
        grid.addWidget(self.field_combo, 0, 0)
        grid.addWidget(self.mode_combo, 0, 1)
        grid.addWidget(self.remove_button, 0, 2)
        grid.addWidget(self.values_edit, 1, 0, 1, 3)
        grid.addWidget(self.range_box, 2, 0, 1, 3)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)
        self.field_combo.currentIndexChanged.connect(self._on_field_changed)
        self.mode_combo.currentIndexChanged.connect(self._on_mode_changed)
        self.values_edit.textChanged.connect(lambda _t: self.changed.emit())
        for spin in (self.lo_spin, self.hi_spin):
            spin.valueChanged.connect(lambda _v: self.changed.emit())
        self.n_spin.valueChanged.connect(lambda _v: self.changed.emit())
        self.remove_button.clicked.connect(lambda: self.removeRequested.emit(self))
        self.set_field(field)

    # ------------------------------------------------------------ state
    def field(self) -> str:
        return self.field_combo.currentData()

    def mode(self) -> str:
        return self.mode_combo.currentData()

    def set_field(self, field: str) -> None:
        i = self.field_combo.findData(field)
        if i < 0:
            raise KeyError(field)
        if i == self.field_combo.currentIndex():
            self._on_field_changed(i)
        else:
            self.field_combo.setCurrentIndex(i)

    def set_mode(self, mode: str) -> None:
        i = self.mode_combo.findData(mode)
        if i < 0:
            raise KeyError(f"{self.field()} takes no {mode} range")
        self.mode_combo.setCurrentIndex(i)

    def set_range(self, lo: float, hi: float, n: int | None) -> None:
        self.lo_spin.setValue(lo)
        self.hi_spin.setValue(hi)
        self.n_spin.setValue(0 if n is None else n)

    def _on_field_changed(self, _i: int) -> None:
        field = self.field()
        choice = SWEEP_FIELDS[field]
        spec = field_spec(field)
        self.mode_combo.blockSignals(True)
        self.mode_combo.clear()
        modes = ["list"] + (["log", "lin"] if field in _range_fields() else [])
        for m in modes:
            self.mode_combo.addItem(MODES[m], m)
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(choice.mode))
        self.mode_combo.blockSignals(False)
        self.values_edit.setText(choice.values)
        self.values_edit.setToolTip(
            f"{field}: {spec.help}. A list as on the command line: numbers, null, names, or a JSON list "
            "such as [[64], [128, 64]]"
        )
        lo = spec.lo if spec.lo is not None else 0.0
        hi = spec.hi if spec.hi is not None else 1e9
        integer = spec.kind in ("int", "int_list")
        for spin in (self.lo_spin, self.hi_spin):
            spin.blockSignals(True)
            spin.setRange(float(lo), float(hi))
            spin.setDecimals(0 if integer else 10)
            spin.setToolTip(f"{field} accepts {spec.range_text()}")
            spin.blockSignals(False)
        self.lo_spin.setValue(choice.lo)
        self.hi_spin.setValue(choice.hi)
        self.n_spin.setValue(choice.n)
        self._on_mode_changed(self.mode_combo.currentIndex())

    def _on_mode_changed(self, _i: int) -> None:
        is_list = self.mode() == "list"
        self.values_edit.setVisible(is_list)
        self.range_box.setVisible(not is_list)
        self.changed.emit()

    def text(self) -> str:
        """The row as a ``--param`` text (what the command line would take)."""
        if self.mode() == "list":
            return f"{self.field()}={self.values_edit.text().strip()}"
        n = self.n_spin.value()
        tail = f":{n}" if n else ""
        return f"{self.field()}={self.mode()}:{self.lo_spin.value():g}:{self.hi_spin.value():g}{tail}"

    def build(self, base: ExperimentConfig) -> SweepParam:
        """The engine's parameter; ConfigError naming the field and what is wrong."""
        if self.mode() == "list":
            return parse_param(self.text(), base)
        n = self.n_spin.value() or None
        return make_range(self.field(), self.mode(), self.lo_spin.value(), self.hi_spin.value(), n, base)


class SweepParamsEditor(QWidget):
    """A list of ParamRows with "Add field"; ``changed()`` on any edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("sweepParams")
        self.rows: list[ParamRow] = []
        self._count = 0
        self._rows_box = QVBoxLayout()
        self._rows_box.setContentsMargins(0, 0, 0, 0)
        self._rows_box.setSpacing(8)
        self.add_button = QPushButton("+ Vary another field")
        self.add_button.setObjectName("addSweepFieldButton")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self._rows_box)
        lay.addWidget(self.add_button)
        self.add_button.clicked.connect(lambda: self.add_row())
        self.add_row("regularization.l2")

    def add_row(self, field: str | None = None) -> ParamRow:
        used = {r.field() for r in self.rows}
        if field is None:
            field = next(f for f in SWEEP_FIELDS if f not in used)
        row = ParamRow(self._count, field)
        self._count += 1
        row.changed.connect(self.changed)
        row.removeRequested.connect(self.remove_row)
        self.rows.append(row)
        self._rows_box.addWidget(row)
        self._update_buttons()
        self.changed.emit()
        return row

    def remove_row(self, row: ParamRow) -> None:
        if row in self.rows and len(self.rows) > 1:
            self.rows.remove(row)
            self._rows_box.removeWidget(row)
            row.deleteLater()
            self._update_buttons()
            self.changed.emit()

    def _update_buttons(self) -> None:
        for r in self.rows:
            r.remove_button.setEnabled(len(self.rows) > 1)
        self.add_button.setEnabled(len(self.rows) < len(SWEEP_FIELDS))

    def build(self, base: ExperimentConfig) -> list[SweepParam]:
        """Every row's parameter (ConfigError from the first bad one)."""
        params = []
        for r in self.rows:
            try:
                params.append(r.build(base))
            except ConfigError as exc:
                raise ConfigError(_window_words(str(exc))) from None
        return params


def _window_words(message: str) -> str:
    """The engine names a parameter as the command line's ``--param FIELD=…``; in the window
    it is the row of that field."""
    return message.removeprefix("--param ")
