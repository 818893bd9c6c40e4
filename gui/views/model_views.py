"""What the views of the model itself (boundary, weights, confusion) share.

- :class:`LatestJob`: one background job at a time (a :class:`gui.tasks.TaskRunner`); a job
  submitted while one runs waits, and a newer one replaces it. A live run sends snapshots at
  up to 5 Hz, so at most one computation runs and one waits: a job never shares its buffers
  (a :class:`engine.insight.boundary.BoundaryGrid`) with a second thread, and a stale result
  is never followed by a flood of queued ones.
- :class:`ModelView`: a ``QWidget`` that asks the :class:`gui.models.current_model.CurrentModel`
  for live weights while it is visible (``want``), redraws on ``changed`` only while visible,
  and catches up when it is shown again.
- :func:`snapshot_hint`: the words for "nothing to show yet" (no run, loading, waiting).
- :func:`bring_to_front`: makes the tab holding a widget current.
- :func:`niced`: a job whose thread runs at a lower priority than the training process.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QStackedWidget, QTabWidget, QWidget

from gui.models.current_model import CurrentModel, ModelSnapshot
from gui.models.training_session import TrainingSession
from gui.panels.widgets import INFO_STYLE
from gui.tasks import TaskContext, TaskRunner

VIEW_NICE = 10  # niceness of the views' worker threads (Linux): the training process comes first


def lower_thread_priority(nice: int = VIEW_NICE) -> None:
    """Make the calling thread nicer (Linux only, where a thread id is a valid target).

    The views compute in the window's process while the training process trains: at nice 10
    a view's thread yields to the training thread whenever both want the same core, instead of
    waking up and preempting it five times a second, and still runs at full speed on a free
    core. Raising one's own niceness needs no privileges; failures are ignored."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
    except (AttributeError, OSError):
        pass


def niced(fn: Callable[[TaskContext], Any]) -> Callable[[TaskContext], Any]:
    """fn, run in a thread made nicer first (see :func:`lower_thread_priority`)."""

    def run(ctx: TaskContext) -> Any:
        lower_thread_priority()
        return fn(ctx)

    return run


class LatestJob(TaskRunner):
    """A TaskRunner that runs one job at a time; while it runs, only the newest submitted job waits.

    Use :meth:`submit` (``start`` would cancel the running job, whose thread may still be
    using buffers the next one needs). duty: the largest share of the time the jobs may keep a
    core busy (None: no limit). After a job that took t seconds, the next starts no sooner than
    t·(1/duty − 1) later, so a view of a big model never takes more than its share from the
    training process, whatever it costs; min_interval: at least this many seconds between the
    starts of two jobs (a live picture a view need not redraw five times a second). :meth:`shutdown` (the window calls it on every
    TaskRunner when it closes) also drops the waiting job.

    Signals are TaskRunner's: finished(result), errored(message) of every job that ran to its
    end (the view decides whether the result is still current: results carry what they were
    computed from).
    """

    def __init__(self, parent: QObject | None = None, duty: float | None = None, min_interval: float = 0.0):
        super().__init__(parent)
        self.duty = duty
        self.min_interval = min_interval
        self._pending: Callable[[TaskContext], Any] | None = None
        self._in_flight = False  # a job started whose result has not been delivered yet
        self._started = 0.0
        self._next_allowed = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._start_next)
        # connected before any view's slot, so the next job starts before a view reacts
        self.finished.connect(self._ended)
        self.errored.connect(self._ended)
        self.aborted.connect(self._ended)

    def submit(self, fn: Callable[[TaskContext], Any], spaced: bool = True) -> None:
        """Run fn next; spaced=False (a finished run's picture, a user's choice) skips the
        duty/min_interval wait and starts as soon as the running job ends."""
        self._pending = fn
        if not spaced:
            self._next_allowed = 0.0
            self._timer.stop()
        self._start_next()

    def is_busy(self) -> bool:
        """A job runs, waits, or its result is still on its way to the GUI thread (its thread
        may have ended before the queued result arrives): tests wait for this to become False."""
        return self._in_flight or self._pending is not None

    def shutdown(self, msecs: int = 30000) -> bool:
        self._pending = None
        self._in_flight = False
        self._timer.stop()
        return super().shutdown(msecs)

    def _start_next(self) -> None:
        if self._pending is None or self._in_flight:
            return
        wait = self._next_allowed - time.monotonic()
        if wait > 0:
            if not self._timer.isActive():
                self._timer.start(int(1000 * wait) + 1)
            return
        fn, self._pending = self._pending, None
        self._started = time.monotonic()
        self._in_flight = True
        self.start(niced(fn))

    def _ended(self, *_args) -> None:
        self._in_flight = False
        now = time.monotonic()
        self._next_allowed = self._started + self.min_interval
        if self.duty:
            self._next_allowed = max(
                self._next_allowed, now + (now - self._started) * (1.0 / self.duty - 1.0)
            )
        self._start_next()


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
