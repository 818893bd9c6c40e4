"""The skipped-files report: which files a folder load left out, and why, readable and copyable."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


def format_skipped(skipped: Sequence[dict]) -> str:
    """One line per skipped file: ``file: reason``."""
    lines = []
    for entry in skipped:
        if isinstance(entry, dict):
            lines.append(f"{entry.get('file', '?')}: {entry.get('reason', 'unknown reason')}")
        else:
            lines.append(str(entry))
    return "\n".join(lines)


class SkippedFilesDialog(QDialog):
    """Read-only list of skipped files with a Copy button (copies the whole list)."""

    def __init__(self, skipped: Sequence[dict], source: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("skippedDialog")
        n = len(skipped)
        self.setWindowTitle(f"{n} file{'s' if n != 1 else ''} skipped")
        layout = QVBoxLayout(self)
        head = QLabel(f"These files in {source or 'the source'} could not be used and were left out:")
        head.setWordWrap(True)
        layout.addWidget(head)
        self.text = QPlainTextEdit()
        self.text.setObjectName("skippedText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setPlainText(format_skipped(skipped))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("copyButton")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.copy_button.clicked.connect(self._on_copy_clicked)
        layout.addWidget(buttons)
        self.resize(560, 320)

    def _on_copy_clicked(self) -> None:
        QApplication.clipboard().setText(self.text.toPlainText())
