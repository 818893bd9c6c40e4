"""Run the latest request only: a slider can move faster than its picture can be computed.

:class:`LatestRunner` wraps a :class:`gui.tasks.TaskRunner`. While a job runs, a new request
waits as *pending* (a newer one replaces it); when the job ends, its result is delivered and
the pending request starts. So the view is never more than one computation behind the
control, however fast the control moves, and no request piles up behind another (a
TaskRunner alone would cancel the running job and start a thread per move, and under a
steady drag nothing would ever finish).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from gui.tasks import TaskContext, TaskRunner


class LatestRunner(QObject):
    """finished(tag, result) / errored(tag, message) for each job that ran; ``tag`` is what the
    request was submitted with (e.g. the settings it computes)."""

    finished = Signal(object, object)
    errored = Signal(object, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._runner = TaskRunner(self)
        self._runner.finished.connect(self._on_runner_finished)
        self._runner.errored.connect(self._on_runner_errored)
        self._runner.aborted.connect(self._on_runner_aborted)
        self._tag: Any = None
        # busy from start until the job's result is delivered, not only while its thread runs:
        # a job whose thread has ended but whose result is still queued must not be cancelled by
        # a new request (its result would be lost, and an older pending request could then be
        # drawn after the newest one)
        self._busy = False
        self._pending: tuple[Any, Callable[[TaskContext], Any]] | None = None

    def submit(self, tag: Any, fn: Callable[[TaskContext], Any]) -> None:
        """Run fn(ctx) now, or as soon as the running job ends (replacing an earlier pending one)."""
        if self._busy:
            self._pending = (tag, fn)
            return
        self._start(tag, fn)

    def is_busy(self) -> bool:
        return self._busy or self._pending is not None

    def shutdown(self) -> None:
        self._pending = None
        self._busy = False
        self._runner.shutdown()

    def _start(self, tag: Any, fn: Callable[[TaskContext], Any]) -> None:
        self._tag = tag
        self._busy = True
        self._runner.start(fn)

    def _next(self) -> None:
        self._busy = False
        if self._pending is not None:
            tag, fn = self._pending
            self._pending = None
            self._start(tag, fn)

    def _on_runner_finished(self, result: Any) -> None:
        tag = self._tag
        self._next()
        self.finished.emit(tag, result)

    def _on_runner_errored(self, message: str) -> None:
        tag = self._tag
        self._next()
        self.errored.emit(tag, message)

    def _on_runner_aborted(self) -> None:
        self._next()
