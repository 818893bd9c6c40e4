"""Runs one training in a worker thread and relays its epoch records as Qt signals.

The background function only iterates ``engine.experiment.run_experiment(...).records()``
and hands each small frozen ``EpochRecord`` to the GUI thread (never arrays per batch).
It never touches a widget. Built on :class:`gui.tasks.TaskRunner`, the one worker
pattern of the window.

Stop is a *graceful* stop: ``should_stop`` makes the engine finish the epoch, write the
run directory and end with ``stop_reason == "cancelled"``; the run is kept. Closing the
window uses :meth:`shutdown`, which also cancels the task and waits for the thread.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from engine.config import ExperimentConfig
from engine.dataset import PreparedData
from gui.paint_gate import PaintGate
from gui.tasks import TaskContext, TaskRunner

# While a run trains, the GUI thread competes with the worker for the GIL: every Qt call made
# from Python (pyqtgraph paints make hundreds) releases and re-takes it, and each re-take can
# wait a whole switch interval (5 ms by default) — a convoy that turns a 30 ms repaint into
# half a second. A short interval while training keeps the window responsive.
TRAINING_SWITCH_INTERVAL = 0.0005  # seconds


class TrainingWorker(QObject):
    """Signals (GUI thread): started(run_dir), recorded(EpochRecord), finished(run_dir, summary),
    errored(message), aborted(run_dir) when a stop came before training began (data loading)."""

    started = Signal(str)
    recorded = Signal(object)
    finished = Signal(str, object)
    errored = Signal(str)
    aborted = Signal(str)

    def __init__(self, parent: QObject | None = None, gate: PaintGate | None = None):
        super().__init__(parent)
        self._gate = gate
        self._runner = TaskRunner(self)
        self._runner.progressed.connect(self._on_runner_progressed)
        self._runner.finished.connect(self._on_runner_finished)
        self._runner.errored.connect(self._on_runner_errored)
        self._runner.aborted.connect(self._on_runner_aborted)
        self._lock = threading.Lock()
        self._experiment: Any = None  # engine Experiment of the current run, set in the worker
        self._user_stop = threading.Event()
        self._paused = False
        self._run_dir = ""
        self._saved_interval: float | None = None

    # ------------------------------------------------------------ control (GUI thread)
    def is_running(self) -> bool:
        return self._runner.is_running() or bool(self._run_dir)

    def is_paused(self) -> bool:
        return self._paused

    def start(self, cfg: ExperimentConfig, run_dir: str | Path, data: PreparedData | None = None) -> None:
        """Start training cfg into run_dir (a new, empty folder) in a worker thread."""
        if self.is_running():
            raise RuntimeError("a training run is already in progress")
        self._user_stop = threading.Event()
        self._paused = False
        self._experiment = None
        self._run_dir = str(run_dir)
        user_stop = self._user_stop
        gate = self._gate

        def train(ctx: TaskContext) -> Any:
            from engine import blas  # lazy: keeps window start-up fast
            from engine.experiment import run_experiment

            def should_stop() -> bool:
                if gate is not None:  # let a plot paint alone (see gui.paint_gate)
                    gate.wait_open()
                return user_stop.is_set() or ctx.cancelled()

            # the window's own thread needs a core: two BLAS threads that lose one to a
            # repaint wait for each other (measured: 2.3 s vs 1.45 s per 784-512-256-10 epoch)
            exp = run_experiment(
                cfg,
                run_dir,
                data=data,
                should_stop=should_stop,
                cancel=should_stop,
                max_blas_threads=max(1, blas.cpu_count() - 1),
            )
            with self._lock:
                self._experiment = exp
                if self._paused:
                    exp.pause()
            for record in exp.records():
                ctx.progress(record)
            with self._lock:
                self._experiment = None
            return exp.summary

        if self._saved_interval is None:
            self._saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._saved_interval, TRAINING_SWITCH_INTERVAL))
        self._runner.start(train)
        self.started.emit(self._run_dir)

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            if self._experiment is not None:
                self._experiment.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self._experiment is not None:
                self._experiment.resume()

    def stop(self) -> None:
        """Graceful stop: the run ends with stop_reason 'cancelled' and stays on disk."""
        self._user_stop.set()
        self.resume()  # a paused trainer must wake up to notice the stop

    def shutdown(self, msecs: int = 30000) -> bool:
        """Stop, drop later signals and wait for the thread (window closing)."""
        self._user_stop.set()
        self._runner.cancel()
        self.resume()
        ok = self._runner.wait(msecs)
        self._run_dir = ""
        self._restore_interval()
        return ok

    def _restore_interval(self) -> None:
        if self._saved_interval is not None:
            sys.setswitchinterval(self._saved_interval)
            self._saved_interval = None

    # ------------------------------------------------------------ relays
    @Slot(object)
    def _on_runner_progressed(self, record: Any) -> None:
        self.recorded.emit(record)

    @Slot(object)
    def _on_runner_finished(self, summary: Any) -> None:
        run_dir, self._run_dir = self._run_dir, ""
        self._paused = False
        self._restore_interval()
        self.finished.emit(run_dir, summary)

    @Slot(str)
    def _on_runner_errored(self, message: str) -> None:
        self._run_dir = ""
        self._paused = False
        self._restore_interval()
        self.errored.emit(message)

    @Slot()
    def _on_runner_aborted(self) -> None:
        run_dir, self._run_dir = self._run_dir, ""
        self._paused = False
        self._restore_interval()
        self.aborted.emit(run_dir)

    def wait(self, msecs: int = 30000) -> bool:
        return self._runner.wait(msecs)
