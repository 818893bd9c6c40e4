"""What the views of the model itself (boundary, weights, confusion) share.

- :class:`gui.views.latest_runner.LatestJob` (what the views compute with): one background job
  at a time. A live run sends snapshots at up to 5 Hz, so at most one computation runs and one
  waits: a job never shares its buffers (a :class:`engine.insight.boundary.BoundaryGrid`) with a
  second thread, and a stale result is never followed by a flood of queued ones.
- :class:`ModelView`: a ``QWidget`` that asks the :class:`gui.models.current_model.CurrentModel`
  for live weights while it is visible (``want``), redraws on ``changed`` only while visible,
  and catches up when it is shown again.
- :func:`snapshot_hint`: the words for "nothing to show yet" (no run, loading, waiting).
- :func:`bring_to_front`: makes the tab holding a widget current.
- :func:`fixed_plot`: a PlotWidget without pyqtgraph's context menu and auto-range button.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QStackedWidget, QTabWidget, QWidget

from gui.models.current_model import CurrentModel, ModelSnapshot
from gui.models.training_session import TrainingSession
from gui.panels.widgets import INFO_STYLE


def snapshot_hint(model: CurrentModel, session: TrainingSession, what: str) -> str:
    """Why there is no snapshot to show: no run, a live run before its first weights, loading, an error."""
    run = session.current()
    if run is None:
        return f"Train a run (or select one in the runs table) to see {what}."
    if model.error:
        first = model.error.strip().splitlines()[0] if model.error.strip() else "unknown error"
        return f"Cannot show “{run.name}”: {first}"
    if run.live:
        return f"Waiting for the first weights of “{run.name}” (they arrive at the end of an epoch)…"
    return f"Loading the model of “{run.name}”…"


def bring_to_front(widget: QWidget) -> None:
    """Make the tab that holds ``widget`` the current tab (no-op outside a QTabWidget)."""
    child: QWidget | None = widget
    while child is not None:
        parent = child.parentWidget()
        if isinstance(parent, QStackedWidget) and isinstance(parent.parentWidget(), QTabWidget):
            tabs = parent.parentWidget()
            tabs.setCurrentWidget(child)
            return
        child = parent


def hint_text_label(object_name: str) -> QLabel:
    label = QLabel("")
    label.setObjectName(object_name)
    label.setWordWrap(True)
    label.setStyleSheet(INFO_STYLE)
    return label


class ModelView(QWidget):
    """Base of the views of the current run's model. Subclasses implement :meth:`refresh`.

    While visible, the view wants live weights from the current model and redraws on each
    ``changed``; while hidden it only notes that it is out of date.
    """

    def __init__(self, model: CurrentModel, session: TrainingSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = model
        self.session = session
        self._stale = True
        model.changed.connect(self._on_model_changed)
        # the hint follows the session too: a new run starts, a run fails (the snapshot may stay None)
        session.currentChanged.connect(lambda _key: self.request_refresh())
        session.runStarted.connect(lambda _key: self.request_refresh())
        session.runFailed.connect(lambda _key, _message: self.request_refresh())

    def snapshot(self) -> ModelSnapshot | None:
        return self.model.snapshot()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self.model.want(self, weights=True, stats=False)
        if self._stale:
            self.refresh()

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 (Qt override)
        super().hideEvent(event)
        self.model.want(self, False, False)

    def _on_model_changed(self) -> None:
        self.request_refresh()

    def request_refresh(self) -> None:
        """Refresh now while visible, else when shown next."""
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def refresh(self) -> None:
        """Show the current snapshot (or a hint). Subclasses call ``super().refresh()`` first."""
        self._stale = False


def fixed_plot(object_name: str, axes: bool = True) -> tuple[pg.PlotWidget, pg.PlotItem]:
    """(widget, its PlotItem): no context menu and no auto-range button (the view sets the
    ranges itself); axes=False hides both axes (pictures: tiles, the network diagram)."""
    widget = pg.PlotWidget()
    widget.setObjectName(object_name)
    item = widget.getPlotItem()
    item.setMenuEnabled(False)
    item.hideButtons()
    if not axes:
        item.hideAxis("left")
        item.hideAxis("bottom")
    return widget, item
