"""ModelPanel: widgets write the config, the config refreshes the widgets, problems and warnings."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QPushButton, QSlider, QSpinBox

from engine.config import ConfigError, from_dict, validate
from engine.dataset import ArraySet, PreparedData
from engine.initializers import INIT_FORMULAS
from gui.panels.model_panel import ModelPanel
from gui.state import ExperimentState


@pytest.fixture
def panel_and_state(qtbot):
    state = ExperimentState(
        from_dict({"model": {"hidden": [16, 8]}, "optimizer": {"name": "adam", "lr": 0.01}})
    )
    panel = ModelPanel(state)
    qtbot.addWidget(panel)
    return panel, state


def spin(panel, name):
    return panel.findChild((QDoubleSpinBox, QSpinBox), name) or panel.findChild(QSpinBox, name)


def test_l2_spin_and_log_slider(panel_and_state):
    panel, state = panel_and_state
    l2 = panel.findChild(QDoubleSpinBox, "l2Spin")
    slider = panel.findChild(QSlider, "l2Slider")
    # arrows step on a log scale: off -> 1e-4, three steps per decade, and back down to off
    l2.stepBy(1)
    assert state.config.regularization.l2 == pytest.approx(1e-4)
    l2.stepBy(3)
    assert state.config.regularization.l2 == pytest.approx(1e-3)
    l2.stepBy(-4)
    assert state.config.regularization.l2 == 0.0
    l2.setValue(0.01)
    assert state.config.regularization.l2 == pytest.approx(0.01)
    # the slider is log-scale: 1e-5 .. 10 over positions 1..61 (ten per decade), so 0.01 sits at 31
    assert slider.value() == 31
    slider.setValue(41)  # one decade up
    assert state.config.regularization.l2 == pytest.approx(0.1)
    slider.setValue(61)
    assert state.config.regularization.l2 == pytest.approx(10.0)
    assert l2.value() == pytest.approx(10.0)
    slider.setValue(0)
    assert state.config.regularization.l2 == 0.0
    formula = panel.findChild(QLabel, "l2FormulaLabel").text()
    assert "(λ/2m)·Σ‖W‖²_F" in formula and "m = number of training examples" in formula
    panel.findChild(QDoubleSpinBox, "l1Spin").setValue(0.001)
    assert state.config.regularization.l1 == pytest.approx(0.001)
    assert "(λ₁/m)·Σ|W|" in panel.findChild(QLabel, "l1FormulaLabel").text()


def test_keep_prob_all_layers_and_per_layer(panel_and_state):
    panel, state = panel_and_state
    keep = panel.findChild(QDoubleSpinBox, "keepProbSpin")
    keep.setValue(0.8)
    assert state.config.regularization.keep_prob == pytest.approx(0.8)
    panel.findChild(QCheckBox, "perLayerKeepCheck").setChecked(True)
    assert state.config.regularization.keep_prob == pytest.approx([0.8, 0.8])
    assert not keep.isEnabled()
    assert not panel.findChild(type(panel.keep_table), "keepProbTable").isHidden()
    panel.findChild(QDoubleSpinBox, "keepProbSpin1").setValue(0.5)
    assert state.config.regularization.keep_prob == pytest.approx([0.8, 0.5])
    assert validate(state.config).keep_probs() == pytest.approx([0.8, 0.5])
    panel.findChild(QDoubleSpinBox, "inputKeepProbSpin").setValue(0.9)
    assert state.config.regularization.input_keep_prob == pytest.approx(0.9)
    # back to one value for all layers
    panel.findChild(QCheckBox, "perLayerKeepCheck").setChecked(False)
    assert state.config.regularization.keep_prob == pytest.approx(0.5)
    assert keep.isEnabled()


def test_add_remove_layers_keep_the_keep_prob_list_consistent(qtbot, panel_and_state):
    panel, state = panel_and_state
    panel.findChild(QCheckBox, "perLayerKeepCheck").setChecked(True)
    panel.findChild(QDoubleSpinBox, "keepProbSpin1").setValue(0.6)
    seen = []

    def on_changed(section):
        cfg = state.config
        seen.append((section, list(cfg.model.hidden), list(cfg.regularization.keep_prob)))

    state.configChanged.connect(on_changed)
    add = panel.findChild(QPushButton, "addLayerButton")
    remove = panel.findChild(QPushButton, "removeLayerButton")
    qtbot.mouseClick(add, Qt.MouseButton.LeftButton)
    assert state.config.model.hidden == (16, 8, 8)
    assert state.config.regularization.keep_prob == pytest.approx([1.0, 0.6, 0.6])
    assert len(panel.hidden_spins) == 3 and panel.keep_table.rowCount() == 3
    # no listener ever saw hidden and keep_prob with different lengths
    assert seen and all(len(h) == len(k) for _, h, k in seen)
    for _ in range(2):
        qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    assert state.config.model.hidden == (16,)
    assert state.config.regularization.keep_prob == pytest.approx([1.0])
    assert all(len(h) == len(k) for _, h, k in seen)
    validate(state.config)  # the engine accepts the result
    # sizes are editable
    panel.findChild(QSpinBox, "hiddenSpin0").setValue(128)
    assert state.config.model.hidden == (128,)
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    assert state.config.model.hidden == () and state.config.regularization.keep_prob == ()
    assert not remove.isEnabled()
    assert "logistic" in panel.findChild(QLabel, "hiddenNoteLabel").text()


def test_init_formula_follows_the_combo(panel_and_state):
    panel, state = panel_and_state
    combo = panel.findChild(QComboBox, "initCombo")
    label = panel.findChild(QLabel, "initFormulaLabel")
    assert INIT_FORMULAS["he"] in label.text()
    combo.setCurrentText("xavier")
    assert state.config.model.init == "xavier"
    assert INIT_FORMULAS["xavier"] in label.text()
    combo.setCurrentText("glorot")
    assert INIT_FORMULAS["glorot"] in label.text()
    panel.findChild(QDoubleSpinBox, "initScaleSpin").setValue(2.5)
    assert state.config.model.init_scale == pytest.approx(2.5)
    assert "2.5" in label.text()
    assert panel.warnings() == []
    combo.setCurrentText("zeros")
    assert any("symmetry is never broken" in w for w in panel.warnings())
    warning = panel.findChild(QLabel, "initWarningLabel")
    assert not warning.isHidden() and "symmetry" in warning.text()
    assert panel.problems() == []  # a warning, not an error


def test_optimizer_rows_and_log_steps(panel_and_state):
    panel, state = panel_and_state
    combo = panel.findChild(QComboBox, "optimizerCombo")
    momentum = panel.findChild(QDoubleSpinBox, "momentumSpin")
    beta1 = panel.findChild(QDoubleSpinBox, "beta1Spin")
    assert momentum.isHidden() and not beta1.isHidden()
    combo.setCurrentText("momentum")
    assert state.config.optimizer.name == "momentum"
    assert not momentum.isHidden() and beta1.isHidden()
    momentum.setValue(0.95)
    assert state.config.optimizer.momentum == pytest.approx(0.95)
    combo.setCurrentText("sgd")
    assert momentum.isHidden() and beta1.isHidden()
    lr = panel.findChild(QDoubleSpinBox, "lrSpin")
    lr.stepBy(1)  # log steps: three per decade
    assert state.config.optimizer.lr == pytest.approx(0.01 * 10 ** (1 / 3), rel=1e-6)
    lr.setValue(0.8)
    assert any("large for sgd" in w for w in panel.warnings())
    assert not panel.findChild(QLabel, "optimizerWarningLabel").isHidden()


def test_training_settings_and_full_batch_note(panel_and_state):
    panel, state = panel_and_state
    panel.findChild(QSpinBox, "batchSizeSpin").setValue(256)
    panel.findChild(QSpinBox, "epochsSpin").setValue(30)
    panel.findChild(QSpinBox, "seedSpin").setValue(7)
    panel.findChild(QComboBox, "dtypeCombo").setCurrentText("float64")
    t = state.config.training
    assert (t.batch_size, t.epochs, t.seed, t.dtype) == (256, 30, 7, "float64")
    assert not any("full-batch" in w for w in panel.warnings())  # no data yet
    n = 120
    sets = ArraySet(np.zeros((n, 2)), np.zeros(n, np.int64))
    prepared = PreparedData(sets, sets, sets, ["a", "b"], (2,), np.zeros(2), np.ones(2))
    state.set_data({}, prepared)
    assert any("full-batch" in w and "120" in w for w in panel.warnings())
    assert "m = 120" in panel.findChild(QLabel, "l2FormulaLabel").text()
    panel.findChild(QSpinBox, "batchSizeSpin").setValue(32)
    assert not any("full-batch" in w for w in panel.warnings())


def test_early_stopping_controls(panel_and_state):
    panel, state = panel_and_state
    check = panel.findChild(QCheckBox, "earlyStopCheck")
    patience = panel.findChild(QSpinBox, "patienceSpin")
    assert not patience.isEnabled()
    check.setChecked(True)
    assert state.config.early_stopping.enabled and patience.isEnabled()
    panel.findChild(QComboBox, "monitorCombo").setCurrentText("dev_acc")
    patience.setValue(5)
    panel.findChild(QDoubleSpinBox, "minDeltaSpin").setValue(0.001)
    panel.findChild(QCheckBox, "restoreBestCheck").setChecked(False)
    es = state.config.early_stopping
    assert (es.monitor, es.patience, es.min_delta, es.restore_best) == (
        "dev_acc",
        5,
        pytest.approx(0.001),
        False,
    )
    patience.setValue(500)  # more than the 100 epochs
    assert any("never trigger" in w for w in panel.warnings())


def test_low_keep_prob_and_dropout_gradcheck_warnings(panel_and_state):
    panel, state = panel_and_state
    panel.findChild(QDoubleSpinBox, "keepProbSpin").setValue(0.2)
    ws = panel.warnings()
    assert any("below 0.3" in w for w in ws)
    assert any("Gradient checking" in w for w in ws)
    assert not panel.findChild(QLabel, "dropoutWarningLabel").isHidden()


def test_problems_list_what_the_engine_refuses(panel_and_state):
    panel, state = panel_and_state
    assert panel.problems() == []
    before = state.config
    with pytest.raises(ConfigError, match="keep_prob has 1 entries"):
        state.update("regularization", keep_prob=[0.5])  # 1 entry for 2 hidden layers
    with pytest.raises(ConfigError, match="optimizer.lr"):
        state.update("optimizer", lr=500.0)
    assert state.config is before  # a refused edit leaves the config as it was
    assert panel.problems() == []
    assert panel.findChild(QLabel, "modelProblemsLabel").isHidden()


def test_set_config_refreshes_every_control(panel_and_state):
    panel, state = panel_and_state
    other = from_dict(
        {
            "model": {"hidden": [32, 16, 4], "activation": "tanh", "init": "lecun", "init_scale": 0.5},
            "regularization": {
                "l2": 0.003,
                "l1": 0.0002,
                "keep_prob": [0.9, 0.7, 0.5],
                "input_keep_prob": 0.8,
            },
            "early_stopping": {
                "enabled": True,
                "monitor": "dev_acc",
                "patience": 7,
                "min_delta": 0.01,
                "restore_best": False,
            },
            "optimizer": {"name": "momentum", "lr": 0.05, "momentum": 0.8},
            "training": {"epochs": 12, "batch_size": 16, "seed": 3, "dtype": "float64"},
        }
    )
    before = other.to_dict()
    state.set_config(other)
    assert [s.value() for s in panel.hidden_spins] == [32, 16, 4]
    assert panel.findChild(QComboBox, "activationCombo").currentText() == "tanh"
    assert panel.findChild(QComboBox, "initCombo").currentText() == "lecun"
    assert INIT_FORMULAS["lecun"] in panel.findChild(QLabel, "initFormulaLabel").text()
    assert panel.findChild(QDoubleSpinBox, "initScaleSpin").value() == pytest.approx(0.5)
    assert panel.findChild(QDoubleSpinBox, "l2Spin").value() == pytest.approx(0.003)
    assert panel.findChild(QDoubleSpinBox, "l1Spin").value() == pytest.approx(0.0002)
    assert panel.findChild(QCheckBox, "perLayerKeepCheck").isChecked()
    assert [s.value() for s in panel.keep_spins] == pytest.approx([0.9, 0.7, 0.5])
    assert panel.findChild(QDoubleSpinBox, "inputKeepProbSpin").value() == pytest.approx(0.8)
    assert panel.findChild(QCheckBox, "earlyStopCheck").isChecked()
    assert panel.findChild(QComboBox, "monitorCombo").currentText() == "dev_acc"
    assert panel.findChild(QSpinBox, "patienceSpin").value() == 7
    assert panel.findChild(QDoubleSpinBox, "minDeltaSpin").value() == pytest.approx(0.01)
    assert not panel.findChild(QCheckBox, "restoreBestCheck").isChecked()
    assert panel.findChild(QComboBox, "optimizerCombo").currentText() == "momentum"
    assert panel.findChild(QDoubleSpinBox, "lrSpin").value() == pytest.approx(0.05)
    assert panel.findChild(QDoubleSpinBox, "momentumSpin").value() == pytest.approx(0.8)
    assert panel.findChild(QSpinBox, "epochsSpin").value() == 12
    assert panel.findChild(QSpinBox, "batchSizeSpin").value() == 16
    assert panel.findChild(QSpinBox, "seedSpin").value() == 3
    assert panel.findChild(QComboBox, "dtypeCombo").currentText() == "float64"
    assert state.config.to_dict() == before  # refreshing wrote nothing back
