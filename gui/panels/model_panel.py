"""Model & regularization panel: network shape, initialization, L2/L1, dropout,
early stopping, optimizer and training settings.

Edits go into the config through ``state.update``; ``refresh()`` rebuilds every control
from the config (connected to ``configChanged``). ``problems()`` lists settings the
engine would refuse; ``warnings()`` lists legal but questionable ones, both also shown
in words next to the controls.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.config import MAX_HIDDEN_LAYERS, ConfigError, field_spec
from gui.panels.memory_label import MemoryEstimateLabel
from gui.panels.widgets import (
    ERROR_STYLE,
    WARN_STYLE,
    LogSlider,
    SciSpinBox,
    configure_spin,
    hint_label,
    link_spin_slider,
    mark_field,
)
from gui.state import ExperimentState

# Shown only until engine.initializers exists; then its INIT_FORMULAS is used.
_FALLBACK_INIT_FORMULAS = {
    "zeros": "Zeros: W = 0",
    "random": "Random: W ~ N(0, 1) × init_scale",
    "xavier": "Xavier: W ~ N(0, 1/n_in) × init_scale",
    "glorot": "Glorot: W ~ N(0, 2/(n_in + n_out)) × init_scale",
    "he": "He: W ~ N(0, 2/n_in) × init_scale",
    "lecun": "LeCun: W ~ N(0, 1/n_in) × init_scale",
}

MAX_LAYERS = MAX_HIDDEN_LAYERS
_SECTIONS = ("model", "regularization", "early_stopping", "optimizer", "training")


def init_formulas() -> dict[str, str]:
    """The engine's formula texts (engine.initializers.INIT_FORMULAS), else the local table."""
    try:
        from engine.initializers import INIT_FORMULAS
    except ImportError:
        return _FALLBACK_INIT_FORMULAS
    return {**_FALLBACK_INIT_FORMULAS, **INIT_FORMULAS}


def weight_decay_text(lr: float, l2: float, m: int | None, optimizer: str) -> str:
    """The per-step shrink factor 1 − α·λ/m of L2 (engine.regularization.weight_decay_factor), in words."""
    from engine.regularization import weight_decay_factor

    if l2 <= 0:
        return "Weight decay: off (λ = 0)."
    if not m:
        return "Weight decay: each step first shrinks every weight: W ← (1 − α·λ/m)·W (load data for m)."
    shrink = lr * l2 / m
    factor = weight_decay_factor(lr, l2, m)
    # enough decimals to show the first three digits of the shrink (0.99999722 for 2.78e-6)
    digits = min(15, max(4, 2 - math.floor(math.log10(shrink)))) if shrink > 0 else 4
    text = (
        f"Weight decay: each step first does W ← {factor:.{digits}f} · W "
        f"(1 − α·λ/m = 1 − {shrink:.3g}, m = {m})."
    )
    if factor <= 0:
        text += " ⚠ α·λ/m ≥ 1: the penalty alone flips or zeros the weights."
    notes = {
        "sgd": " Exact for SGD.",
        "momentum": " Momentum spreads it over later steps: the same on average.",
        "adam": " Adam rescales it per weight by 1/√v̂, so it is not this factor (AdamW would be).",
    }
    return text + notes.get(optimizer, "")


