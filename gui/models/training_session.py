"""The training session: the one owner of the training process and of "the current run".

The current run is what the plots show, the selected row of the runs table, and what Save
model, Evaluate on test, Export and Delete act on: one key, kept here, announced by
``currentChanged``. A new run becomes current when it starts. Views never keep their own idea
of it.

Training runs in a child process (:class:`engine.training_process.TrainingProcess`); a timer
polls its pipe every ``POLL_MS`` while a run is live and moves records into the
:class:`engine.history.RunHistory` in batches, so the window's work per epoch is O(1) and never
depends on how many runs are stored.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from engine.config import ExperimentConfig
from engine.dataset import PreparedData
from engine.history import RunHistory, RunInfo, default_run_name, layer_sizes_param_count, param_size

POLL_MS = 50
TICK_MS = 100  # views that show numbers of the live run refresh at most this often (recordsShown)


class TrainingSession(QObject):
    """Starts, pauses and stops runs; owns the current run key.

    Signals: currentChanged(key or ""), runStarted(key), runFinished(key), runFailed(key, message),
    stateChanged(state) with state in idle / training / paused / stopping, weightsArrived(key,
    epoch, flat params, layer sizes) after :meth:`request_weights`, statsArrived(key, epoch,
    layer statistics) while :meth:`want_stats` is on.
    """

    currentChanged = Signal(str)
    runStarted = Signal(str)
    runFinished = Signal(str)
    runFailed = Signal(str, str)
    stateChanged = Signal(str)
    weightsArrived = Signal(str, int, object, object)
    statsArrived = Signal(str, int, object)  # key, epoch, [LayerStats dict per layer]
    recordsShown = Signal(str)  # the live run has new epochs: at most every TICK_MS (views refresh)

    def __init__(self, history: RunHistory, runs_dir: str | Path, parent: QObject | None = None):
        super().__init__(parent)
        self.history = history
        self.runs_dir = Path(runs_dir)
        self.current_key: str | None = None
        self.live_key: str | None = None
        self.state = "idle"
        self.last_record: Any = None  # the live run's latest EpochRecord
        self.live_best_epoch = 0
        self.live_message: str | None = None
        self.max_blas_threads: int | None = None  # None: the engine's choice (cores − 1 by default)
        self.live_data = None  # the PreparedData the live run trains on (views show it)
        self._want_stats = False
        self._unshown = False  # records arrived since the last recordsShown
        self._last_tick = 0.0
        self._process = None
        self._starter: threading.Thread | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        history.subscribe(self._on_history_event)

    # ---------------------------------------------------------------- the current run
    def current(self) -> RunInfo | None:
        return self.history.get(self.current_key)

    def set_current(self, key: str | None) -> None:
        key = key if key in self.history else None
        if key != self.current_key:
            self.current_key = key
            self.currentChanged.emit(key or "")

    def _on_history_event(self, event: str, key: str) -> None:
        if event == "removed" and key == self.current_key:
            self.set_current(None)
        elif event == "changed" and key == self.current_key:
            run = self.history.get(key)
            if run is not None and run.hidden and not run.live:
                self.set_current(None)  # a hidden run is not on the plots, so it is not current

    # ---------------------------------------------------------------- training
    def is_running(self) -> bool:
        return self._process is not None

    def start(self, cfg: ExperimentConfig, data: PreparedData | None) -> str:
        """Start training cfg in a new run folder; returns its key (OSError if the folder cannot be made)."""
        from engine import blas
        from engine.training_process import TrainingProcess

        if self._process is not None:
            raise RuntimeError("a training run is already in progress")
        run_dir = self._new_run_dir()
        run_dir.mkdir(parents=True)
        key = str(run_dir)
        from engine.network import network_sizes

        sizes = (
            network_sizes(data.n_features, cfg.model.hidden, data.n_classes, cfg.model.output) if data else []
        )
        count = layer_sizes_param_count(sizes) if data else 0
        itemsize = 4 if cfg.training.dtype == "float32" else 8
        run = RunInfo(
            key=key,
            name=default_run_name(run_dir),
            config=cfg,
            live=True,
            param_count=count,
            param_bytes=count * itemsize,
        )
        # the window keeps a core for itself: two BLAS threads that lose one to a repaint wait
        # for each other (measured 2.3 s against 1.45 s per 784-512-256-10 epoch)
        threads = self.max_blas_threads if self.max_blas_threads is not None else max(1, blas.cpu_count() - 1)
        self._process = TrainingProcess(cfg, run_dir, data=data, max_blas_threads=threads)
        self.last_record = None
        self.live_best_epoch = 0
        self.live_message = None
        self.live_key = key
        self.live_data = data
        self.history.add(run)
        self.set_current(key)
        self._process.want_stats(self._want_stats)
        # the fork server may still be importing NumPy (it warms up after the window opens):
        # waiting for it here would freeze the window, so the process starts from a thread
        starter = threading.Thread(target=self._process.start, name="reglab-start-training", daemon=True)
        self._starter = starter
        starter.start()
        self._timer.start()
        self._set_state("training")
        self.runStarted.emit(key)
        return key

    def pause(self) -> None:
        if self._process is not None and self.state == "training":
            self._process.pause()
            self._set_state("paused")

    def resume(self) -> None:
        if self._process is not None and self.state == "paused":
            self._process.resume()
            self._set_state("training")

    def stop(self) -> None:
        """Graceful stop: the run ends with stop_reason cancelled and stays on disk."""
        if self._process is not None:
            self._process.stop()
            self._set_state("stopping")

    def request_weights(self) -> None:
        """Ask the live run for its current weights (weightsArrived follows at an epoch end)."""
        if self._process is not None:
            self._process.request_weights()

    def want_stats(self, on: bool) -> None:
        """Layer statistics of the live run at epoch ends (statsArrived), within their time budget."""
        self._want_stats = on
        if self._process is not None:
            self._process.want_stats(on)

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop the live run and wait for its process (the window is closing)."""
        self._timer.stop()
        if self._process is None:
            return True
        if self._starter is not None:
            self._starter.join(timeout)
            self._starter = None
        ok = self._process.shutdown(timeout)
        self.poll()
        self._process = None
        return ok

    # ---------------------------------------------------------------- messages
    def poll(self) -> None:
        proc = self._process
        if proc is None:
            self._timer.stop()
            return
        if self._starter is not None:
            if self._starter.is_alive():
                return  # not started yet: nothing to read
            self._starter = None
        key = self.live_key
        for msg in proc.poll():
            kind = msg[0]
            if kind == "records":
                records = msg[1]
                self.last_record = records[-1]
                for rec in records:
                    if rec.best_epoch:
                        self.live_best_epoch = int(rec.best_epoch)
                    if rec.message:
                        self.live_message = rec.message
                self.history.append_records(key, [r.metrics_dict() for r in records])
                self._unshown = True
            elif kind == "weights":
                _, epoch, params, sizes = msg
                self.weightsArrived.emit(key, int(epoch), params, sizes)
            elif kind == "stats":
                self.statsArrived.emit(key, int(msg[1]), msg[2])
            elif kind == "finished":
                self._tick(key, force=True)
                self._end(key)
                self._on_finished(key)
            elif kind in ("error", "aborted"):
                self._tick(key, force=True)
                self._end(key)
                message = msg[1] if kind == "error" else "stopped before training started"
                self._on_failed(key, message)

        if self._process is not None:
            self._tick(key)

    def _tick(self, key: str | None, force: bool = False) -> None:
        now = time.monotonic()
        if key and self._unshown and (force or now - self._last_tick >= TICK_MS / 1000):
            self._unshown = False
            self._last_tick = now
            self.recordsShown.emit(key)

    def _end(self, key: str) -> None:
        if self._process is not None:
            self._process.join(10)
        self._process = None
        self.live_key = None
        self._timer.stop()
        self._set_state("idle")

    def _on_finished(self, key: str) -> None:
        """The live entry already holds every epoch (the same dicts metrics.jsonl got): add the
        summary and the model's size from the folder, small files, instead of reading it all back."""
        from engine.errors import DataError
        from engine.runs import load_summary

        try:
            summary = load_summary(key)
        except DataError as exc:
            self.history.update(key, live=False, failed=f"the summary could not be read ({exc})")
            self.runFailed.emit(key, f"The run finished but its summary could not be read: {exc}")
            return
        count, nbytes = param_size(Path(key) / "model.npz")
        self.history.update(key, live=False, summary=summary, param_count=count, param_bytes=nbytes)
        self.runFinished.emit(key)

    def _on_failed(self, key: str, message: str) -> None:
        path = Path(key)
        if not (path / "metrics.jsonl").exists() and path.parent == self.runs_dir:
            shutil.rmtree(path, ignore_errors=True)  # nothing was trained: leave no empty run behind
            self.history.remove(key)
        else:
            self.history.update(key, live=False, failed=message)
        self.runFailed.emit(key, message)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    def _new_run_dir(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        n = 1
        while True:
            path = self.runs_dir / f"run-{stamp}-{n:02d}"
            if not path.exists() and str(path) not in self.history:
                return path
            n += 1
