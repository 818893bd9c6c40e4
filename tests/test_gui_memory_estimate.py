"""The memory a run needs, next to the model settings (issue 8): the engine's estimate in the label,
red and refused by Train when it exceeds the limit."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

import engine.memory
from engine.memory import MemoryLimit, estimate_for_config, format_bytes, summarize_sources
from gui.panels.widgets import ERROR_STYLE
from tests.test_gui_training import make_window


def test_memory_label_shows_the_estimate_and_train_refuses_a_run_too_large(qtbot, tmp_path, monkeypatch):
    # a fixed limit, so the test does not depend on the machine's free memory
    monkeypatch.setattr(engine.memory, "memory_limit", lambda: MemoryLimit(16 * 2**30, "available"))
    win = make_window(qtbot, tmp_path)
    label = win.findChild(QLabel, "memoryEstimateLabel")
    cfg = win.state.config
    est = estimate_for_config(cfg, summarize_sources(cfg, win.state.sources))
    assert label.text() == f"Memory of a run: {est.describe()}; 16.0 GB available."
    assert label.styleSheet() != ERROR_STYLE
    win.state.update("model", hidden=[32, 32])  # the label follows the settings
    est2 = estimate_for_config(win.state.config, summarize_sources(win.state.config, win.state.sources))
    assert est2.total > est.total and est2.describe() in label.text()

    win.state.update("model", hidden=[8192] * 20)  # twenty layers of 8192: ~38 GB with Adam
    big = estimate_for_config(win.state.config, summarize_sources(win.state.config, win.state.sources))
    assert big.total > 16 * 2**30
    assert label.styleSheet() == ERROR_STYLE
    assert label.text() == (
        f"✖ This run needs about {format_bytes(big.total)} of memory ({big.parts_text()}), more than the "
        "16.0 GB available; reduce model.hidden"
    )
    qtbot.mouseClick(win.controls.train_button, Qt.MouseButton.LeftButton)
    banner = win.banner_text()
    assert banner.startswith("Cannot train yet")
    assert f"needs about {format_bytes(big.total)} of memory ({big.parts_text()})" in banner
    assert "more than the 16.0 GB available; reduce model.hidden" in banner
    assert not win.is_training() and not (tmp_path / "runs").exists()
    win.state.update("model", hidden=[8])
    assert win.banner_text() == "" and label.styleSheet() != ERROR_STYLE