def _prob_spin(path: str, name: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setSingleStep(0.05)
    spin.setKeyboardTracking(False)
    return configure_spin(spin, path, name=name)


def _int_spin(path: str, name: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setKeyboardTracking(False)
    return configure_spin(spin, path, name=name)


def _sci_spin(
    path: str, name: str, log_step: float | None = None, first_step: float | None = None
) -> SciSpinBox:
    spec = field_spec(path)
    return configure_spin(
        SciSpinBox(spec.lo, spec.hi, log_step=log_step, first_step=first_step), path, name=name
    )


def _combo(path: str, name: str) -> QComboBox:
    combo = QComboBox()
    combo.addItems(list(field_spec(path).choices))
    return mark_field(combo, path, name)


class ModelPanel(QWidget):
    """Network, regularization, early stopping, optimizer and training settings."""

    def __init__(self, state: ExperimentState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("modelPanel")
        self._state = state
        self._updating = False
        self.hidden_spins: list[QSpinBox] = []
        self.keep_spins: list[QDoubleSpinBox] = []

        root = QVBoxLayout(self)
        root.setContentsMargins(4, 4, 4, 4)
        self.memory_label = MemoryEstimateLabel(state)  # updated with the messages
        root.addWidget(self.memory_label)
        root.addWidget(self._build_network_group())
        root.addWidget(self._build_penalty_group())
        root.addWidget(self._build_dropout_group())
        root.addWidget(self._build_early_stopping_group())
        root.addWidget(self._build_optimizer_group())
        self.problems_label = hint_label("", ERROR_STYLE, "modelProblemsLabel")
        root.addWidget(self.problems_label)
        root.addStretch(1)

        state.configChanged.connect(self._on_state_config_changed)
        state.dataChanged.connect(self._update_messages)
        self.refresh()

    # ------------------------------------------------------------ building

    def _build_network_group(self) -> QGroupBox:
        box = QGroupBox("Network")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.hidden_container = QWidget()
        self.hidden_container.setObjectName("hiddenLayersList")
        self.hidden_grid = QGridLayout(self.hidden_container)
        self.hidden_grid.setContentsMargins(0, 0, 0, 0)
        self.hidden_grid.setSpacing(3)
        self.add_layer_button = QPushButton("+ layer")
        self.add_layer_button.setObjectName("addLayerButton")
        self.add_layer_button.setToolTip("Add a hidden layer at the end")
        self.remove_layer_button = QPushButton("− layer")
        self.remove_layer_button.setObjectName("removeLayerButton")
        self.remove_layer_button.setToolTip("Remove the last hidden layer")
        self.add_layer_button.clicked.connect(self._on_add_layer_clicked)
        self.remove_layer_button.clicked.connect(self._on_remove_layer_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_layer_button)
        buttons.addWidget(self.remove_layer_button)
        buttons.addStretch(1)
        layers = QVBoxLayout()
        layers.addWidget(self.hidden_container)
        layers.addLayout(buttons)
        form.addRow("Hidden layers", layers)
        self.hidden_note = hint_label("", object_name="hiddenNoteLabel")
        form.addRow(self.hidden_note)

        self.activation_combo = _combo("model.activation", "activationCombo")
        self.activation_combo.currentTextChanged.connect(lambda t: self._write("model", activation=t))
        form.addRow("Activation", self.activation_combo)

        self.init_combo = _combo("model.init", "initCombo")
        self.init_combo.currentTextChanged.connect(lambda t: self._write("model", init=t))
        form.addRow("Initialization", self.init_combo)
        self.init_formula_label = hint_label("", object_name="initFormulaLabel")
        self.init_formula_label.setStyleSheet("font-family: monospace;")
        form.addRow(self.init_formula_label)

        self.init_scale_spin = _sci_spin("model.init_scale", "initScaleSpin", log_step=2.0, first_step=0.01)
        self.init_scale_spin.valueChanged.connect(lambda v: self._write("model", init_scale=float(v)))
        form.addRow("Init scale ×", self.init_scale_spin)
        self.output_combo = _combo("model.output", "outputCombo")
        self.output_combo.currentTextChanged.connect(lambda t: self._write("model", output=t))
        form.addRow("Output", self.output_combo)
        self.output_note = hint_label("", object_name="outputNoteLabel")
        form.addRow(self.output_note)
        self.init_warning = hint_label("", WARN_STYLE, "initWarningLabel")
        form.addRow(self.init_warning)
        return box

    def _build_penalty_group(self) -> QGroupBox:
        box = QGroupBox("Weight penalties (L2 / L1)")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.l2_spin = _sci_spin("regularization.l2", "l2Spin", log_step=10 ** (1 / 3), first_step=1e-4)
        self.l2_slider = LogSlider(1e-5, 10.0, steps=61)
        self.l2_slider.setObjectName("l2Slider")
        link_spin_slider(self.l2_spin, self.l2_slider)
        self.l2_spin.valueChanged.connect(lambda v: self._write("regularization", l2=float(v)))
        form.addRow("L2 λ", self._pair(self.l2_spin, self.l2_slider))
        self.l2_formula = hint_label("J = (1/m)Σ L(ŷ, y) + (λ/2m)·Σ‖W‖²_F", object_name="l2FormulaLabel")
        form.addRow(self.l2_formula)
        self.weight_decay_label = hint_label("", object_name="weightDecayLabel")
        form.addRow(self.weight_decay_label)

        self.l1_spin = _sci_spin("regularization.l1", "l1Spin", log_step=10 ** (1 / 3), first_step=1e-5)
        self.l1_slider = LogSlider(1e-5, 10.0, steps=61)
        self.l1_slider.setObjectName("l1Slider")
        link_spin_slider(self.l1_spin, self.l1_slider)
        self.l1_spin.valueChanged.connect(lambda v: self._write("regularization", l1=float(v)))
        form.addRow("L1 λ₁", self._pair(self.l1_spin, self.l1_slider))
        self.l1_formula = hint_label(
            "adds (λ₁/m)·Σ|W| — drives weights to exactly 0 (sparse)", object_name="l1FormulaLabel"
        )
        form.addRow(self.l1_formula)
        return box

    def _build_dropout_group(self) -> QGroupBox:
        box = QGroupBox("Dropout (inverted; training only)")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.keep_prob_spin = _prob_spin("regularization.keep_prob", "keepProbSpin")
        self.keep_prob_spin.valueChanged.connect(self._on_keep_prob_spin_changed)
        form.addRow("keep_prob (all layers)", self.keep_prob_spin)

        self.per_layer_check = QCheckBox("Different keep_prob per hidden layer")
        self.per_layer_check.setObjectName("perLayerKeepCheck")
        self.per_layer_check.toggled.connect(self._on_per_layer_toggled)
        form.addRow(self.per_layer_check)

        self.keep_table = QTableWidget(0, 2)
        self.keep_table.setObjectName("keepProbTable")
        self.keep_table.setHorizontalHeaderLabels(["layer (units)", "keep_prob"])
        self.keep_table.verticalHeader().setVisible(False)
        self.keep_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.keep_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        form.addRow(self.keep_table)

        self.input_keep_spin = _prob_spin("regularization.input_keep_prob", "inputKeepProbSpin")
        self.input_keep_spin.valueChanged.connect(
            lambda v: self._write("regularization", input_keep_prob=float(v))
        )
        form.addRow("Input keep_prob", self.input_keep_spin)
        self.dropout_warning = hint_label("", WARN_STYLE, "dropoutWarningLabel")
        form.addRow(self.dropout_warning)
        return box

    def _build_early_stopping_group(self) -> QGroupBox:
        box = QGroupBox("Early stopping")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.early_check = QCheckBox("Stop when the dev metric stops improving")
        mark_field(self.early_check, "early_stopping.enabled", "earlyStopCheck")
        self.early_check.toggled.connect(lambda b: self._write("early_stopping", enabled=bool(b)))
        form.addRow(self.early_check)
        self.monitor_combo = _combo("early_stopping.monitor", "monitorCombo")
        self.monitor_combo.currentTextChanged.connect(lambda t: self._write("early_stopping", monitor=t))
        form.addRow("Monitor", self.monitor_combo)
        self.patience_spin = _int_spin("early_stopping.patience", "patienceSpin")
        self.patience_spin.valueChanged.connect(lambda v: self._write("early_stopping", patience=int(v)))
        form.addRow("Patience (epochs)", self.patience_spin)
        self.min_delta_spin = _sci_spin(
            "early_stopping.min_delta", "minDeltaSpin", log_step=10.0, first_step=1e-4
        )
        self.min_delta_spin.valueChanged.connect(lambda v: self._write("early_stopping", min_delta=float(v)))
        form.addRow("min_delta", self.min_delta_spin)
        self.restore_check = QCheckBox("Restore the best epoch's weights")
        mark_field(self.restore_check, "early_stopping.restore_best", "restoreBestCheck")
        self.restore_check.toggled.connect(lambda b: self._write("early_stopping", restore_best=bool(b)))
        form.addRow(self.restore_check)
        self.early_warning = hint_label("", WARN_STYLE, "earlyStopWarningLabel")
        form.addRow(self.early_warning)
        self._early_form = form
        return box

    def _build_optimizer_group(self) -> QGroupBox:
        box = QGroupBox("Optimizer && training")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.optimizer_combo = _combo("optimizer.name", "optimizerCombo")
        self.optimizer_combo.currentTextChanged.connect(lambda t: self._write("optimizer", name=t))
        form.addRow("Optimizer", self.optimizer_combo)
        self.lr_spin = _sci_spin("optimizer.lr", "lrSpin", log_step=10 ** (1 / 3))
        self.lr_spin.valueChanged.connect(lambda v: self._write("optimizer", lr=float(v)))
        form.addRow("Learning rate α", self.lr_spin)
        self.momentum_spin = self._beta_spin("momentumSpin", "momentum")
        form.addRow("Momentum β", self.momentum_spin)
        self.momentum_note = hint_label(
            "v = βv + (1 − β)·dW, as in the course. PyTorch and Keras use v = βv + dW, whose steps are "
            "1/(1 − β) times larger at the same learning rate.",
            object_name="momentumNoteLabel",
        )
        form.addRow(self.momentum_note)
        self.beta1_spin = self._beta_spin("beta1Spin", "beta1")
        form.addRow("Adam β₁", self.beta1_spin)
        self.beta2_spin = self._beta_spin("beta2Spin", "beta2")
        form.addRow("Adam β₂", self.beta2_spin)
        self.epsilon_spin = _sci_spin("optimizer.epsilon", "epsilonSpin", log_step=10.0)
        self.epsilon_spin.valueChanged.connect(lambda v: self._write("optimizer", epsilon=float(v)))
        form.addRow("Adam ε", self.epsilon_spin)
        self.optimizer_warning = hint_label("", WARN_STYLE, "optimizerWarningLabel")
        form.addRow(self.optimizer_warning)

        self.batch_spin = _int_spin("training.batch_size", "batchSizeSpin")
        self.batch_spin.valueChanged.connect(lambda v: self._write("training", batch_size=int(v)))
        form.addRow("Batch size", self.batch_spin)
        self.epochs_spin = _int_spin("training.epochs", "epochsSpin")
        self.epochs_spin.valueChanged.connect(lambda v: self._write("training", epochs=int(v)))
        form.addRow("Epochs", self.epochs_spin)
        self.seed_spin = _int_spin("training.seed", "seedSpin")
        self.seed_spin.valueChanged.connect(lambda v: self._write("training", seed=int(v)))
        form.addRow("Seed", self.seed_spin)
        self.dtype_combo = _combo("training.dtype", "dtypeCombo")
        self.dtype_combo.currentTextChanged.connect(lambda t: self._write("training", dtype=t))
        form.addRow("Precision", self.dtype_combo)
        self.training_note = hint_label("", WARN_STYLE, "trainingWarningLabel")
        form.addRow(self.training_note)
        self._optimizer_form = form
        return box

    def _beta_spin(self, name: str, field: str) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setSingleStep(0.01)
        spin.setKeyboardTracking(False)
        configure_spin(spin, f"optimizer.{field}", name=name)
        spin.valueChanged.connect(lambda v: self._write("optimizer", **{field: float(v)}))
        return spin

    @staticmethod
    def _pair(spin: QWidget, slider: QWidget) -> QWidget:
        w = QWidget()
        lay = QHBoxLayout(w)
        lay.setContentsMargins(0, 0, 0, 0)
        spin.setMinimumWidth(80)
        lay.addWidget(spin, 0)
        lay.addWidget(slider, 1)
        return w

    # ------------------------------------------------------------ config -> widgets

    def _on_state_config_changed(self, section: str) -> None:
        if section in ("all", *_SECTIONS):
            self.refresh()

    def refresh(self) -> None:
        """Set every control from the config (no writes back)."""
        cfg = self._state.config
        self._updating = True
        try:
            self._rebuild_hidden(cfg.model.hidden)
            self.activation_combo.setCurrentText(cfg.model.activation)
            self.init_combo.setCurrentText(cfg.model.init)
            self.output_combo.setCurrentText(cfg.model.output)
            self.init_scale_spin.setValue(cfg.model.init_scale)
            reg = cfg.regularization
            self.l2_spin.setValue(reg.l2)
            self.l2_slider.set_float(reg.l2)
            self.l1_spin.setValue(reg.l1)
            self.l1_slider.set_float(reg.l1)
            per_layer = isinstance(reg.keep_prob, tuple)
            self.per_layer_check.setChecked(per_layer)
            kps = [float(k) for k in reg.keep_prob] if per_layer else []
            if per_layer:
                self.keep_prob_spin.setValue(min(kps) if kps else 1.0)
            else:
                self.keep_prob_spin.setValue(float(reg.keep_prob))
            self.keep_prob_spin.setEnabled(not per_layer)
            self._rebuild_keep_table(cfg.model.hidden, kps)
            self.input_keep_spin.setValue(reg.input_keep_prob)
            es = cfg.early_stopping
            self.early_check.setChecked(es.enabled)
            self.monitor_combo.setCurrentText(es.monitor)
            self.patience_spin.setValue(es.patience)
            self.min_delta_spin.setValue(es.min_delta)
            self.restore_check.setChecked(es.restore_best)
            for w in (self.monitor_combo, self.patience_spin, self.min_delta_spin, self.restore_check):
                w.setEnabled(es.enabled)
            opt = cfg.optimizer
            self.optimizer_combo.setCurrentText(opt.name)
            self.lr_spin.setValue(opt.lr)
            self.momentum_spin.setValue(opt.momentum)
            self.beta1_spin.setValue(opt.beta1)
            self.beta2_spin.setValue(opt.beta2)
            self.epsilon_spin.setValue(opt.epsilon)
            self._optimizer_form.setRowVisible(self.momentum_spin, opt.name == "momentum")
            self._optimizer_form.setRowVisible(self.momentum_note, opt.name == "momentum")
            self._optimizer_form.setRowVisible(self.beta1_spin, opt.name == "adam")
            self._optimizer_form.setRowVisible(self.beta2_spin, opt.name == "adam")
            self._optimizer_form.setRowVisible(self.epsilon_spin, opt.name == "adam")
            tr = cfg.training
            self.batch_spin.setValue(tr.batch_size)
            self.epochs_spin.setValue(tr.epochs)
            self.seed_spin.setValue(tr.seed)
            self.dtype_combo.setCurrentText(tr.dtype)
        finally:
            self._updating = False
        self._update_messages()

    def _rebuild_hidden(self, hidden: list[int]) -> None:
        while len(self.hidden_spins) > len(hidden):
            spin = self.hidden_spins.pop()
            self.hidden_grid.removeWidget(spin)
            spin.setParent(None)  # gone from findChild at once, not only after deleteLater
            spin.deleteLater()
        for i in range(len(self.hidden_spins), len(hidden)):
            spin = _int_spin(f"model.hidden[{i}]", f"hiddenSpin{i}")
            spin.setToolTip(f"Units in hidden layer {i + 1}")
            spin.valueChanged.connect(self._on_hidden_spin_changed)
            self.hidden_spins.append(spin)
            self.hidden_grid.addWidget(spin, i // 4, i % 4)
        for spin, h in zip(self.hidden_spins, hidden):
            spin.setValue(int(h))
        self.add_layer_button.setEnabled(len(hidden) < MAX_LAYERS)
        self.remove_layer_button.setEnabled(len(hidden) > 0)
        if hidden:
            self.hidden_note.setText(
                f"{len(hidden)} hidden layer{'s' if len(hidden) != 1 else ''}: "
                + " → ".join(str(h) for h in hidden)
            )
        else:
            self.hidden_note.setText("No hidden layer: softmax (logistic) regression on the inputs.")

    def _rebuild_keep_table(self, hidden: list[int], kps: list[float]) -> None:
        self.keep_table.setVisible(bool(kps))
        while len(self.keep_spins) > len(kps):
            spin = self.keep_spins.pop()
            self.keep_table.removeCellWidget(len(self.keep_spins), 1)
            spin.setParent(None)
            spin.deleteLater()
        self.keep_table.setRowCount(len(kps))
        for i in range(len(self.keep_spins), len(kps)):
            spin = _prob_spin(f"regularization.keep_prob[{i}]", f"keepProbSpin{i}")
            spin.valueChanged.connect(self._on_keep_table_changed)
            self.keep_table.setCellWidget(i, 1, spin)
            self.keep_spins.append(spin)
        for i, (spin, kp) in enumerate(zip(self.keep_spins, kps)):
            spin.setValue(kp)
            item = QTableWidgetItem(f"hidden {i + 1} ({hidden[i]})" if i < len(hidden) else f"hidden {i + 1}")
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.keep_table.setItem(i, 0, item)
        rows = max(len(kps), 1)
        self.keep_table.setFixedHeight(min(rows, 6) * 30 + 28)

    # ------------------------------------------------------------ widgets -> config

    def _write(self, section: str, **fields) -> None:
        if self._updating:
            return
        try:
            self._state.update(section, **fields)
        except ConfigError as exc:  # the controls' ranges make this rare; never let it escape
            self.refresh()
            self.problems_label.setText("✖ " + str(exc))
            self.problems_label.setVisible(True)

    def _on_hidden_spin_changed(self) -> None:
        if self._updating:
            return
        self._state.update("model", hidden=[s.value() for s in self.hidden_spins])

    def _set_layers(self, hidden: list[int], keep: float | list[float]) -> None:
        # hidden and a per-layer keep_prob list must change together: the list is written
        # first without a signal, so no listener ever sees them with different lengths.
        self._state.update_values({"model.hidden": hidden, "regularization.keep_prob": keep})

    def _on_add_layer_clicked(self) -> None:
        cfg = self._state.config
        hidden = list(cfg.model.hidden)
        if len(hidden) >= MAX_LAYERS:
            return
        hidden.append(hidden[-1] if hidden else 32)
        keep = cfg.regularization.keep_prob
        if isinstance(keep, tuple):
            keep = [*keep, keep[-1] if keep else self.keep_prob_spin.value()]
        self._set_layers(hidden, keep)

    def _on_remove_layer_clicked(self) -> None:
        cfg = self._state.config
        hidden = list(cfg.model.hidden)
        if not hidden:
            return
        hidden.pop()
        keep = cfg.regularization.keep_prob
        if isinstance(keep, tuple):
            keep = keep[: len(hidden)]
        self._set_layers(hidden, keep)

    def _on_keep_prob_spin_changed(self, value: float) -> None:
        if self._updating or self.per_layer_check.isChecked():
            return
        self._state.update("regularization", keep_prob=float(value))

    def _on_per_layer_toggled(self, checked: bool) -> None:
        if self._updating:
            return
        cfg = self._state.config
        if checked:
            keep: float | list[float] = [float(self.keep_prob_spin.value())] * len(cfg.model.hidden)
        else:
            kps = cfg.keep_probs()
            keep = float(min(kps)) if kps else float(self.keep_prob_spin.value())
        self._state.update("regularization", keep_prob=keep)

    def _on_keep_table_changed(self) -> None:
        if self._updating:
            return
        self._state.update("regularization", keep_prob=[float(s.value()) for s in self.keep_spins])

    # ------------------------------------------------------------ problems and warnings

    def problems(self) -> list[str]:
        """Settings of this panel that the engine would refuse with the loaded data."""
        cfg = self._state.config
        prepared = self._state.prepared
        found = []
        if cfg.model.output == "sigmoid" and prepared is not None and prepared.n_classes != 2:
            found.append(
                f"model.output sigmoid has one output unit for two classes; this data has "
                f"{prepared.n_classes} classes: use softmax"
            )
        self.memory_label.refresh()  # the free memory changes with time: measure it now
        if self.memory_label.problem():
            found.append(self.memory_label.problem())
        return found

    def _warnings_by_group(self) -> dict[str, list[str]]:
        cfg = self._state.config
        out: dict[str, list[str]] = {"init": [], "dropout": [], "optimizer": [], "training": [], "early": []}
        hidden = cfg.model.hidden
        if hidden and (cfg.model.init == "zeros" or cfg.model.init_scale == 0):
            out["init"].append(
                "Zero initial weights: all hidden units stay identical: symmetry is never broken."
            )
        if cfg.model.init == "he" and cfg.model.activation in ("tanh", "sigmoid"):
            out["init"].append("He init is derived for ReLU; Xavier/Glorot suits tanh and sigmoid.")
        if len(hidden) >= 6 and cfg.model.init_scale >= 3:
            out["init"].append("A deep net with a large init scale: activations and gradients may explode.")
        if len(hidden) >= 6 and 0 < cfg.model.init_scale <= 0.3:
            out["init"].append("A deep net with a small init scale: gradients may vanish.")
        kps = cfg.keep_probs() if len(cfg.keep_probs()) == len(hidden) else []
        if any(k < 0.3 for k in kps):
            out["dropout"].append(
                "keep_prob below 0.3 drops most units: training is very noisy and may underfit."
            )
        if cfg.regularization.input_keep_prob < 0.5:
            out["dropout"].append("Input keep_prob below 0.5 hides most of every input.")
        if any(k < 1 for k in kps) or cfg.regularization.input_keep_prob < 1:
            out["dropout"].append(
                "Gradient checking turns dropout off: check gradients with keep_prob = 1, then add dropout."
            )
        opt = cfg.optimizer
        if opt.name in ("sgd", "momentum") and opt.lr >= 0.5:
            out["optimizer"].append(
                f"Learning rate {opt.lr:g} is large for {opt.name}: the cost may oscillate or diverge."
            )
        if opt.name == "adam" and opt.lr >= 0.05:
            out["optimizer"].append(f"Learning rate {opt.lr:g} is large for Adam: training may be unstable.")
        prepared = self._state.prepared
        if (
            prepared is not None
            and len(prepared.train) > 0
            and cfg.training.batch_size >= len(prepared.train)
        ):
            out["training"].append(
                f"Batch size ≥ the training set ({len(prepared.train)} examples): "
                "full-batch gradient descent, one step per epoch."
            )
        if cfg.training.dtype == "float64":
            out["training"].append("float64 is about half as fast; float32 is enough for training.")
        es = cfg.early_stopping
        if es.enabled and es.patience >= cfg.training.epochs:
            out["early"].append("Patience ≥ epochs: early stopping can never trigger.")
        return out

    def warnings(self) -> list[str]:
        """Legal but questionable settings (shown next to their controls)."""
        return [w for ws in self._warnings_by_group().values() for w in ws]

    def _update_messages(self) -> None:
        cfg = self._state.config
        formula = init_formulas().get(cfg.model.init, "")
        scale = f"   (init_scale = {cfg.model.init_scale:g})" if cfg.model.init != "zeros" else ""
        naming = {
            "xavier": "\n'xavier' is the course's 1/n_in; Keras and PyTorch call 2/(n_in + n_out) "
            "Xavier/Glorot, here 'glorot'.",
            "glorot": "\n'glorot' is 2/(n_in + n_out), what Keras and PyTorch call Xavier/Glorot; the "
            "course's Xavier (1/n_in) is 'xavier'.",
        }.get(cfg.model.init, "")
        self.init_formula_label.setText(f"{formula}{scale}{naming}")
        self.output_note.setText(
            "One sigmoid unit with binary cross-entropy (two classes only)."
            if cfg.model.output == "sigmoid"
            else "Softmax over the classes. For two classes it acts like a sigmoid on the difference of "
            "two logits; choose sigmoid to match the course's binary networks exactly."
        )
        prepared = self._state.prepared
        m = (
            f"m = {len(prepared.train)} training examples"
            if prepared is not None
            else "m = number of training examples"
        )
        self.l2_formula.setText(f"J = (1/m)Σ L(ŷ, y) + (λ/2m)·Σ‖W‖²_F   ({m}; weight decay)")
        n_train = len(prepared.train) if prepared is not None else None
        self.weight_decay_label.setText(
            weight_decay_text(cfg.optimizer.lr, cfg.regularization.l2, n_train, cfg.optimizer.name)
        )
        self.l1_formula.setText(f"L1 adds (λ₁/m)·Σ|W| ({m}); pushes weights to exactly 0 (sparse).")
        groups = self._warnings_by_group()
        for label, key in (
            (self.init_warning, "init"),
            (self.dropout_warning, "dropout"),
            (self.optimizer_warning, "optimizer"),
            (self.training_note, "training"),
            (self.early_warning, "early"),
        ):
            text = "\n".join("⚠ " + w for w in groups[key])
            label.setText(text)
            label.setVisible(bool(text))
        probs = [p for p in self.problems() if p != self.memory_label.problem()]  # shown at the top
        self.problems_label.setText("\n".join("✖ " + p for p in probs))
        self.problems_label.setVisible(bool(probs))
