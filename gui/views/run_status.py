"""What the window says about the current run: a banner with its outcome and the status-bar figures.

Both follow the session's current run only: switching runs switches what they say. The kind
of banner (error, warning, info) is chosen from the run's fields (stop reason, warning codes,
a failure), never by matching message text; the words are the engine's.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel

from engine.history import RunInfo
from gui.models.runs_table import fmt_bytes
from gui.models.training_session import TrainingSession

BANNER_COLORS = {
    "error": ("#b00020", "#fdecea"),
    "warning": ("#7a4f00", "#fff4e0"),
    "info": ("#0b5394", "#e8f0fe"),
}
LIVE_STATE_TEXT = {"training": "training…", "paused": "paused", "stopping": "stopping…"}


def style_banner(label: QLabel, text: str, kind: str) -> None:
    fg, bg = BANNER_COLORS.get(kind, BANNER_COLORS["info"])
    label.setStyleSheet(f"QLabel {{ color: {fg}; background: {bg}; border-radius: 4px; padding: 4px 8px; }}")
    label.setText(text)
    label.setVisible(bool(text))


def run_banner(run: RunInfo | None, live_message: str | None = None) -> tuple[str, str]:
    """(text, kind) of the banner for a run; empty text when there is nothing to say."""
    if run is None:
        return "", "info"
    if run.live:
        return (live_message or "", "info")
    if run.failed:
        first = run.failed.strip().splitlines()[0] if run.failed.strip() else "unknown error"
        return f"{run.name}: training failed. {first}", "error"
    summary = run.summary or {}
    message = summary.get("message") if isinstance(summary.get("message"), str) else ""
    reason = run.stop_reason()
    warnings = [w for w in summary.get("warnings") or [] if isinstance(w, dict)]
    if reason == "diverged":
        return f"{run.name} diverged. {message}", "error"
    if warnings:
        texts = [str(w.get("message") or w.get("code")) for w in warnings]
        return f"{run.name}: " + " ".join(texts), "warning"
    if reason == "cancelled":
        return f"{run.name} was stopped by you: {message}.", "info"
    if reason == "early_stopping":
        return f"{run.name} stopped early: {message}.", "info"
    notes = [n for n in summary.get("notes") or [] if isinstance(n, str)]
    return (" ".join(notes), "info") if notes else ("", "info")


class RunStatus(QObject):
    """Keeps the run banner and the status-bar labels on the current run."""

    def __init__(
        self,
        session: TrainingSession,
        banner: QLabel,
        state_label: QLabel,
        epoch_label: QLabel,
        speed_label: QLabel,
        memory_label: QLabel,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.session = session
        self.banner = banner
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state_label, self.epoch_label = state_label, epoch_label
        self.speed_label, self.memory_label = speed_label, memory_label
        self._shown: tuple | None = None
        session.currentChanged.connect(lambda _key: self.refresh())
        session.stateChanged.connect(lambda _state: self.refresh())
        session.history.subscribe(self._on_history_event)
        session.recordsShown.connect(lambda key: key == session.current_key and self.refresh())
        self.refresh()

    def _on_history_event(self, event: str, key: str) -> None:
        if key == self.session.current_key and event == "changed":
            self.refresh()

    def refresh(self) -> None:
        run = self.session.current()
        live = run is not None and run.live
        text, kind = run_banner(run, self.session.live_message if live else None)
        if (text, kind) != self._shown:
            self._shown = (text, kind)
            style_banner(self.banner, text, kind)
        if run is None:
            self.state_label.setText("no run selected" if len(self.session.history) else "ready")
            self.epoch_label.setText("")
            self.speed_label.setText("")
            self.memory_label.setText("")
            return
        epochs = run.config.training.epochs
        self.state_label.setText(
            f"{run.name}: {LIVE_STATE_TEXT.get(self.session.state, 'training…')}"
            if live
            else f"{run.name}: {run.status_text()}"
        )
        self.epoch_label.setText(f"epoch {len(run.metrics)}/{epochs}" if run.metrics else "")
        last = run.metrics[-1] if run.metrics else None
        if live and last is not None and last.get("seconds"):
            sps = last.get("samples_per_sec") or 0.0
            self.speed_label.setText(f"{1000 * last['seconds']:.1f} ms/epoch · {sps:,.0f} samples/s")
        elif run.metrics:
            spe, sps = run.seconds_per_epoch(), run.samples_per_sec()
            self.speed_label.setText(
                f"{1000 * spe:.1f} ms/epoch · {sps or 0:,.0f} samples/s (mean)" if spe else ""
            )
        else:
            self.speed_label.setText("")
        self.memory_label.setText(
            f"params {run.param_count:,} · {fmt_bytes(run.param_bytes)}" if run.param_count else ""
        )
