"""One worker pattern for every background job of the window.

A :class:`TaskRunner` runs a plain function in its own ``QThread``. The function gets a
:class:`TaskContext` with ``progress(value)`` (relayed as the ``progressed`` signal, any
picklable-free Python object: a (done, total) pair, an engine record …) and
``cancelled()`` to poll. Results come back as past-tense signals on the GUI thread:
``finished(result)``, ``errored(message)``, ``aborted()``. Every run has an id; signals of
a run that was superseded or cancelled are dropped, so a stale result never reaches a panel.
Workers never touch widgets and never call ``processEvents()``.
"""

from __future__ import annotations

import itertools
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import Cancelled, InputError

_run_ids = itertools.count(1)


class TaskContext:
    """Handed to the background function: progress reporting and cancellation polling."""

    def __init__(self, emit_progress: Callable[[Any], None], stop_event: threading.Event):
        self._emit = emit_progress
        self._stop = stop_event

    def progress(self, value: Any) -> None:
        self._emit(value)

    def cancelled(self) -> bool:
        return self._stop.is_set()


class _Worker(QObject):
    progressed = Signal(int, object)
    finished = Signal(int, object)
    errored = Signal(int, str)
    aborted = Signal(int)

    def __init__(self, run_id: int, fn: Callable[[TaskContext], Any], stop_event: threading.Event):
        super().__init__()
        self.run_id = run_id
        self._fn = fn
        self._stop = stop_event

    @Slot()
    def run(self) -> None:
        ctx = TaskContext(lambda v: self.progressed.emit(self.run_id, v), self._stop)
        try:
            result = self._fn(ctx)
        except Cancelled:
            self.aborted.emit(self.run_id)
        except InputError as exc:
            self.errored.emit(self.run_id, str(exc))
        except MemoryError:
            self.errored.emit(
                self.run_id, "Out of memory: try smaller images, fewer samples or a smaller network."
            )
        except Exception as exc:  # shown in a dialog, in words, never lost in a console
            text = str(exc).strip() or "no further detail"
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.errored.emit(
                self.run_id,
                f"It stopped because of an internal error ({text}). Nothing was lost; "
                f"if it happens again, please report it with these details:\n\n{detail}",
            )
        else:
            if self._stop.is_set():
                self.aborted.emit(self.run_id)
            else:
                self.finished.emit(self.run_id, result)
        finally:
            # quit directly (thread-safe): a queued quit would need the GUI loop, which
            # is blocked in wait() when the window closes
            self.thread().quit()


class TaskRunner(QObject):
    """Runs one background function at a time; starting a new one cancels the previous.

    Signals carry only the current run's events: started(), progressed(value),
    finished(result), errored(message), aborted().
    """

    started = Signal()
    progressed = Signal(object)
    finished = Signal(object)
    errored = Signal(str)
    aborted = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self._stop: threading.Event | None = None
        self._run_id = 0
        self._old: list[tuple[QThread, _Worker]] = []  # cancelled threads still winding down

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def start(self, fn: Callable[[TaskContext], Any]) -> int:
        """Cancel any running job and start fn(ctx) in a new thread; returns the run id."""
        self.cancel()
        self._run_id = next(_run_ids)
        self._stop = threading.Event()
        thread = QThread()
        worker = _Worker(self._run_id, fn, self._stop)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progressed.connect(self._on_worker_progressed)
        worker.finished.connect(self._on_worker_finished)
        worker.errored.connect(self._on_worker_errored)
        worker.aborted.connect(self._on_worker_aborted)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._worker = thread, worker
        thread.start()
        self.started.emit()
        return self._run_id

    def cancel(self) -> None:
        """Ask the running job to stop; its later signals are dropped."""
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._old.append((self._thread, self._worker))
        self._thread = self._worker = None
        self._run_id = 0

    def stop_event(self) -> threading.Event | None:
        return self._stop

    def wait(self, msecs: int = 30000) -> bool:
        """Block until every thread of this runner has ended (used when the window closes)."""
        ok = True
        for thread, _ in self._old + ([(self._thread, self._worker)] if self._thread else []):
            if thread.isRunning():
                ok = thread.wait(msecs) and ok
        self._reap()
        return ok

    def shutdown(self, msecs: int = 30000) -> bool:
        self.cancel()
        return self.wait(msecs)

    def _reap(self) -> None:
        self._old = [(t, w) for t, w in self._old if t.isRunning()]

    @Slot()
    def _on_thread_finished(self) -> None:
        self._reap()

    @Slot(int, object)
    def _on_worker_progressed(self, run_id: int, value: Any) -> None:
        if run_id == self._run_id:
            self.progressed.emit(value)

    @Slot(int, object)
    def _on_worker_finished(self, run_id: int, result: Any) -> None:
        if run_id == self._run_id:
            self._done()
            self.finished.emit(result)

    @Slot(int, str)
    def _on_worker_errored(self, run_id: int, message: str) -> None:
        if run_id == self._run_id:
            self._done()
            self.errored.emit(message)

    @Slot(int)
    def _on_worker_aborted(self, run_id: int) -> None:
        if run_id == self._run_id:
            self._done()
            self.aborted.emit()

    def _done(self) -> None:
        if self._thread is not None:
            self._old.append((self._thread, self._worker))
        self._thread = self._worker = None
        self._run_id = 0
