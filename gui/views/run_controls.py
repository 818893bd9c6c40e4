"""Train / Pause / Stop and the progress bar, bound to the training session.

The buttons follow the session's state; the progress bar describes the current run (a live
run's epoch, or how a finished run ended), never a run that is no longer shown.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from gui.models.training_session import TrainingSession


class RunControls(QWidget):
    """trainClicked is for the window (which checks the settings first); pause and stop go to the session."""

    trainClicked = Signal()

    def __init__(self, session: TrainingSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.train_button = QPushButton("▶  Train")
        self.train_button.setObjectName("trainButton")
        self.train_button.setToolTip("Train a new run with the current settings (Ctrl+R)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("pauseButton")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("Pause between mini-batches; Resume goes on (Ctrl+P)")
        self.stop_button = QPushButton("■  Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("Stop at the next mini-batch; the run is kept (Ctrl+.)")
        self.progress = QProgressBar()
        self.progress.setObjectName("epochProgress")
        self.progress.setTextVisible(True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (self.train_button, self.pause_button, self.stop_button):
            lay.addWidget(w)
        lay.addWidget(self.progress, 1)
        self.train_button.clicked.connect(self.trainClicked)
        self.pause_button.toggled.connect(self._on_pause_toggled)
        self.stop_button.clicked.connect(session.stop)
        session.stateChanged.connect(self._on_session_state_changed)
        session.currentChanged.connect(lambda _key: self.refresh())
        session.history.subscribe(self._on_history_event)
        session.recordsShown.connect(lambda key: key == session.current_key and self.refresh())
        self._on_session_state_changed(session.state)

    def _on_pause_toggled(self, checked: bool) -> None:
        self.pause_button.setText("Resume" if checked else "Pause")
        (self.session.pause if checked else self.session.resume)()

    def _on_session_state_changed(self, state: str) -> None:
        running = state != "idle"
        self.train_button.setEnabled(not running)
        self.pause_button.setEnabled(state in ("training", "paused"))
        self.stop_button.setEnabled(state in ("training", "paused"))
        if state in ("idle", "stopping"):
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.setText("Pause")
            self.pause_button.blockSignals(False)
        self.refresh()

    def _on_history_event(self, event: str, key: str) -> None:
        if key == self.session.current_key and event == "changed":
            self.refresh()

    def refresh(self) -> None:
        """Show the current run's progress (a live epoch count, or how it ended)."""
        run = self.session.current()
        if run is None:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("no run selected" if len(self.session.history) else "no run yet")
            return
        epochs = int(run.config.training.epochs)
        done = len(run.metrics)
        self.progress.setRange(0, max(1, epochs))
        self.progress.setValue(min(done, max(1, epochs)))
        if run.live:
            state = {"paused": "paused · ", "stopping": "stopping · "}.get(self.session.state, "")
            loading = "loading data · " if done == 0 and self.session.state == "training" else ""
            self.progress.setFormat(f"{run.name}: {state}{loading}epoch {done} of {epochs}")
        else:
            self.progress.setFormat(f"{run.name}: {run.status_text()} · {done} of {epochs} epochs")
