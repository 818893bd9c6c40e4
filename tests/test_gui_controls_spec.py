"""Every config field has a control in the window that accepts exactly what the validator accepts:
one parametrized test over every field of engine.config (the same specs drive both)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QAbstractSpinBox, QCheckBox, QComboBox, QLineEdit, QWidget

from engine.config import ConfigError, field_spec, from_dict, iter_fields
from gui.panels.widgets import CONFIG_FIELD, CONFIG_SCALE
from gui.window import MainWindow

FIELDS = [path for path, _spec, _default in iter_fields()]


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    from PySide6.QtCore import QCoreApplication, QSettings

    folder = tmp_path_factory.mktemp("settings")
    QCoreApplication.setOrganizationName("RegLabTest")
    QCoreApplication.setApplicationName("RegLabTest")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    win = MainWindow(runs_dir=tmp_path_factory.mktemp("runs"))
    win.show_dialogs = False
    # every optional row exists (hidden rows too): a config with per-layer keep_probs
    win.state.set_config(
        from_dict({"model": {"hidden": [8, 4]}, "regularization": {"keep_prob": [0.9, 0.8]}})
    )
    yield win
    win.close()
    win.deleteLater()


def controls(win: QWidget, path: str) -> list[QWidget]:
    found = []
    for w in win.findChildren(QWidget):
        name = w.property(CONFIG_FIELD)
        if isinstance(name, str) and (name == path or name.startswith(path + "[")):
            found.append(w)
    return found


@pytest.mark.parametrize("path", FIELDS)
def test_every_field_has_a_control_with_the_validators_range(window, path):
    spec = field_spec(path)
    found = controls(window, path)
    assert found, f"{path} has no control in the window"
    for w in found:
        field = w.property(CONFIG_FIELD)
        if spec.kind in ("float", "int", "int_list", "float_pair", "int_pair", "split", "keep_prob"):
            assert isinstance(w, QAbstractSpinBox), (field, type(w))
            scale = float(w.property(CONFIG_SCALE) or 1.0)
            assert w.minimum() == pytest.approx(spec.lo * scale) and w.maximum() == pytest.approx(
                spec.hi * scale
            )
            # both ends are values the validator takes (and nothing beyond them can be entered)
            for end in (w.minimum(), w.maximum()):
                value = end / scale
                cfg = from_dict({})
                raw = cfg.to_dict()
                section, name = path.split(".")
                if spec.kind in ("float", "int"):
                    raw[section][name] = int(value) if spec.kind == "int" else value
                    from_dict(raw)
                for beyond in (spec.lo - (1 if spec.kind == "int" else 1e-6 * max(1, abs(spec.lo))),
                               spec.hi + (1 if spec.kind == "int" else 1e-6 * abs(spec.hi))):  # fmt: skip
                    if spec.kind in ("float", "int"):
                        raw[section][name] = int(beyond) if spec.kind == "int" else beyond
                        with pytest.raises(ConfigError, match=path):
                            from_dict(raw)
        elif spec.kind == "choice" and isinstance(w, QCheckBox):
            assert len(spec.choices) == 2, field  # on / off between two choices (normalize: standard / none)
        elif spec.kind == "choice":
            assert isinstance(w, QComboBox), field
            assert [w.itemText(i) for i in range(w.count())] == list(spec.choices), field
        elif spec.kind == "bool":
            assert isinstance(w, QCheckBox), field
        elif spec.kind == "source":
            assert isinstance(w, (QLineEdit, QComboBox)), field
        elif spec.kind == "shape3":
            assert isinstance(w, (QCheckBox, QAbstractSpinBox)), field
            if isinstance(w, QAbstractSpinBox):  # H and W: the validator's 1..4096
                assert (w.minimum(), w.maximum()) == (1, 4096)
        else:
            raise AssertionError(f"unknown kind {spec.kind}")


def test_a_value_typed_at_a_controls_limit_reaches_the_config(qtbot, window):
    from PySide6.QtCore import Qt

    spin = window.findChild(QAbstractSpinBox, "lrSpin")
    spin.selectAll()
    qtbot.keyClicks(spin, "100")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert window.state.config.optimizer.lr == 100.0  # the spec's upper end
    spin.selectAll()
    qtbot.keyClicks(spin, "1000")  # beyond the end: the control keeps the last valid value
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert window.state.config.optimizer.lr == 100.0
    seed = window.findChild(QAbstractSpinBox, "seedSpin")
    assert seed.minimum() == 0  # negative seeds crash NumPy: neither the spin nor the validator takes them
