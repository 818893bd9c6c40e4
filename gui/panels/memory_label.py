"""The memory a run with the current settings must hold in RAM, next to the settings.

:func:`engine.memory.estimate_for_config` with :func:`engine.memory.summarize_sources` of the
loaded data (instant: no folder is listed on the GUI thread), against
:func:`engine.memory.memory_limit`. Over the limit the label turns red with the engine's
reason, and :meth:`MemoryEstimateLabel.problem` gives the line the Train banner shows (the
panel adds it to its ``problems()``, so such a run never starts).
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from gui.panels.widgets import ERROR_STYLE, INFO_STYLE
from gui.state import ExperimentState


class MemoryEstimateLabel(QLabel):
    """objectName ``memoryEstimateLabel``; refresh() when the settings or the data change."""

    def __init__(self, state: ExperimentState, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("memoryEstimateLabel")
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(60)
        self.setToolTip(
            "What a run with these settings holds in memory: parameters, gradients and optimizer "
            "state, batch buffers, evaluation chunks and the data kept in RAM (images stay in the "
            "memory-mapped disk cache)"
        )
        self._state = state
        self.estimate = None  # engine.memory.MemoryEstimate of the current settings, or None
        self.limit = None  # engine.memory.MemoryLimit when last measured
        self._problem: str | None = None
        self.refresh()

    def _summary(self):
        """DataSummary of the loaded data when it is the data the config describes, else None."""
        from engine.memory import summarize_sources

        cfg = self._state.config
        sources = self._state.sources
        main = sources.get("main")
        if main is None or main.source != cfg.data.source:
            return None
        return summarize_sources(cfg, sources)

    def refresh(self) -> None:
        from engine.errors import InputError
        from engine.memory import RunTooLarge, estimate_for_config, format_bytes, memory_limit

        cfg = self._state.config
        self._problem = None
        try:
            summary = self._summary()
            if summary is None:
                self.estimate = None
                self.setText("Memory of a run: estimated once the data are loaded.")
                self.setStyleSheet(INFO_STYLE)
                return
            self.estimate = est = estimate_for_config(cfg, summary)
        except InputError as exc:  # settings the estimate cannot size (the data panel names them)
            self.estimate = None
            self.setText(f"Memory of a run: cannot estimate ({exc})")
            self.setStyleSheet(INFO_STYLE)
            return
        self.limit = limit = memory_limit()
        if est.total > limit.bytes:
            from engine.memory import check_config_memory

            try:  # the engine's own sentence: needs, has, and what to reduce
                check_config_memory(cfg, summary)
                reason = f"it needs {est.describe()}, more than the {format_bytes(limit.bytes)} {limit.name}"
            except RunTooLarge as exc:
                reason = str(exc)
            self._problem = reason[:1].upper() + reason[1:]
            self.setText(f"✖ {self._problem}")  # the engine's sentence holds the estimate
            self.setStyleSheet(ERROR_STYLE)
        else:
            self.setText(f"Memory of a run: {est.describe()}; {format_bytes(limit.bytes)} {limit.name}.")
            self.setStyleSheet(INFO_STYLE)

    def problem(self) -> str | None:
        """Why the run cannot start for lack of memory (None when it fits), from the latest refresh."""
        return self._problem
