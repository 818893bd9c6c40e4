"""Background jobs for views whose requests come faster than their pictures can be computed.

:class:`LatestJob` (a :class:`gui.tasks.TaskRunner`) runs one job at a time: a job submitted
while one runs waits as *pending*, and a newer one replaces it; when the job ends, its result is
delivered and the pending one starts. So a view is never more than one computation behind its
control or its live run, however fast they move, no request piles up behind another (a
TaskRunner alone would cancel the running job and start a thread per move, and under a steady
drag nothing would ever finish), and a job never shares its buffers with a second thread. It can
also space jobs (a duty cap, a minimum interval) so that a view of a big model takes only its
share of a core from the training process, and runs them in a nicer thread.

:class:`LatestRunner` is the same with each result delivered beside the tag it was submitted
with (the slider tools: depth lab, why normalize).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

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
        self._pending: tuple[Callable[[TaskContext], Any], Any] | None = None
        self._running_tag: Any = None
        self.delivered_tag: Any = None
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

    def submit(self, fn: Callable[[TaskContext], Any], spaced: bool = True, tag: Any = None) -> None:
        """Run fn next; spaced=False (a finished run's picture, a user's choice) skips the
        duty/min_interval wait and starts as soon as the running job ends. tag: what the job
        computes (e.g. its settings); :attr:`delivered_tag` is the tag of the result being
        delivered."""
        self._pending = (fn, tag)
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
        (fn, self._running_tag), self._pending = self._pending, None
        self._started = time.monotonic()
        self._in_flight = True
        self.start(niced(fn))

    def _ended(self, *_args) -> None:
        # read by slots connected after this one, when the next job may already have started
        self.delivered_tag = self._running_tag
        self._in_flight = False
        now = time.monotonic()
        self._next_allowed = self._started + self.min_interval
        if self.duty:
            self._next_allowed = max(
                self._next_allowed, now + (now - self._started) * (1.0 / self.duty - 1.0)
            )
        self._start_next()


class LatestRunner(QObject):
    """finished(tag, result) / errored(tag, message) for each job that ran; ``tag`` is what the
    request was submitted with. Jobs start as soon as the running one ends (no spacing)."""

    finished = Signal(object, object)
    errored = Signal(object, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._job = LatestJob(self)
        self._job.finished.connect(lambda result: self.finished.emit(self._job.delivered_tag, result))
        self._job.errored.connect(lambda message: self.errored.emit(self._job.delivered_tag, message))

    def submit(self, tag: Any, fn: Callable[[TaskContext], Any]) -> None:
        """Run fn(ctx) now, or as soon as the running job ends (replacing an earlier pending one)."""
        self._job.submit(fn, spaced=False, tag=tag)

    def is_busy(self) -> bool:
        return self._job.is_busy()

    def shutdown(self) -> None:
        self._job.shutdown()
